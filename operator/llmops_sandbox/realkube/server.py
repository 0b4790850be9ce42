"""The real control plane in the sandbox's place of the API emulator (`llmops sandbox --apiserver real`)."""

from __future__ import annotations

import shutil
from pathlib import Path

from llmops_sandbox.realkube import binaries, controlplane


class NotBuilt(RuntimeError):
    """The control plane binary `make kube` builds is not there."""


class RealApiServer:
    """etcd, kube-apiserver and kube-controller-manager started fresh under `root`, with an admin kubeconfig; the
    same start/url/write_kubeconfig/stop as the emulator's ApiServerThread."""

    def __init__(self, root: Path):
        self.root = root
        self.plane: controlplane.ControlPlane | None = None

    @property
    def url(self) -> str:
        return self.plane.url if self.plane else ""

    def start(self) -> "RealApiServer":
        binary = binaries.kube_binary()
        if not binary.exists():
            raise NotBuilt(f"--apiserver real needs the control plane that `make kube` builds, and {binary} is "
                           "missing: run `make kube` (Go 1.26 and the Go module proxy; once per machine)")
        shutil.rmtree(self.root, ignore_errors=True)  # a fresh etcd: its data belongs to the last run's PKI
        self.plane = controlplane.start(self.root, binary)
        return self

    def write_kubeconfig(self, path: str | Path) -> Path:
        if self.plane is None:
            raise RuntimeError("the control plane is not started")
        path = Path(path)
        shutil.copyfile(self.plane.kubeconfig, path)
        return path

    def stop(self) -> None:
        if self.plane is not None:
            self.plane.stop()
