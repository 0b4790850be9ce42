"""`llmops sandbox --apiserver real`: the demo on the control plane `make kube` builds, and a clear error when it
has not been built. The emulator stays the default (`make demo`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kube_helpers import llmops_examples

from llmops_sandbox.realkube import binaries

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
# Without a kubelet or the time to train, the kinds whose work is a ConfigMap are the ones that become Ready in a
# short run; every other example must still show a status row (the stand-ins run its Jobs and Ray jobs).
READY_AT_ONCE = {("Guardrail", "default-policy"), ("PromptRelease", "assistant-prompt")}


def sandbox(workdir: Path, *args: str, env: dict[str, str] | None = None,
            timeout: float = 400) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "llmops_operator.cli.main", "sandbox", "--apiserver", "real",
               "--workdir", str(workdir), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, **(env or {})})


def test_without_the_built_control_plane_the_error_names_make_kube(tmp_path):
    done = sandbox(tmp_path / "sandbox", "--once", env={"LLMOPS_CACHE": str(tmp_path / "empty-cache")})
    assert done.returncode == 2, done.stdout + done.stderr
    assert "make kube" in done.stderr and str(tmp_path / "empty-cache") in done.stderr


def _our_processes(marker: str) -> list[str]:
    """Command lines of live processes that mention `marker` (the sandbox's work directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in cmdline:
                found.append(cmdline)
    return found


def test_the_demo_runs_on_the_real_apiserver_and_stops_cleanly(tmp_path):
    if not binaries.kube_binary().exists():
        pytest.skip(f"the real control plane is not built ({binaries.kube_binary()}): run `make kube`")
    workdir = tmp_path / "sandbox"
    done = sandbox(workdir, "--apply", "manifests/examples/", "--claim",
                   "llmops-data=manifests/examples/data", "--once", "--timeout", "240")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = {tuple(line.split()[1:4]) for line in done.stdout.splitlines() if line.startswith("default ")}
    for kind, name in READY_AT_ONCE:
        assert (kind, name, "True") in rows, done.stdout[-3000:]
    shown = {(kind, name) for kind, name, _ in rows}
    assert shown == set(llmops_examples()), done.stdout[-3000:]
    assert _our_processes(str(workdir)) == [], "the sandbox left processes behind"
