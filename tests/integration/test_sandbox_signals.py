"""`llmops sandbox` owns one process tree, and no process of it outlives the sandbox, however the sandbox ends:
SIGTERM (also while it is waiting for objects to settle), SIGKILL of its process group, SIGKILL of it alone.

Every check records the sandbox's descendants from /proc before the signal, then waits a bounded time for each
of them (the same PID with the same start time) to be gone. After a SIGKILL the bound covers the keepers' grace
(5 s for a Job, 15 s for Ray) plus their last reaping, on a shared, busy machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

MARKER = "llmops-signal-test"
# A Job whose process starts a grandchild, both sleeping until they are killed.
SLEEPER = ("import subprocess, sys, time; "
           "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', sys.argv[1]]); time.sleep(600)")


def output(tmp_path: Path) -> str:
    return (tmp_path / "sandbox.log").read_text(errors="replace")


def read_until(tmp_path: Path, wanted: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while wanted not in output(tmp_path):
        assert time.monotonic() < deadline, f"{wanted!r} not printed within {timeout:.0f}s: {output(tmp_path)}"
        time.sleep(0.2)


def stat(pid: int) -> tuple[int, str, str] | None:
    """(parent PID, state, start time) of a process, None when it does not exist."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), fields[0], fields[19]


def descendants(root: int) -> dict[int, str]:
    """Every living process below `root`: PID -> start time (so a reused PID is not mistaken for it)."""
    children: dict[int, list[int]] = {}
    starts: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (info := stat(int(entry.name))) is not None and info[1] != "Z":
            children.setdefault(info[0], []).append(int(entry.name))
            starts[int(entry.name)] = info[2]
    found, todo = {}, list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found[pid] = starts[pid]
        todo.extend(children.get(pid, []))
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def survivors(recorded: dict[int, str]) -> dict[int, str]:
    alive = {}
    for pid, start in recorded.items():
        info = stat(pid)
        if info is not None and info[1] != "Z" and info[2] == start:
            alive[pid] = cmdline(pid)
    return alive


