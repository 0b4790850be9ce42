"""Guardrail scans for the transformer: short texts in the server, anything longer in worker processes, so no
request can hold the event loop for more than a few milliseconds.

`ScanPool.check` scans a text of up to INLINE_SCAN_CHARS itself and sends a longer one to a pool of worker processes
(each loads the mounted policy file itself and reloads it when it changes) under a time budget; past the budget
every check of the direction applies its onError (failClosed: the check hits; failOpen: the text passes and the
verdict lists the error), and the worker finishes on its own (RE2 scans are linear in the text, so it always ends).
Processes rather than threads: a scan of a worst-case body is seconds of Python, and sharing one interpreter lock
with the event loop would hold up the health probes. A worker sends back the verdict with its first hits only and
the hit counts per rule, so a body with tens of thousands of matches costs the event loop nothing. What hit goes to
the log with the request id; clients get only what the policy's verdictDetail allows.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import uuid
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Mapping

from llmops_operator.guardrails.engine import PolicyFile
from llmops_operator.guardrails.policy import PolicyError
from llmops_operator.guardrails.verdict import ALLOWED, Verdict
from llmops_operator.servers import genai_telemetry as genai
from llmops_operator.servers import request_metrics as metrics

log = logging.getLogger("llmops.guardrails.transformer")

MAX_REQUEST_ID = 128
MAX_RULES_LOGGED = 20
HITS_RETURNED = 100
"""Hits a worker sends back with a verdict; the rest are counted, and the redacted text already has them."""

_worker_policy: PolicyFile | None = None
"""The policy a worker process serves (process-local: set once by the pool's initializer)."""

Counts = dict[tuple[str, str], int]


INLINE_SCAN_CHARS = 2048
"""Texts up to this many characters are scanned in the server process. Every pass is linear, so such a scan takes
0.2 ms for prose and about 10 ms at worst (number-dense text, each candidate validated), while the round trip to a
worker costs milliseconds on an idle node and tens of them on a busy one: short prompts and the stream guard's
windows are the common case. Anything longer goes to the workers under the time budget."""

WORKER_NICENESS = 10
"""Scans yield the CPU to the server process: probes and small requests stay fast while a big body is scanned."""


def _start_worker(path: str) -> None:
    global _worker_policy
    os.nice(WORKER_NICENESS)
    _worker_policy = PolicyFile(path)


def _warm() -> int:
    """Compile the policy now, not in the first request's time budget (an invalid one leaves the model not ready,
    which the server reports)."""
    try:
        _worker_policy.guardrail()
    except (OSError, PolicyError):
        pass
    return os.getpid()


def _scan(text: str, direction: str) -> tuple[Verdict, Counts]:
    return _scan_with(_worker_policy, text, direction)


def _scan_with(policy: PolicyFile, text: str, direction: str) -> tuple[Verdict, Counts]:
    verdict = policy.check(text, direction)
    return verdict.summarized(HITS_RETURNED), hit_counts(verdict)


def hit_counts(verdict: Verdict) -> Counts:
    return dict(Counter((hit.rule, hit.effect) for hit in verdict.hits))


def request_id_of(headers: Mapping[str, str]) -> str:
    """The caller's x-request-id when it is a short printable token, else a new one."""
    given = next((v for k, v in headers.items() if k.lower() == "x-request-id"), None)
    if isinstance(given, str) and 0 < len(given) <= MAX_REQUEST_ID and given.isprintable() and " " not in given:
        return given
    return uuid.uuid4().hex


def rules_summary(counts: Counts, verdict: Verdict) -> str:
    shown = [f"{rule}x{count}" for (rule, _), count in list(counts.items())[:MAX_RULES_LOGGED]]
    errors = [f"{error.rule}: {error.error}" for error in verdict.errors[:MAX_RULES_LOGGED]]
    return ", ".join(shown + errors)


class ScanPool:
    def __init__(self, policy: PolicyFile, timeout: float, workers: int, policy_id: str = "",
                 events_logger: Any = None) -> None:
        self.policy = policy
        self.timeout = timeout
        self.workers = workers
        self.policy_id = policy_id
        """The Guardrail whose policy this is, as events name it."""
        self.events_logger = events_logger
        """Where `gen_ai.guardrail.result` events go (the global OpenTelemetry logger provider when None)."""
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_start_worker, initargs=(str(self.policy.path),))
        return self._pool

    def start(self, timeout: float = 300.0) -> None:
        """Start the workers and compile the policy in each before the server takes requests (the model's load),
        so that no request's time budget is spent starting a process."""
        warming = [self._executor().submit(_warm) for _ in range(self.workers)]
        try:
            self.policy.check("", "input")  # compiles the policy (and loads its model) for inline scans too
        except (OSError, PolicyError):
            pass
        for started in warming:
            started.result(timeout)

    async def check(self, text: str, direction: str, request_id: str, record: bool = True) -> Verdict:
        """The verdict on `text` within the time budget; counted in the metrics and logged unless `record` is
        False (a stream's intermediate checks, whose final check is the one recorded)."""
        try:
            if len(text) <= INLINE_SCAN_CHARS:
                verdict, counts = _scan_with(self.policy, text, direction)
            else:
                scan = asyncio.wrap_future(self._executor().submit(_scan, text, direction))
                verdict, counts = await asyncio.wait_for(scan, self.timeout)
        except asyncio.TimeoutError:
            log.warning("request %s: %s scan of %d characters ran over its %gs budget", request_id, direction,
                        len(text), self.timeout)
            verdict = self.policy.guardrail().timed_out(direction, f"scan took over {self.timeout:g}s")
            counts = hit_counts(verdict)
        except BrokenProcessPool as err:  # a worker died (out of memory): start a new pool for the next request
            log.error("request %s: the scan worker died: %s", request_id, err)
            self._pool = None
            verdict = self.policy.guardrail().timed_out(direction, "the scan worker died")
            counts = hit_counts(verdict)
        if not record:
            return verdict
        for (rule, effect), count in counts.items():
            metrics.HITS.labels(rule=rule, direction=direction, effect=effect).inc(count)
        if verdict.outcome != ALLOWED or verdict.errors:
            log.info("request %s: %s %s by %s", request_id, direction, verdict.outcome, rules_summary(counts, verdict))
            genai.guardrail_events(verdict, policy_id=self.policy_id, policy_version=self._policy_version(),
                                   request_id=request_id, hit_counts=counts, logger=self.events_logger)
        return verdict

    def _policy_version(self) -> str:
        try:
            self.policy.guardrail()  # reloads a changed file, as the workers do
        except (OSError, PolicyError):
            pass
        return self.policy.version

    @property
    def verdict_detail(self) -> Any:
        return self.policy.guardrail().policy.verdict_detail
