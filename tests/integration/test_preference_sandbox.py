"""The DPO example through the whole sandbox: `kubectl apply` of the tiny-llama TrainingJob, the Guardrail and the
preference FineTune; the operator waits for the base, renders the RayJob, the KubeRay stand-in runs the real
runtime (DeepSpeed ZeRO-2 on CPU, as the example says), and the FineTune ends Succeeded with its gates passed:
preference accuracy and reward margin on the held-out pairs, safety of its generations and of its answers to the
red-team prompts, the loss curve, and a cost.
"""

from __future__ import annotations

import pytest

pytest.importorskip("ray.train")
pytest.importorskip("peft")
pytest.importorskip("deepspeed")

from kube_helpers import EXAMPLES, sandbox_for_a_test  # noqa: E402

from llmops_operator.api.v1alpha1 import BY_KIND  # noqa: E402
from llmops_operator.core.settings import Settings  # noqa: E402
from llmops_sandbox.main import kind_resource, wait_for  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def sandbox(tmp_path):
    with sandbox_for_a_test(tmp_path / "sandbox", real_when_built=True, settings=Settings(resync_seconds=5)) as running:
        running.provide_claim("llmops-data", EXAMPLES / "data")
        yield running


@pytest.mark.timeout(1500)
def test_the_dpo_example_runs_to_succeeded_with_its_gates(sandbox):
    applied = sandbox.apply([EXAMPLES / "trainingjob-llama.yaml", EXAMPLES / "guardrail.yaml",
                             EXAMPLES / "preference-tuning.yaml"])
    sandbox.wait_reconciled(applied, timeout=120)
    where = kind_resource(BY_KIND["FineTune"])

    def finished():
        body = sandbox.client.get(where, "default", "tiny-llama-polite") or {}
        phase = (body.get("status") or {}).get("phase")
        return body if phase in ("Succeeded", "Failed", "GateFailed", "Invalid") else None

    status = wait_for(finished, 1380, "the DPO FineTune to finish", interval=2.0)["status"]
    assert status["phase"] == "Succeeded", status
    evaluation = status["evaluation"]
    assert evaluation["gate"] == "Passed" and evaluation["primaryMetric"] == "preferenceAccuracy", evaluation
    assert evaluation["scores"]["preferenceAccuracy"] >= 0.75 and evaluation["scores"]["rewardMargin"] > 0
    assert status["safety"]["evaluated"] == 8 and status["safety"]["score"] >= 0.9
    assert evaluation["redTeam"]["evaluated"] == 12 and evaluation["redTeam"]["score"] >= 0.9
    assert status["progress"]["loss"] < status["progress"]["firstLoss"] == pytest.approx(0.6931, abs=1e-3)
    assert status["cost"]["hourlyRate"] > 0 and status["outputUri"] == "pvc://llmops-models/tiny-llama-polite"
    base = sandbox.client.get(kind_resource(BY_KIND["TrainingJob"]), "default", "tiny-llama")["status"]
    # The example asks for Liger's kernels and activation checkpointing; a CPU worker runs the second only.
    assert base["progress"]["speedups"] == ["activationCheckpointing"], base["progress"]
