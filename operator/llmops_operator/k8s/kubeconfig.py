"""Connection settings for the operator's own API client: a kubeconfig, or the in-cluster service account."""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass(frozen=True)
class Connection:
    server: str
    token: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False
    default_namespace: str = "default"

    def ssl_context(self) -> ssl.SSLContext | bool:
        if not self.server.startswith("https"):
            return False
        if self.insecure:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        else:
            ctx = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx


def _materialize(data_b64: str | None, path: str | None, suffix: str) -> str | None:
    """kubeconfigs carry certificates inline or as paths; ssl wants paths."""
    if path or not data_b64:
        return path
    handle = tempfile.NamedTemporaryFile(prefix="llmops-", suffix=suffix, delete=False)
    handle.write(base64.b64decode(data_b64))
    handle.close()
    return handle.name


def from_kubeconfig(path: str | None = None, context: str | None = None) -> Connection:
    path = path or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or str(Path.home() / ".kube/config")
    config = yaml.safe_load(Path(path).read_text())
    ctx_name = context or config.get("current-context")
    ctx = next(c["context"] for c in config["contexts"] if c["name"] == ctx_name)
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == ctx["cluster"])
    user = next((u["user"] for u in config.get("users", []) if u["name"] == ctx.get("user")), {}) or {}
    return Connection(
        server=cluster["server"].rstrip("/"),
        token=user.get("token"),
        ca_file=_materialize(cluster.get("certificate-authority-data"), cluster.get("certificate-authority"), ".crt"),
        cert_file=_materialize(user.get("client-certificate-data"), user.get("client-certificate"), ".crt"),
        key_file=_materialize(user.get("client-key-data"), user.get("client-key"), ".key"),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        default_namespace=ctx.get("namespace", "default"),
    )


def in_cluster() -> Connection:
    host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
    return Connection(
        server=f"https://{host}:{port}",
        token=(SERVICE_ACCOUNT / "token").read_text().strip(),
        ca_file=str(SERVICE_ACCOUNT / "ca.crt"),
        default_namespace=(SERVICE_ACCOUNT / "namespace").read_text().strip(),
    )


def load() -> Connection:
    """In-cluster when running in a pod, else the kubeconfig (KUBECONFIG or ~/.kube/config)."""
    if "KUBERNETES_SERVICE_HOST" in os.environ and (SERVICE_ACCOUNT / "token").exists():
        return in_cluster()
    return from_kubeconfig()
