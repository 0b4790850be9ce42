"""A PromptRelease's evaluation runs beside the reconcile passes, with the real Loop: on the real apiserver when it is
built (the chart's credentials, a `restricted` namespace; the emulator otherwise) for the slow service, on an emulator
of its own for the 50 MB dataset, which a real apiserver refuses before the operator sees it (over 1 MiB).

The target service is a stand-in for a tenant's transformer that answers slowly (the pass must not wait for
it); the dataset case stores a 50 MB ConfigMap (refused with a condition, while the loop keeps answering). The
passes run in an unwatched namespace with the operator's own Loop, so the worker's completion drives the pass
that records the result. The dataset case runs its API emulator in a process of its own: in this process its
encoding of the 50 MB object would hold the interpreter lock and stall the loop on the operator's account.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from apiservers import REAL_WHEN_BUILT, apiserver_kind, kube, new_namespace  # noqa: F401
from kube_helpers import Kube, condition, example, install_crds, unwatched_namespace
from local_http import local_server

from llmops_operator.api.v1alpha1 import PromptRelease
from llmops_operator.builders.prompts import routing_configmap_name
from llmops_operator.controllers.base import Loop
from llmops_operator.controllers.promptrelease import PromptReleaseReconciler
from llmops_operator.core.contract import parse
from llmops_operator.core.settings import Settings
from llmops_operator.k8s.kubeconfig import from_kubeconfig, load
from llmops_operator.k8s.client import ApiClient
from llmops_operator.k8s.resources import resource_for

pytestmark = [pytest.mark.integration]
APISERVERS = REAL_WHEN_BUILT  # the real apiserver when `make kube` built it, else the emulator

PRELS = resource_for("llmops.dev/v1alpha1", "PromptRelease")
LLMOPS_ISVC = resource_for("llmops.dev/v1alpha1", "InferenceService")
CONFIGMAP = resource_for("v1", "ConfigMap")
EXAMPLES = [{"variables": {"q": q}, "contains": "4"} for q in ("2+2?", "8/2?", "1+3?")]


EMULATOR = """
import sys
from llmops_sandbox.apiserver import ApiServerThread
with ApiServerThread() as server:
    server.write_kubeconfig(sys.argv[1])
    print("ready", flush=True)
    sys.stdin.read()
"""


@pytest.fixture(scope="module")
def apart(tmp_path_factory):
    """(kubeconfig path, client) of an API emulator running in a child process, with the CRDs installed."""
    path = tmp_path_factory.mktemp("apart") / "config"
    process = subprocess.Popen([sys.executable, "-c", EMULATOR, str(path)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "ready"
        kube = Kube(path)
        install_crds(kube)
        yield path, kube
    finally:
        process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@asynccontextmanager
async def slow_service(delay: float):
    """Answers every predict after `delay` seconds with the forced version, as the guardrail transformer does."""
    async def predict(request: web.Request) -> web.Response:
        if not request.headers.get("x-llmops-evaluation-token"):
            return web.Response(status=403, text="forced without the evaluation token")
        await asyncio.sleep(delay)
        version = request.headers["x-llmops-prompt-version"]
        return web.json_response({"predictions": [{"version": version, "text": "it is 4"}]})

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text="")

    app = web.Application()
    app.router.add_post("/v1/models/svc:predict", predict)
    app.router.add_get("/metrics", metrics)
    async with local_server(app) as url:
        yield url


def target(kube, namespace: str, url: str) -> None:
    service = example("InferenceService")
    service["metadata"] = {"name": "svc"}
    service["spec"]["promptReleaseRef"] = {"name": "chat"}
    kube.apply(service, namespace)
    kube.patch(LLMOPS_ISVC, namespace, "svc", {"status": {"url": url}}, subresource="status")


def release(evaluation: dict) -> dict:
    return {"apiVersion": "llmops.dev/v1alpha1", "kind": "PromptRelease", "metadata": {"name": "chat"},
            "spec": {"target": {"name": "svc"},
                     "versions": [{"name": "v1", "template": "A: {{ q }}"}, {"name": "v2", "template": "B: {{ q }}"}],
                     "rollout": {"stable": "v1", "canary": {"version": "v2", "steps": [
                         {"weight": 10, "minDuration": "10m"}, {"weight": 50}]}},
                     "analysis": {"minEvaluationScore": 0.5}, "evaluation": evaluation}}


async def timed_pass(loop: Loop, namespace: str) -> float:
    started = time.perf_counter()
    await loop.reconcile(await loop.api.get(PRELS, namespace, "chat"))
    return time.perf_counter() - started


async def until(check, timeout: float, what: str):
    """Poll the async `check` (never a blocking client: the loop under test must keep running)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = await check()
        if got:
            return got
        await asyncio.sleep(0.1)
    raise AssertionError(f"not true within {timeout}s: {what}")