def wait_gone(recorded: dict[int, str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (left := survivors(recorded)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"still running {timeout:.0f}s after the sandbox ended: {left}"


def wait_for_tree(sandbox: subprocess.Popen, timeout: float) -> dict[int, str]:
    """The sandbox's descendants, once two marked processes run below their keeper: the Job's process and the
    child it starts, or the Ray job's driver shell and its command."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tree = descendants(sandbox.pid)
        if sum(MARKER in cmdline(pid) and "llmops_sandbox.keeper" not in cmdline(pid) for pid in tree) >= 2:
            return tree
        assert sandbox.poll() is None, "the sandbox ended on its own"
        time.sleep(0.2)
    raise AssertionError(f"the marked processes did not start below the sandbox within {timeout:.0f}s")


def job_manifest(path: Path) -> Path:
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "sleeper", "namespace": "default"},
           "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [
               {"name": "main", "image": "python", "command": ["python", "-c", SLEEPER, MARKER]}]}}}}
    path.write_text(yaml.safe_dump(job))
    return path


class Sandbox:
    """One `llmops sandbox` process per test, in a session of its own (as a terminal gives a command), so its group
    can be signalled without signalling pytest. Whatever a test leaves running is killed when the test ends."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.process: subprocess.Popen | None = None
        self.recorded: dict[int, str] = {}

    def start(self, *args: str) -> subprocess.Popen:
        # Its output goes to a file: a pipe nobody reads would stop it once full.
        with (self.tmp_path / "sandbox.log").open("wb") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "llmops_operator", "sandbox", "--workdir",
                                             str(self.tmp_path / "wd"), *args], stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        return self.process

    def tree(self, timeout: float) -> dict[int, str]:
        assert self.process is not None
        self.recorded = wait_for_tree(self.process, timeout)
        return self.recorded

    def end(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        for pid in survivors(self.recorded):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def sandbox(tmp_path):
    started = Sandbox(tmp_path)
    yield started
    started.end()


@pytest.mark.timeout(120)
def test_sigterm_stops_the_sandbox_the_way_ctrl_c_does(tmp_path, sandbox):
    """As `timeout` sends it: once to the sandbox, once more to its process group; the stop stays orderly."""
    process = sandbox.start("--apply", str(job_manifest(tmp_path / "job.yaml")))
    read_until(tmp_path, "sandbox running", timeout=90)
    tree = sandbox.tree(timeout=60)
    process.send_signal(signal.SIGTERM)
    os.killpg(process.pid, signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert "stopping" in output(tmp_path) and "without waiting" not in output(tmp_path)
    wait_gone(tree, timeout=10)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("stop", [
    lambda pid: os.kill(pid, signal.SIGTERM),  # docker stop, kill
    lambda pid: os.killpg(pid, signal.SIGINT),  # Ctrl-C in the terminal: to the whole foreground group
], ids=["sigterm", "ctrl-c"])
def test_sigterm_or_ctrl_c_while_waiting_for_objects_to_settle_stops_the_sandbox(tmp_path, sandbox, stop):
    """A FineTune whose base TrainingJob does not exist never settles: the sandbox is waiting when the signal comes."""
    finetune = yaml.safe_load((Path(__file__).parents[2] / "manifests/examples/finetune.yaml").read_text())
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "finetune.yaml").write_text(yaml.safe_dump(finetune))
    job_manifest(manifests / "job.yaml")
    process = sandbox.start("--apply", str(manifests), "--until-settled", "--timeout", "600")
    tree = sandbox.tree(timeout=90)
    stop(process.pid)
    assert process.wait(timeout=30) == 0
    assert "stopping" in output(tmp_path) and "sandbox running" not in output(tmp_path)
    wait_gone(tree, timeout=10)


@pytest.mark.timeout(120)
def test_sigkill_of_the_sandbox_group_leaves_no_process(tmp_path, sandbox):
    process = sandbox.start("--apply", str(job_manifest(tmp_path / "job.yaml")))
    read_until(tmp_path, "sandbox running", timeout=90)
    tree = sandbox.tree(timeout=60)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    wait_gone(tree, timeout=25)


@pytest.mark.timeout(120)
def test_sigkill_of_the_sandbox_alone_takes_its_whole_tree_along(tmp_path, sandbox):
    """No group signal at all: the kernel tells each keeper that the sandbox is gone (PR_SET_PDEATHSIG), and the
    keeper ends everything below it, the Job's own child included."""
    process = sandbox.start("--apply", str(job_manifest(tmp_path / "job.yaml")))
    read_until(tmp_path, "sandbox running", timeout=90)
    tree = sandbox.tree(timeout=60)
    process.kill()
    process.wait(timeout=10)
    wait_gone(tree, timeout=25)


# The Ray job's driver reports to the sandbox's API, as the training runtime does, then sleeps until killed.
DRIVER = """
import sys, time
from llmops_operator.k8s.blocking import BlockingClient

BlockingClient().apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "from-ray"},
                        "data": {"reached": "yes"}}, namespace="default")
time.sleep(600)
"""


def rayjob_manifest(tmp_path: Path) -> Path:
    (tmp_path / "driver.py").write_text(DRIVER)
    rayjob = {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": "sleeper", "namespace": "default"},
              "spec": {"jobId": "sleeper-1", "entrypoint": f"python {tmp_path / 'driver.py'} {MARKER}"}}
    (tmp_path / "rayjob.yaml").write_text(yaml.safe_dump(rayjob))
    return tmp_path / "rayjob.yaml"


@pytest.mark.timeout(300)
def test_sigkill_of_the_sandbox_alone_takes_the_whole_ray_cluster_along(tmp_path, sandbox):
    """The Ray head runs under a keeper; Ray's daemons, its workers and the job's driver (in a session of its
    own) stay below it and end with it: nothing of the cluster outlives a SIGKILL of the sandbox. On the way,
    the driver reaches the sandbox's API with the kubeconfig it is given."""
    pytest.importorskip("ray")
    from llmops_operator.k8s.blocking import BlockingClient
    from llmops_operator.k8s.resources import resource_for

    process = sandbox.start("--apply", str(rayjob_manifest(tmp_path)))
    read_until(tmp_path, "sandbox running", timeout=60)
    tree = sandbox.tree(timeout=200)  # the head, its job agent, then the driver
    assert any("raylet" in cmdline(pid) for pid in tree) and any("gcs_server" in cmdline(pid) for pid in tree)
    [ray_temp] = {Path(arg.split("=", 1)[1]) for pid in tree for arg in cmdline(pid).split()
                  if arg.startswith("--temp-dir=")}
    api = BlockingClient(tmp_path / "wd" / "kubeconfig")
    deadline = time.monotonic() + 60
    while api.get(resource_for("v1", "ConfigMap"), "default", "from-ray") is None:
        assert time.monotonic() < deadline, "the Ray job's driver did not reach the sandbox's API"
        time.sleep(0.5)
    process.kill()
    process.wait(timeout=10)
    wait_gone(tree, timeout=30)
    deadline = time.monotonic() + 10
    while ray_temp.exists():  # the head's keeper removes Ray's session files once the cluster has ended
        assert time.monotonic() < deadline, f"{ray_temp} outlived the sandbox"
        time.sleep(0.1)
