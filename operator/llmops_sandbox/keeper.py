"""Runs one command for the sandbox and takes everything the command starts along when either of them ends.

    python -m llmops_sandbox.keeper GRACE [--remove DIR] -- COMMAND...

The keeper is a child subreaper (`PR_SET_CHILD_SUBREAPER`): a process that the command starts and then leaves
behind (a Ray job's driver, in a session of its own; an agent whose raylet died) is re-parented to the keeper
instead of init, so it stays in the tree. When the command exits, the keeper ends whatever is left below it.
On SIGTERM (from the sandbox, or from the kernel once the sandbox is gone: see processes.py) it sends SIGTERM to
the command, waits GRACE seconds, then SIGKILLs everything below it. It exits as the command did; with
`--remove DIR`, once nothing is left below it, it first removes DIR (the command's scratch files, such as Ray's
session directory), so they go however the sandbox ended, SIGKILL included.

SIGTERM is blocked and taken from the queue with sigwaitinfo, never by a handler. The kernel sends the parent-death
signal once for each thread of the sandbox that exits while the keeper is its child, so a SIGKILLed sandbox can
send several in a burst; a handler that raised on each could be hit again half-way through the stop, and the
keeper would die leaving its command's children behind.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


# Loaded once, at import: prctl runs in preexec hooks, in the child of a fork of the multi-threaded sandbox, where
# a dlopen could wait forever on a loader lock that another thread held at the fork.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def prctl(option: int, value: int) -> None:
    """Linux's prctl(2); elsewhere nothing."""
    if _LIBC is None:
        return
    if _LIBC.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


def descendants(root: int) -> list[int]:
    """Every process below `root` now, read from /proc (none where there is no /proc)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as handle:
                    text = handle.read()
            except OSError:
                continue
            state, parent = text[text.rindex(b")") + 2:].split()[:2]
            if state != b"Z":  # a zombie has ended already and has no children
                children.setdefault(int(parent), []).append(int(name))
    found, todo = [], list(children.get(root, []))
    while todo:
        found.append(todo.pop())
        todo.extend(children.get(found[-1], []))
    return found


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _reap_until_gone(deadline: float) -> None:
    """Reap adopted processes until none is left below the keeper or the deadline passes."""
    while descendants(os.getpid()) and time.monotonic() < deadline:
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            return
        time.sleep(0.05)


def end_everything_below(grace: float) -> None:
    _signal_all(descendants(os.getpid()), signal.SIGTERM)
    _reap_until_gone(time.monotonic() + grace)
    _signal_all(descendants(os.getpid()), signal.SIGKILL)
    _reap_until_gone(time.monotonic() + 5)


def _reap(child: subprocess.Popen) -> int | None:
    """Reap every child that has ended (adopted ones too); `child`'s exit status once it is among them."""
    while True:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            return None
        if pid == child.pid:
            child.returncode = os.waitstatus_to_exitcode(status)
            return child.returncode


def _wait_for(child: subprocess.Popen, grace: float) -> int:
    """`child`'s exit status once it has ended; on SIGTERM, everything below is ended first (see the docstring)."""
    while (code := _reap(child)) is None:
        if signal.sigwaitinfo({signal.SIGTERM, signal.SIGCHLD}).si_signo == signal.SIGTERM:
            end_everything_below(grace)
            return -signal.SIGTERM
    return code


def _exit_like(code: int) -> None:
    if code < 0:  # ended by a signal: end the same way, so the sandbox reads the same status
        if -code != signal.SIGKILL:
            signal.signal(-code, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {-code})
        os.kill(os.getpid(), -code)
    sys.exit(code)


def main(argv: list[str]) -> None:
    separator = argv.index("--")
    grace, options, command = float(argv[0]), argv[1:separator], argv[separator + 1:]
    remove = options[options.index("--remove") + 1] if "--remove" in options else None
    # Blocked, SIGCHLD is queued too, though its default action is to discard it.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGCHLD})
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    keeper = os.getpid()
    try:
        child = subprocess.Popen(command, preexec_fn=lambda: _die_with(keeper))
    except OSError as err:  # the command cannot be run: say so where its output would have gone
        print(f"cannot run {command[0]!r}: {err.strerror}", file=sys.stderr, flush=True)
        code = 127
    else:
        code = _wait_for(child, grace)
    end_everything_below(0)
    if remove:
        shutil.rmtree(remove, ignore_errors=True)
    _exit_like(code)


def _die_with(parent: int) -> None:
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent ended before the request was made
        os._exit(126)


if __name__ == "__main__":
    main(sys.argv[1:])
