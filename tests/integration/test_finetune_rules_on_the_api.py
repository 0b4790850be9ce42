"""The CRD's rules for objective dpo, the red team, the judge and lm-eval tasks, enforced by the API server (CEL) before the
operator sees the object, with the same messages the operator's models give."""

from __future__ import annotations

import urllib.error

import pytest
import yaml

from apiservers import apiserver_kind, kube, namespace, new_namespace, operator  # noqa: F401  (on both APIs)
from kube_helpers import EXAMPLES

pytestmark = pytest.mark.integration


def dpo_example() -> dict:
    return yaml.safe_load((EXAMPLES / "preference-tuning.yaml").read_text())


def sft_example() -> dict:
    return next(d for d in yaml.safe_load_all((EXAMPLES / "finetune.yaml").read_text()) if d["kind"] == "FineTune")


def refuse(kube, namespace, body) -> str:
    with pytest.raises(urllib.error.HTTPError) as err:
        kube.apply(body, namespace)
    assert err.value.code == 422
    return err.value.body["message"]


def test_the_examples_are_accepted(kube, namespace):
    kube.apply(dpo_example(), namespace)
    kube.apply(sft_example(), namespace)


def test_the_api_refuses_what_dpo_cannot_run(kube, namespace):
    chat = dpo_example()
    chat["spec"]["dataset"]["chat"] = {}
    assert "objective dpo reads prompt/chosen/rejected" in refuse(kube, namespace, chat)
    settings_without_dpo = sft_example()
    settings_without_dpo["spec"]["dpo"] = {"beta": 0.2}
    assert "dpo settings apply to objective dpo only" in refuse(kube, namespace, settings_without_dpo)
    metric = sft_example()
    metric["spec"]["evaluation"]["metrics"] = ["perplexity", "rewardMargin"]
    assert "need objective dpo" in refuse(kube, namespace, metric)


def test_the_api_refuses_a_red_team_without_its_guardrail_and_a_gate_without_a_red_team(kube, namespace):
    unchecked = dpo_example()
    del unchecked["spec"]["evaluation"]["guardrailRef"]
    assert "evaluation.redTeam needs evaluation.guardrailRef" in refuse(kube, namespace, unchecked)
    no_red_team = dpo_example()
    del no_red_team["spec"]["evaluation"]["redTeam"]
    assert "gates.minRedTeamPassRate needs evaluation.redTeam" in refuse(kube, namespace, no_red_team)


def test_the_api_refuses_an_lm_eval_gate_without_one_bound_and_too_many_tasks(kube, namespace):
    both = sft_example()
    both["spec"]["evaluation"]["lmEval"]["tasks"][0]["gate"] = {"metric": "acc", "min": 0.2, "max": 0.9}
    assert "set exactly one of gate.min and gate.max" in refuse(kube, namespace, both)
    many = sft_example()
    many["spec"]["evaluation"]["lmEval"]["tasks"] = [{"name": f"task{i}"} for i in range(17)]
    assert "must have at most 16 items" in refuse(kube, namespace, many)
