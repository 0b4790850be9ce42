"""The sandbox's processes form one tree that it owns, and nothing of it outlives the sandbox, however it ends.

Each child (the Ray head, a model server, a Job's process) is started by `spawn` or `popen` under a keeper
(keeper.py): `sandbox -> keeper -> command -> whatever the command starts`. The keeper

- is asked to receive SIGTERM when the sandbox's thread that started it ends (`PR_SET_PDEATHSIG`): a sandbox
  that is SIGKILLed, alone or with its process group, still has its keepers end every process below them;
- is a child subreaper, so what the command leaves behind (Ray's job drivers run in sessions of their own,
  its agents outlive a killed raylet by a minute) stays below it instead of going to init;
- runs in a session of its own: Ctrl-C in the terminal and a signal to the sandbox's group are the sandbox's to
  handle, and it stops its children in order (SIGTERM, then SIGKILL after a grace period) instead of each of
  them dying half-way through on its own;
- starts with no signal blocked and SIGINT ignored, whatever the thread that started it had.

A child must be started from a thread that lives as long as the child should: the event loop of the stand-ins.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from typing import Any, Callable

from llmops_sandbox.keeper import PR_SET_PDEATHSIG, descendants, prctl

KEEPER_MARGIN_SECONDS = 5.0
"""How much longer than its grace the sandbox gives a keeper before it SIGKILLs the keeper's tree itself."""


def die_with(parent_pid: int) -> Callable[[], None]:
    """A preexec_fn: SIGTERM to the keeper when its parent ends (checked once more after the request, for a
    parent that ended before it), its own session, and the terminal's SIGINT ignored."""

    def preexec() -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        os.setsid()
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent_pid:
            os._exit(126)

    return preexec


def kept(argv: list[str], grace: float, remove: str | None = None) -> list[str]:
    options = ["--remove", remove] if remove else []
    return [sys.executable, "-m", "llmops_sandbox.keeper", str(grace), *options, "--", *argv]


def popen(argv: list[str], grace: float, remove: str | None = None, **kwargs: Any) -> subprocess.Popen:
    """`subprocess.Popen` of `argv` as a child of the sandbox (see the module's docstring); the keeper removes
    the directory `remove` once the command and everything it started are gone."""
    return subprocess.Popen(kept(argv, grace, remove), preexec_fn=die_with(os.getpid()), **kwargs)


async def spawn(argv: list[str], grace: float, **kwargs: Any) -> asyncio.subprocess.Process:
    """`asyncio.create_subprocess_exec` of `argv` as a child of the sandbox (see the module's docstring)."""
    return await asyncio.create_subprocess_exec(*kept(argv, grace), preexec_fn=die_with(os.getpid()), **kwargs)


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


async def stop(process: asyncio.subprocess.Process | None, grace: float) -> None:
    """SIGTERM to the keeper, which gives its command `grace` seconds and then SIGKILLs what is left below it;
    should the keeper not be done a little later, everything below the sandbox's child is SIGKILLed here."""
    if process is None or process.returncode is not None:
        return
    try:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), timeout=grace + KEEPER_MARGIN_SECONDS)
    except (ProcessLookupError, asyncio.TimeoutError):
        await kill(process)


async def kill(process: asyncio.subprocess.Process) -> None:
    """SIGKILL to the child and every process below it, at once."""
    if process.returncode is None:
        kill_all([*descendants(process.pid), process.pid])
    await process.wait()


def stop_blocking(process: subprocess.Popen | None, grace: float) -> None:
    """`stop` for a `subprocess.Popen`."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace + KEEPER_MARGIN_SECONDS)
    except subprocess.TimeoutExpired:
        kill_all([*descendants(process.pid), process.pid])
        process.wait()
