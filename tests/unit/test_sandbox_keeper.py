"""The keeper under each of the sandbox's children: it exits as its command did, and nothing its command started
outlives it, not even a process that left for a session of its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmops_sandbox.processes import kept

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the keeper relies on Linux's prctl")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_dead(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


def written_pid(pid_file: Path, writer: subprocess.Popen | None = None) -> int:
    """The pid a test's command writes to pid_file, once written (within 20 s, while `writer` still runs)."""
    deadline = time.monotonic() + 20
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline and (writer is None or writer.poll() is None)
        time.sleep(0.05)
    return int(pid_file.read_text())


def keep(script: str, grace: float = 1.0, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(kept(["sh", "-c", script], grace), text=True, **kwargs)


@pytest.mark.parametrize("script,code", [("exit 0", 0), ("exit 3", 3), ("kill -9 $$", -signal.SIGKILL)])
def test_the_keeper_exits_as_its_command_did(script, code):
    assert keep(script).wait(timeout=20) == code


def test_a_command_that_cannot_run_is_127_with_the_reason():
    process = subprocess.Popen(kept(["/nonexistent/server"], 1.0), stderr=subprocess.PIPE, text=True)
    assert process.wait(timeout=20) == 127
    assert "cannot run '/nonexistent/server': No such file or directory" in process.stderr.read()


def test_what_the_command_leaves_behind_ends_with_it(tmp_path):
    """A process in a session of its own, orphaned when its parent exits, as Ray's job drivers are."""
    pid_file = tmp_path / "orphan"
    process = keep(f"setsid sh -c 'echo $$ > {pid_file}; exec sleep 300' & sleep 0.5")
    assert process.wait(timeout=20) == 0
    orphan = int(pid_file.read_text())
    assert wait_dead(orphan), f"process {orphan} outlived its keeper"


def test_sigterm_gives_the_command_its_grace_then_kills_everything_below(tmp_path):
    pid_file = tmp_path / "stubborn"
    process = keep(f"trap '' TERM; echo $$ > {pid_file}; sleep 300 & wait", grace=1.0)
    stubborn = written_pid(pid_file)
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == -signal.SIGTERM
    assert 1.0 <= time.monotonic() - started < 10
    assert wait_dead(stubborn)


def test_the_keeper_ends_its_tree_when_the_parent_that_started_it_is_killed(tmp_path):
    """The parent here stands for the sandbox: SIGKILLed, it cannot stop anything itself."""
    pid_file = tmp_path / "command"
    parent = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from llmops_sandbox import processes\n"
        f"processes.popen(['sh', '-c', 'echo $$ > {pid_file}; sleep 300'], 1.0)\n"
        "time.sleep(300)\n")], env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    command = written_pid(pid_file, parent)
    parent.kill()
    parent.wait()
    assert wait_dead(command), f"process {command} outlived the parent of its keeper"


def signals_in(mask: str) -> set[int]:
    """The signals of a mask as /proc/PID/status shows it."""
    mask = int(mask, 16)
    return {number for number in range(1, 65) if mask >> (number - 1) & 1}


def test_a_burst_of_sigterms_stops_the_keeper_once_and_in_order(tmp_path):
    """A SIGKILLed sandbox makes the kernel send the parent-death signal once for each of its threads that exits
    while the keeper is its child: several SIGTERMs in a burst. The keeper takes them from a queue instead of a
    handler (which the next one could interrupt half-way through the stop), and still ends its command's child."""
    pid_file = tmp_path / "grandchild"
    process = keep(f"sleep 300 & echo $! > {pid_file}; wait", grace=2.0)
    grandchild = written_pid(pid_file)
    status = dict(line.split(":", 1) for line in Path(f"/proc/{process.pid}/status").read_text().splitlines())
    assert signal.SIGTERM not in signals_in(status["SigCgt"]), "a SIGTERM handler can be interrupted by the next"
    for _ in range(200):
        if process.poll() is not None:
            break
        process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == -signal.SIGTERM
    assert wait_dead(grandchild), f"process {grandchild} outlived its keeper"


def test_the_directory_to_remove_goes_once_everything_below_is_gone(tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    process = subprocess.Popen(kept(["sh", "-c", f"echo session > {scratch}/log"], 1.0, remove=str(scratch)))
    assert process.wait(timeout=20) == 0
    assert not scratch.exists()


def test_the_directory_to_remove_goes_when_the_sandbox_is_killed(tmp_path):
    """As Ray's session directory, which the sandbox cannot remove itself once SIGKILLed."""
    scratch, pid_file = tmp_path / "scratch", tmp_path / "command"
    scratch.mkdir()
    parent = subprocess.Popen([sys.executable, "-c", (
        "import time\n"
        "from llmops_sandbox import processes\n"
        f"processes.popen(['sh', '-c', 'echo $$ > {pid_file}; touch {scratch}/socket; sleep 300'], 1.0,"
        f" remove={str(scratch)!r})\n"
        "time.sleep(300)\n")], env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    command = written_pid(pid_file, parent)
    parent.kill()
    parent.wait()
    assert wait_dead(command)
    deadline = time.monotonic() + 10
    while scratch.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not scratch.exists(), "the keeper left the directory behind"
