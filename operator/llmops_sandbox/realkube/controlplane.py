"""Start etcd, kube-apiserver and kube-controller-manager (one `kube` binary built by `make kube`) on loopback
ports, write an admin kubeconfig, wait until they serve, and stop them all together."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from llmops_sandbox.keeper import PR_SET_PDEATHSIG, prctl
from llmops_sandbox.ports import free_port

from .certs import Pki, make_pki

SERVICE_RANGE = "10.0.0.0/24"
SERVICE_IP = "10.0.0.1"
# The sandbox's Job stand-in runs Jobs and writes their status; the real Job controller would fight it.
CONTROLLERS = "*,-job"
ADMISSION = ("NamespaceLifecycle,LimitRanger,ServiceAccount,PodSecurity,DefaultStorageClass,ResourceQuota,"
             "DefaultTolerationSeconds,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,"
             "ValidatingAdmissionPolicy,Priority")


class ControlPlaneError(RuntimeError):
    pass


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGKILL it when the test process dies, so no control plane outlives it."""
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class ControlPlane:
    root: Path
    binary: Path
    pki: Pki = field(init=False)
    url: str = ""
    kubeconfig: Path = field(init=False)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.pki.ca))
        context.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
        return context

    def get(self, path: str, timeout: float = 5) -> tuple[int, bytes]:
        request = urllib.request.Request(self.url + path, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=self.ssl_context()) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def log(self, name: str, lines: int = 30) -> str:
        path = self.root / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def _spawn(self, name: str, *args: str) -> None:
        with open(self.root / f"{name}.log", "wb") as log:
            self.processes[name] = subprocess.Popen(
                [str(self.binary), name, *args], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=_die_with_parent)

    def _wait(self, what: str, ready, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.05
        while not _safely(ready):
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise ControlPlaneError(f"{name} exited with {proc.returncode} while waiting for {what}:\n"
                                            f"{self.log(name)}")
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"{what} not ready within {timeout:.0f} s")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def stop(self) -> None:
        """Stop in reverse order of start, so the apiserver never loses etcd while it is still shutting down."""
        for proc in reversed(list(self.processes.values())):
            if proc.poll() is not None:
                continue
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def __enter__(self) -> ControlPlane:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _safely(check) -> bool:
    try:
        return bool(check())
    except OSError:
        return False


def _etcd_healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
            return json.loads(resp.read()).get("health") == "true"
    except (OSError, ValueError):
        return False


def _apiserver_args(plane: ControlPlane, etcd_port: int, port: int) -> list[str]:
    pki = plane.pki
    return [
        f"--etcd-servers=http://127.0.0.1:{etcd_port}", "--bind-address=127.0.0.1", f"--secure-port={port}",
        "--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none", f"--cert-dir={plane.root / 'certs'}",
        f"--tls-cert-file={pki.serving_cert}", f"--tls-private-key-file={pki.serving_key}",
        f"--client-ca-file={pki.ca}", "--authorization-mode=Node,RBAC", f"--enable-admission-plugins={ADMISSION}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pki.sa_pub}", f"--service-account-signing-key-file={pki.sa_key}",
        f"--service-cluster-ip-range={SERVICE_RANGE}", "--profiling=false", "--v=0",
    ]


def _controller_manager_args(plane: ControlPlane) -> list[str]:
    kubeconfig = str(plane.kubeconfig)
    return [
        f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}", "--bind-address=127.0.0.1", "--secure-port=0",
        "--use-service-account-credentials", "--leader-elect=false", f"--controllers={CONTROLLERS}",
        f"--service-account-private-key-file={plane.pki.sa_key}", f"--root-ca-file={plane.pki.ca}",
        f"--cluster-signing-cert-file={plane.pki.ca}", f"--cluster-signing-key-file={plane.pki.ca_key}",
        "--profiling=false", "--v=0",
    ]


def write_kubeconfig(plane: ControlPlane, path: Path) -> Path:
    pki = plane.pki
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "llmops-test",
        "clusters": [{"name": "llmops-test", "cluster": {"server": plane.url, "certificate-authority": str(pki.ca)}}],
        "users": [{"name": "admin", "user": {"client-certificate": str(pki.admin_cert),
                                             "client-key": str(pki.admin_key)}}],
        "contexts": [{"name": "llmops-test", "context": {"cluster": "llmops-test", "user": "admin"}}],
    }
    path.write_text(json.dumps(config, indent=2))
    return path


def _default_service_account(plane: ControlPlane) -> bool:
    return plane.get("/api/v1/namespaces/default/serviceaccounts/default")[0] == 200


def start(root: Path, binary: Path, timeout: float = 180) -> ControlPlane:
    """Start the three components under `root` (PKI, data, logs, kubeconfig) and return once the apiserver is
    ready and the controller-manager has made the default namespace's ServiceAccount. `timeout` bounds each
    wait: readiness is polled, so a busy machine only makes it slower."""
    root.mkdir(parents=True, exist_ok=True)
    plane = ControlPlane(root=root, binary=binary)
    plane.pki = make_pki(root / "pki", SERVICE_IP)
    etcd_port, port = free_port(), free_port()
    plane.url = f"https://127.0.0.1:{port}"
    plane.kubeconfig = write_kubeconfig(plane, root / "kubeconfig")
    try:
        plane._spawn("etcd", f"--data-dir={root / 'etcd'}", f"--listen-client-url=http://127.0.0.1:{etcd_port}",
                     f"--listen-peer-url=http://127.0.0.1:{free_port()}")
        plane._wait("etcd", lambda: _etcd_healthy(etcd_port), timeout)
        plane._spawn("apiserver", *_apiserver_args(plane, etcd_port, port))
        plane._wait("kube-apiserver /readyz", lambda: _ready(plane), timeout)
        plane._spawn("controller-manager", *_controller_manager_args(plane))
        plane._wait("kube-controller-manager (default ServiceAccount)", lambda: _default_service_account(plane),
                    timeout)
    except BaseException:
        plane.stop()
        raise
    return plane


def _ready(plane: ControlPlane) -> bool:
    return plane.get("/readyz", timeout=5)[0] == 200
