"""`eventually` and friends for tests that drive an API server from the outside."""

from __future__ import annotations

import asyncio
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import yaml

from llmops_operator.k8s.blocking import BlockingClient as Kube  # noqa: F401  (re-exported for the tests)
from llmops_operator.k8s.resources import resource_for

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "manifests" / "examples"
STANDINS = ROOT / "operator" / "llmops_sandbox" / "crds" / "standins.yaml"
CRD = resource_for("apiextensions.k8s.io/v1", "CustomResourceDefinition")


def example(kind: str) -> dict[str, Any]:
    """The llmops.dev example of `kind` from manifests/examples/, freshly read (callers may change it)."""
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == kind and doc.get("apiVersion") == "llmops.dev/v1alpha1":
                return doc
    raise LookupError(kind)


def example_documents() -> list[dict[str, Any]]:
    """Every document of every file in manifests/examples/, as `kubectl apply -f manifests/examples/` sends them."""
    return [doc for path in sorted(EXAMPLES.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def llmops_examples() -> list[tuple[str, str]]:
    """(kind, name) of every llmops.dev object in the examples."""
    return [(d["kind"], d["metadata"]["name"]) for d in example_documents()
            if d.get("apiVersion") == "llmops.dev/v1alpha1"]


def apply_companions(kube: Kube, kind: str, namespace: str) -> None:
    """Apply what the example of `kind` ships beside it in its file (the Guardrail's evaluation dataset ConfigMap),
    so the example can become Ready exactly as `kubectl apply -f` of the file would make it."""
    for path in sorted(EXAMPLES.glob("*.yaml")):
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
        if any(d.get("kind") == kind and d.get("apiVersion") == "llmops.dev/v1alpha1" for d in documents):
            for doc in documents:
                if doc.get("apiVersion") != "llmops.dev/v1alpha1":
                    kube.apply(doc, namespace=namespace)
            return


def eventually(check: Callable[[], T], timeout: float = 20.0, interval: float = 0.05, what: str = "") -> T:
    """Poll `check` until it returns a truthy value or stops raising AssertionError; fail with the last reason."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            result = check()
            if result:
                return result
            last = f"returned {result!r}"
        except AssertionError as err:
            last = err
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {what or check.__name__}: {last}")
        time.sleep(interval)


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    if not obj:
        return None
    return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == type_), None)


def unwatched_namespace(kube: Kube, prefix: str) -> str:
    """A fresh namespace the shared operator does not watch (it watches t-*), for tests that run passes themselves."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    kube.create_namespace(name)
    return name


def reconcile_once(kube: Kube, kind: type, namespace: str, name: str,
                   body: dict[str, Any] | None = None, settings: Any = None) -> dict[str, Any]:
    """One pass of the operator's Loop over the live object (or over `body`, as a stale watch event would deliver
    it), with `settings` (the defaults when None); the object after."""
    from llmops_operator.controllers.base import Loop
    from llmops_operator.controllers.kinds import reconciler_for
    from llmops_operator.k8s import kubeconfig
    from llmops_operator.k8s.client import ApiClient
    from llmops_operator.k8s.resources import resource_for
    from llmops_operator.core.settings import Settings

    where = resource_for("llmops.dev/v1alpha1", kind.info.kind)
    body = body or kube.get(where, namespace, name)

    async def one_pass() -> None:
        async with ApiClient(kubeconfig.load()) as api:
            await Loop(reconciler_for(kind), api, settings or Settings()).reconcile(body)
    asyncio.run(one_pass())
    return kube.get(where, namespace, name)


def install_crds(kube: Kube) -> None:
    paths = sorted((ROOT / "crds").glob("llmops.dev_*.yaml")) + [STANDINS]
    for path in paths:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                kube.apply(doc, namespace=None)
    for path in paths:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                eventually(lambda: established(kube, doc["metadata"]["name"]), what=f"{doc['metadata']['name']} established")


def established(kube: Kube, name: str) -> bool:
    crd = kube.get(CRD, None, name) or {}
    # A CRD the real apiserver has just created may carry `conditions: null`.
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


@contextmanager
def sandbox_for_a_test(workdir: Path, real_when_built: bool = False, settings: Any = None) -> Iterator[Any]:
    """A sandbox of its own for one test; the KUBECONFIG it points this process at is put back afterwards, so the
    suites sharing the process keep talking to their own API. With `real_when_built`, on the real kube-apiserver
    when `make kube` has built it, with the operator as the Helm chart runs it beside the stand-ins (the chart's
    ServiceAccount and RBAC; a refusal in its log fails the test). `settings` are the in-process operator's; the
    chart's operator resyncs every 5 s."""
    import os

    from llmops_operator.core.settings import Settings
    from llmops_sandbox.main import Sandbox

    real = real_when_built and real_apiserver_built()
    previous = os.environ.get("KUBECONFIG")
    try:
        with Sandbox(workdir, settings=settings or Settings(), apiserver="real" if real else "emulator",
                     run_operator=not real) as running:
            if not real:
                yield running
                return
            from realkube import chart_operator

            with chart_operator.beside(running, workdir.parent / "chart-operator", resync_seconds=5) as operator:
                yield running
                assert operator.process.poll() is None, operator.text()[-3000:]
                refusals = operator.refusals()
                assert not refusals, "the API refused the operator:\n" + "\n".join(refusals)
    finally:
        if previous is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = previous


def real_apiserver_built() -> bool:
    """Whether `make kube` has built the real control plane (and the chart can be rendered for its operator)."""
    import importlib.util

    from llmops_sandbox.realkube import binaries

    return binaries.kube_binary().exists() and importlib.util.find_spec("helm_python") is not None
