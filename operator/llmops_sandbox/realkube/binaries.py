"""Where `make kube` (hack/kube/build.sh) caches its binaries, and the KubeRay CRDs in the Go module cache."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
HACK = ROOT / "hack" / "kube"


def cache_root() -> Path:
    return Path(os.environ.get("LLMOPS_CACHE") or Path.home() / ".cache" / "llmops")


def kube_version() -> str:
    """The k8s.io/kubernetes release hack/kube/go.mod pins, e.g. v1.36.3."""
    match = re.search(r"^\s*k8s\.io/kubernetes (v\S+)", (HACK / "go.mod").read_text(), re.MULTILINE)
    if not match:
        raise RuntimeError("hack/kube/go.mod does not require k8s.io/kubernetes")
    return match.group(1)


def kuberay_versions() -> list[str]:
    lines = (HACK / "kuberay-versions").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def kube_binary() -> Path:
    return cache_root() / "kube" / kube_version() / "kube"


def kuberay_binary(version: str) -> Path:
    return cache_root() / "kuberay" / version / "ray-operator"


def kuberay_crd_dir(version: str) -> Path | None:
    """config/crd/bases of the KubeRay operator module, from the Go module cache (downloaded if missing)."""
    go = shutil.which("go")
    if go is None:
        return None
    proc = subprocess.run([go, "mod", "download", "-json", f"github.com/ray-project/kuberay/ray-operator@{version}"],
                          capture_output=True, text=True, timeout=300, cwd=HACK)
    if proc.returncode != 0:
        return None
    directory = json.loads(proc.stdout).get("Dir")
    bases = Path(directory) / "config" / "crd" / "bases" if directory else None
    return bases if bases and bases.is_dir() else None


def kserve_version() -> str:
    lines = (HACK / "kserve-version").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")][-1]


def kserve_crd_dir() -> Path | None:
    """config/crd/full of the pinned KServe module, from the Go module cache only (GOPROXY=off: nothing is fetched
    here; `make kube` downloads it). None when Go or the module is missing."""
    go = shutil.which("go")
    if go is None:
        return None
    env = {**os.environ, "GOPROXY": "off", "GOFLAGS": "-mod=mod"}
    proc = subprocess.run([go, "mod", "download", "-json", f"github.com/kserve/kserve@{kserve_version()}"],
                          capture_output=True, text=True, timeout=60, cwd=HACK, env=env)
    if proc.returncode != 0:
        return None
    directory = json.loads(proc.stdout).get("Dir")
    crds = Path(directory) / "config" / "crd" / "full" if directory else None
    return crds if crds and crds.is_dir() else None
