"""`llmops sandbox`: the whole control plane on one machine, no cluster needed.

An in-process Kubernetes API (real kubectl works against it), the real operator, and local
stand-ins for the controllers a cluster would run. The operator's code path is the cluster's.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from llmops_operator.api.crdgen import crd
from llmops_operator.api.v1alpha1 import ALL_KINDS, API_VERSION, BY_KIND
from llmops_operator.cli.fleet import table
from llmops_operator.core.conditions import is_ready
from llmops_operator.k8s.blocking import BlockingClient
from llmops_operator.k8s.resources import ApiResource, resource_for
from llmops_operator.cli.render import documents, manifest_files
from llmops_sandbox.standins.runner import StandInThread
from llmops_operator.core.settings import Settings

STANDIN_CRDS = Path(__file__).with_name("crds") / "standins.yaml"
CRD = resource_for("apiextensions.k8s.io/v1", "CustomResourceDefinition")


def kind_resource(kind: type) -> ApiResource:
    return ApiResource(API_VERSION, kind.info.kind, kind.info.plural)


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def all_crds() -> list[dict[str, Any]]:
    ours = [crd(kind) for kind in ALL_KINDS]
    return ours + [d for d in yaml.safe_load_all(STANDIN_CRDS.read_text()) if d]


@dataclass
class Sandbox:
    workdir: Path
    host: str = "127.0.0.1"
    port: int = 0
    settings: Settings = field(default_factory=Settings)
    apiserver: str = "emulator"
    """"emulator" (the in-process API, the default) or "real" (the control plane `make kube` builds)."""
    run_operator: bool = True
    """False: the caller runs the operator itself (as the Helm chart's ServiceAccount, for example)."""

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir).resolve()
        self._server = None
        self._operator = None
        self._standins = None
        self.client: BlockingClient | None = None

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def control_plane(self) -> Any:
        """The real control plane (its url and PKI) with apiserver "real", else None."""
        return getattr(self._server, "plane", None)

    def start(self) -> "Sandbox":
        from llmops_sandbox.apiserver import ApiServerThread
        from llmops_sandbox.operator_thread import OperatorThread

        self.workdir.mkdir(parents=True, exist_ok=True)
        # Each part is recorded before it starts, so that `stop` also stops a start that was interrupted.
        if self.apiserver == "real":
            from llmops_sandbox.realkube.server import RealApiServer

            self._server = RealApiServer(self.workdir / "realkube")
        else:
            self._server = ApiServerThread(host=self.host, port=self.port)
        self._server.start()
        self._server.write_kubeconfig(self.kubeconfig)
        os.environ["KUBECONFIG"] = str(self.kubeconfig)
        self.client = BlockingClient(self.kubeconfig, field_manager="llmops-sandbox")
        self.install_crds()
        if self.run_operator:
            self._operator = OperatorThread(self.settings)
            self._operator.start()
        self._standins = StandInThread(self.workdir)
        self._standins.start()
        return self

    def install_crds(self) -> None:
        definitions = all_crds()
        for definition in definitions:
            self.client.apply(definition, namespace=None)
        for definition in definitions:
            name = definition["metadata"]["name"]
            wait_for(lambda: self._established(name), 30, f"CRD {name} to be established")
        # A real apiserver publishes a CRD's OpenAPI schema a while after Established; until it does,
        # `kubectl explain` and client-side validation do not know the kind.
        for definition in definitions:
            wait_for(lambda: self._schema_published(definition), 60,
                     f"the OpenAPI schema of {definition['metadata']['name']}", interval=0.25)

    def _established(self, name: str) -> bool:
        # The real apiserver answers `conditions: null` for a CRD it has only just created.
        status = (self.client.get(CRD, None, name) or {}).get("status") or {}
        return any(c["type"] == "Established" and c["status"] == "True" for c in status.get("conditions") or [])

    def _schema_published(self, definition: dict[str, Any]) -> bool:
        group, kind = definition["spec"]["group"], definition["spec"]["names"]["kind"]
        paths = self.client.request("GET", "/openapi/v3").get("paths") or {}
        for version in (v["name"] for v in definition["spec"]["versions"] if v.get("served", True)):
            entry = paths.get(f"apis/{group}/{version}")
            if entry is None:
                return False
            document = self.client.request("GET", entry["serverRelativeURL"])
            schemas = (document.get("components") or {}).get("schemas") or {}
            wanted = {"group": group, "version": version, "kind": kind}
            if not any(wanted in schema.get("x-kubernetes-group-version-kind", []) for schema in schemas.values()):
                return False
        return True

    def apply(self, paths: list[Path]) -> list[dict[str, Any]]:
        """Apply every manifest under `paths` (namespaces first), returning what was applied."""
        docs = [d for path in manifest_files(paths) for d in documents(path)]
        docs.sort(key=lambda d: d.get("kind") != "Namespace")
        return [self.client.apply(d, namespace=None) for d in docs]

    def wait_reconciled(self, applied: list[dict[str, Any]], timeout: float = 120.0) -> None:
        """Wait until the operator has observed the current generation of every llmops.dev object."""
        for obj in applied:
            if obj.get("apiVersion") != API_VERSION:
                continue
            where, meta = kind_resource(BY_KIND[obj["kind"]]), obj["metadata"]

            def observed(where=where, meta=meta) -> bool:
                live = self.client.get(where, meta["namespace"], meta["name"]) or {}
                return live.get("status", {}).get("observedGeneration") == live.get("metadata", {}).get("generation")

            wait_for(observed, timeout, f"{obj['kind']}/{meta['name']} to be reconciled")

    def provide_claim(self, name: str, source: Path) -> Path:
        """A PersistentVolumeClaim as the sandbox provides it: a directory, seeded with `source`'s files."""
        target = self.workdir / "pvc" / name
        shutil.copytree(source, target, dirs_exist_ok=True)
        return target

    def wait_settled(self, timeout: float, report: Callable[[str], None] = print, every: float = 15.0) -> bool:
        """Wait until every object is Ready or has finished unready (failed, invalid, gated); report progress."""
        deadline, last, last_report = time.monotonic() + timeout, "", 0.0
        while True:
            objects = self.objects()
            current = table(objects)
            if all(settled(o) for o in objects):
                return True
            if time.monotonic() > deadline:
                return False
            if current != last and time.monotonic() - last_report >= every:
                report(current)
                last, last_report = current, time.monotonic()
            time.sleep(1.0)

    def objects(self) -> list[dict[str, Any]]:
        return [o for kind in ALL_KINDS for o in self.client.list(kind_resource(kind))]

    def table(self) -> str:
        return table(self.objects())

    def describe(self) -> str:
        return "\n".join([
            f"API server:  {self._server.url}",
            f"kubeconfig:  {self.kubeconfig}",
            f"try:         kubectl --kubeconfig {self.kubeconfig} get llmops -A",
        ])

    def stop(self) -> None:
        """Stop the stand-ins (and with them every process they started), the operator, then the API."""
        if self._standins:
            self._standins.stop()
        if self._operator:
            self._operator.stop()
        if self._server:
            self._server.stop()

    def __enter__(self) -> "Sandbox":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


