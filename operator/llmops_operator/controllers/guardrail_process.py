"""The guardrail engine's warm process: the self-test and spec.evaluation run there, not in the operator.

Loaded, the engine's classifier model, corpora and libraries (ONNX Runtime, numpy, phonenumbers) are about 50 MB;
in the operator they stayed for the life of the process after its first self-test. Here they live in one child
process, started on the first run, kept between runs (starting one costs an interpreter and the model load, which
takes seconds on a busy node) and stopped once no run came for `idle_seconds`, which returns its memory.

Requests and answers are JSON lines on the child's stdin and stdout, one run at a time. The child ends when its
stdin closes, so it never outlives the operator, however the operator ends. Run as a module, this is the child.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from llmops_operator.guardrails.offline_runs import DatasetError

log = logging.getLogger("llmops.guardrail")
DEFAULT_IDLE_SECONDS = 60.0
STOP_GRACE_SECONDS = 5.0


class WorkerProcessError(RuntimeError):
    """The run failed in the worker process, or the process ended during it."""


def child_environment() -> dict[str, str]:
    """The operator's environment, with the directory this package was imported from first on the child's path
    (a source checkout run with PYTHONPATH, or an installed wheel: both import the same code as the parent)."""
    package_root = str(Path(__file__).resolve().parents[2])
    paths = [package_root, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}


class WarmProcess:
    """One engine process shared by the callers of `run` (one at a time: the Guardrail worker's thread)."""

    def __init__(self, idle_seconds: float = DEFAULT_IDLE_SECONDS) -> None:
        self.idle_seconds = idle_seconds
        self.started = 0
        """Processes started so far."""
        self.runs = 0
        """Runs asked for so far."""
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._idle_timer: threading.Timer | None = None

    @property
    def pid(self) -> int | None:
        process = self._process
        return None if process is None or process.poll() is not None else process.pid

    def run(self, name: str, args: list[Any]) -> dict[str, Any]:
        """The wire form of the run's result; DatasetError or WorkerProcessError when it failed. Blocks."""
        with self._lock:
            self.runs += 1
            if self._idle_timer is not None:
                self._idle_timer.cancel()
            try:
                answer = self._ask({"run": name, "args": args})
            finally:
                self._arm_idle_timer(self.runs)
        if "result" in answer:
            return answer["result"]
        if answer.get("error") == "DatasetError":
            raise DatasetError(answer.get("message", ""))
        raise WorkerProcessError(f"{answer.get('error')}: {answer.get('message')}")

    def stop(self) -> None:
        with self._lock:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
            self._stop_process()

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        fresh = self._process is None or self._process.poll() is not None
        if fresh:
            self._start()
        line = self._exchange(request)
        if not line and not fresh:  # it ended while idle (killed, out of memory): one try on a fresh process
            self._start()
            line = self._exchange(request)
        if not line:
            code = self._stop_process()
            raise WorkerProcessError(f"the guardrail worker process ended during the run (exit code {code})")
        return json.loads(line)

    def _exchange(self, request: dict[str, Any]) -> str:
        """The answer line, or "" when the process ended first."""
        process = self._process
        try:
            process.stdin.write(json.dumps(request) + "\n")
            process.stdin.flush()
            return process.stdout.readline()
        except (BrokenPipeError, ValueError, OSError):
            return ""

    def _start(self) -> None:
        self._stop_process()
        self._process = subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True, env=child_environment())
        self.started += 1
        log.info("guardrail worker process %d started", self._process.pid)

    def _stop_process(self) -> int | None:
        process, self._process = self._process, None
        if process is None:
            return None
        process.stdin.close()  # the child ends when its input does
        try:
            return process.wait(STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()
        finally:
            process.stdout.close()

    def _arm_idle_timer(self, runs: int) -> None:
        self._idle_timer = threading.Timer(self.idle_seconds, self._stop_if_idle, (runs,))
        self._idle_timer.daemon = True
        self._idle_timer.start()

    def _stop_if_idle(self, runs: int) -> None:
        with self._lock:
            if self.runs == runs and self._process is not None:  # no run since this timer was armed
                log.info("guardrail worker process %d stopped after %gs without a run", self._process.pid,
                         self.idle_seconds)
                self._stop_process()


SHARED = WarmProcess()
"""The interpreter's one engine process: every Guardrail reconciler of the interpreter asks it (it starts on the
first run)."""


def serve(requests: IO[str], answers: IO[str]) -> None:
    """The child: answer each request line until the input ends. Its stdout carries only answers (`main`)."""
    from llmops_operator.guardrails.evaluation import evaluate_policy_json
    from llmops_operator.guardrails.selftest import selftest_policy_json

    runs = {"selfTest": selftest_policy_json, "evaluation": evaluate_policy_json}
    for line in requests:
        request = json.loads(line)
        try:
            answer = {"result": runs[request["run"]](*request["args"]).wire()}
        except DatasetError as err:
            answer = {"error": "DatasetError", "message": str(err)}
        except Exception as err:  # the parent reports it in a condition
            answer = {"error": type(err).__name__, "message": str(err)}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C meant for the operator: it closes our input instead
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # whatever else prints goes to the log, not into an answer
    serve(sys.stdin, answers)


if __name__ == "__main__":
    main()
