"""Where a URI from a spec lives inside a job's pod (pure, apart from reading the environment)."""

from __future__ import annotations

import os
from pathlib import Path

PVC_ROOT_ENV = "LLMOPS_PVC_ROOT"
DEFAULT_PVC_ROOT = "/mnt/pvc"
"""The operator mounts each claim named by a pvc://claim/path URI at /mnt/pvc/<claim>."""


class UnsupportedUri(ValueError):
    pass


def local_path(uri: str, pvc_root: str | None = None) -> Path:
    """file:///x -> /x; pvc://claim/x -> <pvc root>/claim/x; a plain path stays as it is."""
    if uri.startswith("file://"):
        return Path(uri.removeprefix("file://"))
    if uri.startswith("pvc://"):
        root = pvc_root or os.environ.get(PVC_ROOT_ENV, DEFAULT_PVC_ROOT)
        return Path(root) / uri.removeprefix("pvc://")
    if "://" in uri:
        raise UnsupportedUri(f"{uri}: only file://, pvc:// and local paths can be written to; read others with fsspec")
    return Path(uri)


def is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith(("file://", "pvc://"))
