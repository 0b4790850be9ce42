"""The operator as the Helm chart installs it, on the real control plane: the chart's ServiceAccount, exactly the
chart's RBAC (rendered by Helm's engine, as tests/unit/chart_render.py does), a token minted for that
ServiceAccount, and the command line and environment of the chart's Deployment."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from llmops_operator.k8s.blocking import BlockingClient

ROOT = Path(__file__).resolve().parents[2]
RBAC_PLURALS = {"ServiceAccount": "serviceaccounts", "ClusterRole": "clusterroles",
                "ClusterRoleBinding": "clusterrolebindings", "Role": "roles", "RoleBinding": "rolebindings"}
RESTRICTED = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn", "audit")}
REFUSALS = re.compile(r"forbidden|cannot (get|list|watch|create|patch|update|delete) resource|(?<!,)\b403\b",
                      re.IGNORECASE)
"""What an API refusal looks like in a log: the server's `... is forbidden: User ... cannot get resource ...`,
kopf's `Forbidden`, the operator's `403 Forbidden` (not a log timestamp's milliseconds, `12:00:56,403`)."""


def chart_render():
    """tests/unit/chart_render.py (Helm's engine through helm-python-sdk); pytest skips without it."""
    spec = importlib.util.spec_from_file_location("chart_render", ROOT / "tests" / "unit" / "chart_render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@dataclass
class ChartOperator:
    namespace: str
    service_account: str
    kubeconfig: Path
    args: list[str]
    env: dict[str, str]
    pod_template: dict[str, Any]


def restricted_namespace(client: BlockingClient, name: str) -> None:
    """Create (or label) namespace `name` to enforce PodSecurity `restricted`."""
    client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": RESTRICTED}}, None)


def _apply(client: BlockingClient, doc: dict[str, Any]) -> None:
    """Server-side apply by path (the operator's client knows no cluster-scoped RBAC kinds, as it writes none)."""
    group, meta = doc["apiVersion"], doc["metadata"]
    base = "/api/v1" if group == "v1" else f"/apis/{group}"
    where = f"/namespaces/{meta['namespace']}" if meta.get("namespace") else ""
    client.request("PATCH", f"{base}{where}/{RBAC_PLURALS[doc['kind']]}/{meta['name']}"
                   "?fieldManager=llmops-test&force=true", doc, "application/apply-patch+yaml")


def refusal_lines(log: str) -> list[str]:
    """The lines of an operator's log that show the API refusing it."""
    return [line for line in log.splitlines() if REFUSALS.search(line)]


def service_account_kubeconfig(client: BlockingClient, server: str, ca: Path, namespace: str, account: str,
                               path: Path) -> Path:
    """Mint a token for ServiceAccount `namespace/account` (TokenRequest) and write a kubeconfig that uses it."""
    token = client.request("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token",
                           {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                            "spec": {"expirationSeconds": 4 * 3600}})["status"]["token"]
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": account,
        "clusters": [{"name": "real", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": account, "context": {"cluster": "real", "user": account, "namespace": namespace}}],
    }))
    return path


def rbac_documents(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The ServiceAccount and RBAC objects the chart renders with `values`."""
    return [doc for doc in chart_render().objects(values) if doc["kind"] in RBAC_PLURALS]


def apply_rbac(client: BlockingClient, docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        _apply(client, doc)


def remove_rbac(client: BlockingClient, docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        meta = doc["metadata"]
        where = f"/namespaces/{meta['namespace']}" if meta.get("namespace") else ""
        client.request("DELETE", f"/apis/rbac.authorization.k8s.io/v1{where}/{RBAC_PLURALS[doc['kind']]}/"
                                 f"{meta['name']}")


def install(client: BlockingClient, server: str, ca: Path, root: Path) -> ChartOperator:
    """Apply the chart's ServiceAccount and RBAC objects (no Deployment: there is no kubelet), mint a token for the
    ServiceAccount, and return how the chart would run the operator, with a kubeconfig for that token."""
    render = chart_render()
    docs = render.objects()
    namespace = render.NAMESPACE
    restricted_namespace(client, namespace)
    apply_rbac(client, [doc for doc in docs if doc["kind"] in RBAC_PLURALS])
    account = render.one(docs, "ServiceAccount")["metadata"]["name"]
    kubeconfig = service_account_kubeconfig(client, server, ca, namespace, account, root / "operator-kubeconfig")
    container = render.container(docs)
    pricing = root / "pricing.yaml"
    pricing.write_text(render.one(docs, "ConfigMap")["data"]["pricing.yaml"])
    env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
    env["LLMOPS_PRICING_FILE"] = str(pricing)
    # No ports to bind on a shared test machine: 0 turns the liveness and metrics endpoints off.
    args = [re.sub(r"^(--(liveness|metrics)-port)=\d+$", r"\1=0", a) for a in container["args"]]
    template = render.one(docs, "Deployment")["spec"]["template"]
    return ChartOperator(namespace, account, kubeconfig, args, env, template)


class Running:
    """`llmops <chart args>` in a subprocess with the chart's environment and the ServiceAccount's kubeconfig."""

    def __init__(self, chart: ChartOperator, log: Path, metrics_port: int = 0):
        """metrics_port: where the chart's metrics endpoint listens (0: off, as the tests need no port)."""
        self.log = log
        self.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics" if metrics_port else None
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_SERVICE")}
        env.update(chart.env, KUBECONFIG=str(chart.kubeconfig))
        args = [f"--metrics-port={metrics_port}" if a.startswith("--metrics-port=") else a for a in chart.args]
        with open(log, "wb") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "llmops_operator.cli.main", *args],
                                            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent,
                                            start_new_session=True)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def refusals(self, since: int = 0) -> list[str]:
        """Log lines that show the API refusing the operator, from character `since` of the log on."""
        return refusal_lines(self.text()[since:])

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@contextmanager
def beside(sandbox: Any, root: Path, resync_seconds: int) -> Iterator[Running]:
    """The chart's operator beside a sandbox on the real apiserver started without its own operator
    (`Sandbox(apiserver="real", run_operator=False)`): the sandbox's stand-ins do the cluster's work."""
    plane = sandbox.control_plane
    root.mkdir(parents=True, exist_ok=True)
    installed = install(sandbox.client, plane.url, plane.pki.ca, root)
    installed.env["LLMOPS_RESYNC_SECONDS"] = str(resync_seconds)
    running = Running(installed, root / "operator.log")
    try:
        yield running
    finally:
        running.stop()
