"""`llmops sandbox` stops on SIGTERM as on Ctrl-C: it leaves its with-block, which stops every process it started
(Ray and the model servers run in sessions of their own, so a plain kill of the sandbox would leave them)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.integration


def read_until(process: subprocess.Popen, wanted: str, timeout: float) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if wanted in line:
            return lines
    raise AssertionError(f"{wanted!r} not printed within {timeout:.0f}s: {lines}")


@pytest.mark.timeout(120)
def test_sigterm_stops_the_sandbox_the_way_ctrl_c_does(tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "llmops_operator", "sandbox", "--workdir", str(tmp_path)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        read_until(process, "sandbox running", timeout=90)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert "stopping" in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