SETTLED_PHASES = ("Failed", "Invalid", "GateFailed", "Blocked", "Stopped")


def settled(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    return is_ready(status) or status.get("phase") in SETTLED_PHASES


def _interrupt(signum: int, frame: Any) -> None:
    """The first Ctrl-C or SIGTERM stops the sandbox in order; a second Ctrl-C ends it at once. A repeated
    SIGTERM is ignored: `timeout` sends one to the sandbox and another to its process group."""
    signal.signal(signal.SIGINT, _exit_now)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def _exit_now(signum: int, frame: Any) -> None:
    # The keepers of this process's children end them once it is gone (processes.py): nothing is left behind.
    os.write(2, b"\nstopped without waiting\n")
    os._exit(128 + signum)


def run_sandbox(workdir: Path, apply: list[Path], port: int, once: bool, timeout: float,
                claims: dict[str, Path] | None = None, until_settled: bool = False, apiserver: str = "emulator") -> int:
    from llmops_sandbox.realkube.server import NotBuilt

    # SIGTERM (docker stop, kill, a CI timeout) stops the sandbox as Ctrl-C does, whatever it is doing.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    sandbox = Sandbox(workdir, port=port, apiserver=apiserver)
    try:
        sandbox.start()
        _run(sandbox, apply, once, timeout, claims or {}, until_settled)
    except NotBuilt as err:
        print(f"llmops sandbox: {err}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print("\nstopping", flush=True)
    finally:
        sandbox.stop()
    return 0


def _run(sandbox: Sandbox, apply: list[Path], once: bool, timeout: float, claims: dict[str, Path],
         until_settled: bool) -> None:
    print(sandbox.describe(), flush=True)
    for name, source in claims.items():
        print(f"claim {name}: {sandbox.provide_claim(name, source)}", flush=True)
    if apply:
        sandbox.wait_reconciled(sandbox.apply(apply), timeout=timeout)
        if until_settled and not sandbox.wait_settled(timeout, lambda t: print(t + "\n", flush=True)):
            print(f"not every object settled within {timeout:.0f}s:", flush=True)
        print(sandbox.table(), flush=True)
    if once:
        return
    print("sandbox running; Ctrl-C stops it", flush=True)
    while True:
        time.sleep(3600)
