"""Guardrail controller: compile the policy into a content-hashed ConfigMap; status says which one.

The self-test runs tenant patterns on built-in texts, so it never runs on the event loop: `SelfTests` runs it
in one worker thread (RE2 scans are linear, so a run always ends), waits at most the configured budget, runs
each policy hash once however many objects or passes ask, and status keeps the result by hash.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from llmops_operator.api.v1alpha1.guardrail import Guardrail, GuardrailSelfTest
from llmops_operator.builders.guardrail_policy import build_policy_configmap, policy_hash, policy_json
from llmops_operator.controllers.base import Context, Observation, Reconciler, Refs
from llmops_operator.guardrails.selftest import selftest_policy_json
from llmops_operator.k8s.resources import resource_for
from llmops_operator.status.guardrail import (
    SelfTestPending, guardrail_observation, kept_self_test, projected_guardrail_status,
)

REMEMBERED_RUNS = 256
"""Runs kept in memory until a pass picks their result up (status keeps it from then on)."""


class SelfTests:
    """Self-tests in a bounded worker, at most one run per policy hash."""

    def __init__(self, workers: int = 1) -> None:
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._runs: OrderedDict[str, asyncio.Future] = OrderedDict()

    def _start(self, digest: str, document: str) -> asyncio.Future:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="guardrail-selftest")
        run = asyncio.get_running_loop().run_in_executor(self._pool, selftest_policy_json, document, digest)
        self._runs[digest] = run
        while len(self._runs) > REMEMBERED_RUNS:
            self._runs.popitem(last=False)
        return run

    async def result(self, digest: str, document: str, budget: float) -> GuardrailSelfTest | SelfTestPending:
        run = self._runs.get(digest) or self._start(digest, document)
        try:
            report = await asyncio.wait_for(asyncio.shield(run), budget)
        except asyncio.TimeoutError:
            return SelfTestPending(True, f"the self-test of policy {digest} is still running after {budget:g}s")
        except Exception as err:  # the cause goes to the SelfTested condition
            self._runs.pop(digest, None)
            return SelfTestPending(False, f"the self-test of policy {digest} failed: {type(err).__name__}: {err}")
        self._runs.pop(digest, None)
        return report


class GuardrailReconciler(Reconciler):
    resource = Guardrail
    watches = (resource_for("v1", "ConfigMap"),)

    def __init__(self) -> None:
        self.self_tests = SelfTests()

    def children(self, obj: Guardrail, ctx: Context, refs: Refs) -> list[dict[str, Any]]:
        return [build_policy_configmap(obj)]

    async def observe(self, obj: Guardrail, live: list[dict[str, Any]], ctx: Context, api: Any) -> Any:
        kept = kept_self_test(obj)
        if kept is not None:
            return kept
        return await self.self_tests.result(policy_hash(obj.spec), policy_json(obj.spec),
                                            ctx.settings.guardrail_selftest_seconds)

    def status(self, obj: Guardrail, live: list[dict[str, Any]], facts: Any, ctx: Context,
               refs: Refs) -> Observation:
        return guardrail_observation(obj, live, facts)

    def projected_status(self, obj: Guardrail, ctx: Context) -> dict[str, Any] | None:
        return projected_guardrail_status(obj)
