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
    token_file: str | None = None
    """Where the token lives when it rotates (the service account's projected token, a kubeconfig tokenFile):
    the client re-reads it when the file changes or the server answers 401, never trusting a copy forever."""
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
        token_file=user.get("tokenFile"),
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
        token_file=str(SERVICE_ACCOUNT / "token"),
        ca_file=str(SERVICE_ACCOUNT / "ca.crt"),
        default_namespace=(SERVICE_ACCOUNT / "namespace").read_text().strip(),
    )


class TokenSource:
    """The bearer token of a connection, re-read from its file when the file changes (kubelet rotates projected
    service-account tokens in place) or when the caller learns the server refused it (`refresh`)."""

    def __init__(self, connection: Connection):
        self._file = Path(connection.token_file) if connection.token_file else None
        self._token = connection.token
        self._stamp: tuple[float, int] | None = None
        if self._file is not None and self._token is None:
            self.refresh()

    def current(self) -> str | None:
        if self._file is not None and self._file_stamp() != self._stamp:
            self.refresh()
        return self._token

    def refresh(self) -> str | None:
        """Read the token file again now (after a 401); the token stays as it was when there is no file."""
        if self._file is None:
            return self._token
        stamp = self._file_stamp()
        try:
            self._token = self._file.read_text().strip() or self._token
        except OSError:
            return self._token
        self._stamp = stamp
        return self._token

    def _file_stamp(self) -> tuple[float, int] | None:
        try:
            stat = self._file.stat()  # type: ignore[union-attr]
        except OSError:
            return None
        return (stat.st_mtime, stat.st_ino)


def load() -> Connection:
    """In-cluster when running in a pod, else the kubeconfig (KUBECONFIG or ~/.kube/config)."""
    if "KUBERNETES_SERVICE_HOST" in os.environ and (SERVICE_ACCOUNT / "token").exists():
        return in_cluster()
    return from_kubeconfig()
