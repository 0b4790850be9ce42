"""The DPO example, run by the real runtime: a tiny Llama-architecture base with LoRA learns to prefer the chosen
replies of its pairs over the rejected ones, against the base with its adapters switched off as the reference;
then the evaluation scores held-out pairs it never saw.

Real Ray Train on a local Ray cluster (plain DDP over gloo rather than the example's DeepSpeed, to keep the run
short on a small machine), real files, no downloads.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

pytest.importorskip("ray.train")
pytest.importorskip("peft")

from model_servers import tiny_llama_base  # noqa: E402

from llmops_operator.api.v1alpha1 import FineTune  # noqa: E402
from llmops_operator.builders.runconfig import finetune_run_config  # noqa: E402
from llmops_operator.core.contract import parse  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "manifests/examples"
EXAMPLE = EXAMPLES / "preference-tuning.yaml"


def example_config(tmp_path: Path, base_uri: str) -> dict:
    body = yaml.safe_load(EXAMPLE.read_text())
    body["metadata"]["namespace"] = "ml"
    spec = body["spec"]
    spec["baseModel"] = {"uri": base_uri}
    spec["dataset"]["uri"] = str(EXAMPLES / "data/preference/tiny-preference.jsonl")
    spec["evaluation"]["dataset"]["uri"] = str(EXAMPLES / "data/preference/tiny-preference-eval.jsonl")
    # The Guardrail's compiled policy is the operator's to resolve; the sandbox test runs the safety gates.
    spec["evaluation"].pop("guardrailRef")
    spec["evaluation"].pop("redTeam")
    spec["gates"].pop("minSafety")
    spec["gates"].pop("minRedTeamPassRate")
    spec["deepspeed"] = {"enabled": False}
    spec["output"] = {"uri": str(tmp_path / "out")}
    config = finetune_run_config(parse(FineTune, body), base_uri)
    config["progress"] = None  # no API server here: the run reports in its result and log only
    return config


@pytest.mark.timeout(900)
def test_the_dpo_example_learns_to_prefer_the_chosen_replies(tmp_path, ray_local):
    from llmops_operator.entrypoints.evaluate import evaluate
    from llmops_operator.entrypoints.train import fit

    config = example_config(tmp_path, tiny_llama_base(tmp_path / "base"))
    assert config["objective"] == "dpo" and config["dpo"] == {"beta": 0.1, "lossType": "sigmoid"}

    before = evaluate({**config, "output": {"uri": str(tmp_path / "base")}})  # the base against itself
    assert before["scores"]["rewardMargin"] == 0 and before["scores"]["preferenceAccuracy"] == 0, before

    fit(config)
    assert (tmp_path / "out" / "adapter_config.json").exists()

    after = evaluate(config)
    gate = yaml.safe_load(EXAMPLE.read_text())["spec"]["gates"]["minScore"]
    assert after["scores"]["preferenceAccuracy"] >= gate, after
    assert after["scores"]["rewardMargin"] > 0 and after["scores"]["perplexity"] > 1, after
    print("scores before", before["scores"], "after", after["scores"])
