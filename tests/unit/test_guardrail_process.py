"""The guardrail engine's warm process: the operator never loads the engine, and the process leaves when idle."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmops_operator.api.v1alpha1 import Guardrail
from llmops_operator.builders.guardrail_policy import policy_json
from llmops_operator.controllers.guardrail import GuardrailReconciler
from llmops_operator.controllers.guardrail_process import WarmProcess, WorkerProcessError
from llmops_operator.core.contract import Context, parse
from llmops_operator.guardrails.offline_runs import DatasetError

OPERATOR = Path(__file__).resolve().parents[2] / "operator"


def guardrail(name: str) -> Guardrail:
    body = {"checks": [{"name": "pii", "type": "piiRedaction"}]}
    return parse(Guardrail, {"apiVersion": "llmops.dev/v1alpha1", "kind": "Guardrail",
                             "metadata": {"name": name, "namespace": "ml"}, "spec": body})


def self_test(process: WarmProcess, obj: Guardrail, idle_seconds: float = 60):
    ctx = Context.default()
    ctx.settings.guardrail_worker_idle_seconds = idle_seconds
    return asyncio.run(GuardrailReconciler(process).observe(obj, [], ctx, None)).self_test


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_the_operator_runs_a_self_test_without_loading_the_engine():
    script = """
import asyncio, json, sys
from llmops_operator.controllers.kinds import all_reconcilers
from llmops_operator.core.contract import Context, parse
from llmops_operator.api.v1alpha1 import Guardrail
from llmops_operator.builders.guardrail_policy import policy_json
[reconciler] = [r for r in all_reconcilers() if r.resource is Guardrail]
obj = parse(Guardrail, {"apiVersion": "llmops.dev/v1alpha1", "kind": "Guardrail",
                        "metadata": {"name": "g", "namespace": "ml"},
                        "spec": {"checks": [{"name": "pii", "type": "piiRedaction"}]}})
facts = asyncio.run(reconciler.observe(obj, [], Context.default(), None))
loaded = [m for m in ("llmops_operator.guardrails.engine", "numpy", "onnxruntime", "phonenumbers") if m in sys.modules]
print(json.dumps({"attacks": facts.self_test.attacks, "loaded": loaded}))
"""
    env = {**os.environ, "PYTHONPATH": str(OPERATOR)}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout.splitlines()[-1])
    assert answer["attacks"] > 0 and answer["loaded"] == []


def test_the_process_is_kept_between_runs_and_stopped_when_idle():
    process = WarmProcess(idle_seconds=60)
    try:
        first = self_test(process, guardrail("a"))
        pid = process.pid
        second = self_test(process, guardrail("b"))
        assert first.attacks > 0 and second.attacks > 0
        assert (process.started, process.runs, process.pid) == (1, 2, pid), "a second run started another process"
        self_test(process, guardrail("c"), idle_seconds=0.2)
        deadline = time.monotonic() + 10
        while (process.pid is not None or alive(pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.pid is None and not alive(pid), "the idle process was not stopped"
        self_test(process, guardrail("d"))
        assert process.started == 2
    finally:
        process.stop()


def test_objects_with_the_same_policy_share_one_run():
    process = WarmProcess()
    reconciler = GuardrailReconciler(process)
    try:
        for name in ("a", "b", "c"):
            facts = asyncio.run(reconciler.observe(guardrail(name), [], Context.default(), None))
            assert facts.self_test.attacks > 0
        assert process.runs == 1
    finally:
        process.stop()


def test_a_process_that_died_while_idle_is_started_again():
    process = WarmProcess()
    try:
        self_test(process, guardrail("a"))
        subprocess.run(["kill", "-9", str(process.pid)], check=True)
        assert self_test(process, guardrail("b")).attacks > 0
        assert process.started == 2
    finally:
        process.stop()


def test_errors_come_back_with_their_message():
    process, policy = WarmProcess(), policy_json(guardrail("a").spec)
    try:
        with pytest.raises(DatasetError, match="line 2: not JSON"):
            process.run("evaluation", [policy, '{"text": "hi", "expected": "allow"}\n{oops', "p", "d"])
        with pytest.raises(WorkerProcessError, match="^PolicyError: format: expected"):
            process.run("selfTest", [json.dumps({"format": 1, "checks": []}), "p"])
        assert process.run("evaluation", [policy, '{"text": "hi", "expected": "allow"}', "p", "d"])["passed"] == 1
        assert process.started == 1
    finally:
        process.stop()
