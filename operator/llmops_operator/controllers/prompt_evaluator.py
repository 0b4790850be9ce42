"""Prompt evaluations run beside the reconcile passes, never inside one: a bounded worker the controller owns.

An evaluation sends every example to the service twice (candidate and stable) and scores the answers, which
can take minutes on a slow service. A pass only starts one and reads how it went:
- one asyncio task per key (the release's uid and the candidate's content hash), at most `max_running` at
  once across all releases (the others queue), each under a total time budget;
- the outcome (a result, or a failure with a reason) is kept by key, the newest MAX_KEPT keys, for the passes
  to read, and the release is reconciled again as soon as it lands (`on_done`);
- after a failed attempt the next may start once a backoff has passed: RETRY_AFTER_S, doubling up to
  MAX_RETRY_AFTER_S.
Nothing here is the source of truth: a finished result reaches status.evaluation, which later passes (and a
restarted operator) read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Awaitable, Callable

from llmops_operator.api.v1alpha1.promptrelease import EvaluationResult, PromptDrift

log = logging.getLogger("llmops.prompt-evaluation")

MAX_RUNNING = 2
BUDGET_S = 600.0
RETRY_AFTER_S = 15.0
MAX_RETRY_AFTER_S = 600.0
MAX_KEPT = 512

Key = tuple[str, str]
"""(the release's uid, the candidate's content hash)."""


@dataclass(frozen=True)
class Finished:
    evaluation: EvaluationResult
    drift: PromptDrift


@dataclass(frozen=True)
class Failure:
    reason: str
    """CamelCase, for the Evaluated condition."""
    message: str
    """What went wrong, naming the field or the call."""


class AttemptFailed(Exception):
    """Raised by an evaluation attempt that cannot finish; carries the Failure to report."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.failure = Failure(reason, message)


@dataclass(frozen=True)
class Progress:
    """How the evaluation of one key stands, for a pass to read."""

    finished: Finished | None = None
    running: bool = False
    queued: bool = False
    """Running, but waiting for a free slot."""
    failure: Failure | None = None
    """The last failed attempt's, while no other runs."""
    may_start: bool = True
    """No attempt runs and any backoff after a failure has passed."""


@dataclass
class _Entry:
    task: asyncio.Task[None] | None = None
    started: bool = False
    finished: Finished | None = None
    failure: Failure | None = None
    failures: int = 0
    retry_at: float = 0.0


class EvaluationWorker:
    def __init__(self, max_running: int = MAX_RUNNING, budget_s: float = BUDGET_S,
                 clock: Callable[[], float] = time.monotonic):
        self.max_running = max_running
        self.budget_s = budget_s
        self._clock = clock
        self._slots: asyncio.Semaphore | None = None
        self._entries: OrderedDict[Key, _Entry] = OrderedDict()

    def progress(self, key: Key) -> Progress:
        entry = self._entries.get(key)
        if entry is None:
            return Progress()
        if entry.task is not None:
            return Progress(running=True, queued=not entry.started, may_start=False)
        if entry.finished is not None:
            return Progress(finished=entry.finished, may_start=False)
        return Progress(failure=entry.failure, may_start=self._clock() >= entry.retry_at)

    def start(self, key: Key, run: Callable[[], Awaitable[Finished]], on_done: Callable[[], None]) -> bool:
        """Start an attempt for `key` unless one runs, one finished, or the backoff has not passed."""
        if not self.progress(key).may_start:
            return False
        entry = self._entries.setdefault(key, _Entry())
        self._entries.move_to_end(key)
        entry.started = False
        entry.task = asyncio.get_running_loop().create_task(self._attempt(key, entry, run, on_done))
        self._forget_oldest()
        return True

    async def _attempt(self, key: Key, entry: _Entry, run: Callable[[], Awaitable[Finished]],
                       on_done: Callable[[], None]) -> None:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_running)
        async with self._slots:
            entry.started = True
            try:
                entry.finished = await asyncio.wait_for(run(), self.budget_s)
                entry.failure = None
            except AttemptFailed as err:
                self._failed(entry, err.failure)
            except asyncio.TimeoutError:
                self._failed(entry, Failure("TimedOut", f"the evaluation took longer than its budget of "
                                                        f"{self.budget_s:g}s and was stopped"))
            except Exception as err:  # noqa: BLE001 - a worker bug must reach status, not die with the task
                log.exception("evaluation %s failed", key)
                self._failed(entry, Failure("EvaluationError", f"{type(err).__name__}: {err}"))
            finally:
                entry.task = None
        on_done()

    def _failed(self, entry: _Entry, failure: Failure) -> None:
        entry.failure = failure
        entry.failures += 1
        backoff = min(RETRY_AFTER_S * 2 ** (entry.failures - 1), MAX_RETRY_AFTER_S)
        entry.retry_at = self._clock() + backoff

    def _forget_oldest(self) -> None:
        while len(self._entries) > MAX_KEPT:
            oldest = next((k for k, e in self._entries.items() if e.task is None), None)
            if oldest is None:
                return
            del self._entries[oldest]
