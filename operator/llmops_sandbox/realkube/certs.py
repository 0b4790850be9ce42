"""Test PKI for the real control plane, made with the openssl command: a CA, the apiserver's serving
certificate, an admin client certificate (O=system:masters) and the service-account signing key pair.

EC P-256 keys: generating them takes milliseconds, where RSA would take most of a second on a busy machine.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

SERVING_NAMES = ("DNS:localhost", "DNS:kubernetes", "DNS:kubernetes.default", "DNS:kubernetes.default.svc",
                 "DNS:kubernetes.default.svc.cluster.local", "IP:127.0.0.1")


@dataclass(frozen=True)
class Pki:
    ca: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    sa_key: Path
    sa_pub: Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def _key(path: Path) -> Path:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path))
    return path


def _signed(directory: Path, name: str, subject: str, ca: Path, ca_key: Path, extensions: list[str]) -> Path:
    cert = directory / f"{name}.crt"
    args = ["req", "-x509", "-new", "-key", str(_key(directory / f"{name}.key")), "-out", str(cert),
            "-subj", subject, "-days", "7", "-CA", str(ca), "-CAkey", str(ca_key)]
    for ext in extensions:
        args += ["-addext", ext]
    _openssl(*args)
    return cert


def make_pki(directory: Path, service_ip: str) -> Pki:
    """Write every key and certificate under `directory` (created if missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = directory / "ca.crt", _key(directory / "ca.key")
    _openssl("req", "-x509", "-new", "-key", str(ca_key), "-out", str(ca), "-subj", "/CN=llmops-test-ca",
             "-days", "7", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    server_ext = ["basicConstraints=critical,CA:FALSE", "extendedKeyUsage=serverAuth",
                  "subjectAltName=" + ",".join((*SERVING_NAMES, f"IP:{service_ip}"))]
    client_ext = ["basicConstraints=critical,CA:FALSE", "extendedKeyUsage=clientAuth"]
    serving = _signed(directory, "apiserver", "/CN=kube-apiserver", ca, ca_key, server_ext)
    admin = _signed(directory, "admin", "/O=system:masters/CN=llmops-test-admin", ca, ca_key, client_ext)
    sa_key = _key(directory / "sa.key")
    sa_pub = directory / "sa.pub"
    _openssl("pkey", "-in", str(sa_key), "-pubout", "-out", str(sa_pub))
    return Pki(ca=ca, ca_key=ca_key, serving_cert=serving, serving_key=directory / "apiserver.key",
               admin_cert=admin, admin_key=directory / "admin.key", sa_key=sa_key, sa_pub=sa_pub)
