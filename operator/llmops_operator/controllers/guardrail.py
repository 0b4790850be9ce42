"""Guardrail controller: compile the policy into a content-hashed ConfigMap; status says which one.

The self-test and spec.evaluation run tenant patterns on texts (built-in ones, and the tenant's dataset), so they
never run on the event loop, nor in the operator's process: `Worker` hands them, one at a time from one thread, to
the engine's warm process (controllers/guardrail_process; RE2 scans are linear, so a run always ends). A pass waits
at most the configured budget; each (policy, dataset) pair runs once however many objects or passes ask (the
result is remembered for the next object with the same policy), and status keeps the results by hash, so they
survive a restart. A run that outlasts the budget asks for a pass of each object that waited for it when it ends.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from llmops_operator.api.v1alpha1.guardrail import Guardrail, GuardrailEvaluationResult, GuardrailSelfTest
from llmops_operator.builders.guardrail_policy import build_policy_configmap, policy_hash, policy_json
from llmops_operator.builders.kserve import KSERVE_API_VERSION
from llmops_operator.builders.naming import short_hash
from llmops_operator.controllers.base import Context, Observation, Reconciler, Refs
from llmops_operator.controllers.guardrail_process import SHARED, WarmProcess, WorkerProcessError
from llmops_operator.guardrails.offline_runs import DatasetError
from llmops_operator.k8s.client import NotFound
from llmops_operator.k8s.resources import resource_for
from llmops_operator.status.guardrail import (
    RUNNING, GuardrailFacts, Pending, guardrail_observation, kept_evaluation, kept_self_test,
    projected_guardrail_status,
)

CONFIG_MAPS = resource_for("v1", "ConfigMap")
KSERVE_SERVICES = resource_for(KSERVE_API_VERSION, "InferenceService")
REMEMBERED_RUNS = 256
"""Runs and results kept in memory, the latest ones: a result serves every object with the same policy (and
dataset) until its own status keeps it."""


class Worker:
    """Runs in one bounded worker thread, at most one run per key; remembers the latest results."""

    def __init__(self, workers: int = 1) -> None:
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._runs: dict[str, asyncio.Future] = {}
        self._results: OrderedDict[str, Any] = OrderedDict()

    def _start(self, key: str, work: Callable[..., Any], args: tuple) -> asyncio.Future:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="guardrail-worker")
        run = asyncio.get_running_loop().run_in_executor(self._pool, work, *args)
        self._runs[key] = run
        run.add_done_callback(lambda done: self._finished(key, done))
        return run

    def _finished(self, key: str, run: asyncio.Future) -> None:
        """A run leaves `_runs` when it ends, whether or not anyone asks again (its object may be gone); a result
        is remembered, an error is not (the next ask runs again)."""
        self._runs.pop(key, None)
        if run.cancelled() or run.exception() is not None:
            return
        self._results[key] = run.result()
        while len(self._results) > REMEMBERED_RUNS:
            self._results.popitem(last=False)

    async def result(self, key: str, work: Callable[..., Any], args: tuple, budget: float,
                     failed: str = "Failed", then: Callable[[], None] | None = None) -> Any:
        """The work's result, or Pending (Running past the budget, and `then` is called when it ends; `failed` with
        the error when it raised)."""
        if key in self._results:
            self._results.move_to_end(key)
            return self._results[key]
        run = self._runs.get(key) or self._start(key, work, args)
        try:
            outcome = await asyncio.wait_for(asyncio.shield(run), budget)
        except asyncio.TimeoutError:
            if then is not None:
                run.add_done_callback(lambda _: then())
            return Pending(RUNNING, f"{key} is still running after {budget:g}s")
        except DatasetError as err:
            return Pending("InvalidDataset", f"{key}: {err}")
        except Exception as err:  # the cause goes to a condition
            cause = err if isinstance(err, WorkerProcessError) else f"{type(err).__name__}: {err}"
            return Pending(failed, f"{key} failed: {cause}")
        return outcome


class GuardrailReconciler(Reconciler):
    resource = Guardrail
    watches = (CONFIG_MAPS,)
    prunes_every_pass = True

    def __init__(self, process: WarmProcess | None = None) -> None:
        self.worker = Worker()
        self.process = process or SHARED

    def _self_test(self, policy: str, digest: str) -> GuardrailSelfTest:
        return GuardrailSelfTest.model_validate(self.process.run("selfTest", [policy, digest]))

    def _evaluate(self, policy: str, dataset: str, digest: str, dataset_hash: str) -> GuardrailEvaluationResult:
        return GuardrailEvaluationResult.model_validate(
            self.process.run("evaluation", [policy, dataset, digest, dataset_hash]))

    def children(self, obj: Guardrail, ctx: Context, refs: Refs) -> list[dict[str, Any]]:
        return [build_policy_configmap(obj)]

    async def in_use(self, obj: Guardrail, api: Any) -> set[tuple[str, str, str]]:
        """Policy ConfigMaps a KServe InferenceService in the namespace still mounts: after an edit, the serving
        revision keeps its policy until its InferenceService moves to the new one (or for good, while the new
        policy is not Ready), and its pods must still be able to start."""
        try:
            services = await api.list(KSERVE_SERVICES, obj.namespace)
        except NotFound:
            return set()
        return {("v1", "ConfigMap", volume["configMap"]["name"]) for service in services
                for volume in ((service.get("spec") or {}).get("transformer") or {}).get("volumes") or []
                if isinstance(volume.get("configMap"), dict) and volume["configMap"].get("name")}

    async def observe(self, obj: Guardrail, live: list[dict[str, Any]], ctx: Context, api: Any) -> GuardrailFacts:
        budget = ctx.settings.guardrail_selftest_seconds
        self.process.idle_seconds = ctx.settings.guardrail_worker_idle_seconds
        digest = policy_hash(obj.spec)
        self_test = kept_self_test(obj) or await self.worker.result(
            f"the self-test of policy {digest}", self._self_test, (policy_json(obj.spec), digest), budget,
            "SelfTestFailed", self._pass_again(obj))
        if obj.spec.evaluation is None:
            return GuardrailFacts(self_test)
        return GuardrailFacts(self_test, await self._evaluation(obj, api, budget))

    async def _evaluation(self, obj: Guardrail, api: Any, budget: float) -> Any:
        dataset = obj.spec.evaluation.dataset
        config_map = await api.get_or_none(CONFIG_MAPS, obj.namespace, dataset.name)
        text = ((config_map or {}).get("data") or {}).get(dataset.key)
        if not isinstance(text, str):
            where = f"ConfigMap {dataset.name!r}" + ("" if config_map is None else f" key {dataset.key!r}")
            return Pending("DatasetMissing", f"{where} not found in namespace {obj.namespace!r}")
        digest, dataset_hash = policy_hash(obj.spec), short_hash(text)
        return kept_evaluation(obj, dataset_hash) or await self.worker.result(
            f"the evaluation of policy {digest} on dataset {dataset.name}/{dataset.key} ({dataset_hash})",
            self._evaluate, (policy_json(obj.spec), text, digest, dataset_hash), budget, "EvaluationFailed",
            self._pass_again(obj))

    def _pass_again(self, obj: Guardrail) -> Callable[[], None] | None:
        """A pass over `obj` once a run it waited for past the budget ends, so status has the result at once."""
        requeue = self.requeue
        return None if requeue is None else (lambda: requeue(obj.namespace, obj.name))

    def status(self, obj: Guardrail, live: list[dict[str, Any]], facts: Any, ctx: Context,
               refs: Refs) -> Observation:
        return guardrail_observation(obj, live, facts)

    def projected_status(self, obj: Guardrail, ctx: Context) -> dict[str, Any] | None:
        return projected_guardrail_status(obj)