def routes(kube, namespace: str) -> list[tuple[str, int]]:
    name = routing_configmap_name(parse(PromptRelease, kube.get(PRELS, namespace, "chat")))
    document = json.loads(kube.get(CONFIGMAP, namespace, name)["data"]["routing.json"])
    return [(r["version"], r["weight"]) for r in document["routes"]]


def rollout(release_body: dict) -> dict:
    return (release_body.get("status") or {}).get("rollout") or {}


def test_the_pass_returns_while_the_evaluation_runs(kube, new_namespace):
    namespace = new_namespace("prel-eval")  # not watched by an operator: the test runs the passes

    async def scenario() -> None:
        async with slow_service(delay=1.0) as url, ApiClient(load()) as api:  # the operator's credentials
            target(kube, namespace, url)
            kube.apply(release({"examples": EXAMPLES}), namespace)
            loop = Loop(PromptReleaseReconciler(), api, Settings())
            await timed_pass(loop, namespace)  # routes the candidate at weight 0
            assert rollout(kube.get(PRELS, namespace, "chat"))["state"] == "Evaluating"
            assert await timed_pass(loop, namespace) < 1.0  # starts the 6 s evaluation, does not wait
            assert await timed_pass(loop, namespace) < 1.0
            status = kube.get(PRELS, namespace, "chat")["status"]
            assert status["rollout"]["message"].endswith("not done yet: the evaluation is running")
            assert condition(kube.get(PRELS, namespace, "chat"), "Evaluated")["status"] == "Unknown"
            # No pass is run by hand from here: the finished evaluation asks for the one that records it.
            async def stepped() -> bool:
                return rollout(await api.get(PRELS, namespace, "chat")).get("state") == "Progressing"

            await until(stepped, 60, "evaluated and stepped")
            status = kube.get(PRELS, namespace, "chat")["status"]
            assert status["evaluation"]["score"] == 1.0 and status["evaluation"]["examples"] == 3
            assert status["canary"]["weight"] == 10 and status["rollout"]["reason"] == "Hold"
            assert routes(kube, namespace) == [("v1", 90), ("v2", 10)]  # applied by the pass that decided it
            await loop.drain()
            assert condition(kube.get(PRELS, namespace, "chat"), "Evaluated")["status"] == "True"

    asyncio.run(scenario())


def test_a_50_mb_dataset_is_refused_with_a_condition_and_the_loop_keeps_answering(apart):
    config, kube = apart
    namespace = unwatched_namespace(kube, "prel-big")
    line = '{"variables": {"q": "2+2?"}, "contains": "4"}\n'
    kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "eval"},
                "data": {"examples.jsonl": line * (50 * 1024 * 1024 // len(line))}}, namespace)

    async def scenario() -> list[float]:
        gaps, stop = [], asyncio.Event()

        async def ticker() -> None:
            last = time.perf_counter()
            while not stop.is_set():
                await asyncio.sleep(0.05)
                gaps.append(time.perf_counter() - last)
                last = time.perf_counter()

        async with slow_service(delay=0.0) as url, ApiClient(from_kubeconfig(str(config))) as api:
            target(kube, namespace, url)
            kube.apply(release({"dataset": {"name": "eval", "key": "examples.jsonl"}}), namespace)
            loop = Loop(PromptReleaseReconciler(), api, Settings())
            ticking = asyncio.create_task(ticker())
            await timed_pass(loop, namespace)
            assert await timed_pass(loop, namespace) < 1.0
            async def refusal() -> dict | None:
                evaluated = condition(await api.get(PRELS, namespace, "chat"), "Evaluated")
                return evaluated if evaluated and evaluated["status"] == "False" else None

            refused = await until(refusal, 30, "the dataset refused")
            await loop.drain()
            stop.set()
            await ticking
        assert refused["reason"] == "DatasetTooLarge"
        assert refused["message"].startswith("spec.evaluation.dataset: ConfigMap 'eval' key 'examples.jsonl': ")
        assert "a dataset of 1048576 bytes" in refused["message"]
        status = kube.get(PRELS, namespace, "chat")["status"]
        assert status["rollout"]["state"] == "Evaluating" and status["canary"]["weight"] == 0
        return gaps

    gaps = asyncio.run(scenario())
    print(f"longest event-loop gap: {max(gaps):.3f}s")
    assert max(gaps) < 1.0, f"the event loop stalled for {max(gaps):.2f}s"
