"""Drift-triggered retraining: the decision table, the history it reads, the template and the run it builds."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from llmops_operator.api.v1alpha1 import FeatureView
from llmops_operator.builders.labels import RETRAINED_FROM
from llmops_operator.builders.retrain_run import (
    TEMPLATE_INVALID, TEMPLATE_MISSING, TemplateProblem, build_run, parse_template, runs_of,
)
from llmops_operator.core.contract import parse
from llmops_operator.controllers.retrain_loop import triggered_event
from llmops_operator.status.retraining import (
    ALREADY_TRIGGERED, COOLING_DOWN, MAX_RUNS_REACHED, NO_DRIFT, TRIGGER,
    RUN_IN_PROGRESS, History, decide, history_of, last_run, recorded, retraining_condition, status_block,
)

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
DAY = timedelta(hours=24)


def drift(drifted: bool = True, evaluated: datetime = NOW - timedelta(minutes=5)) -> dict:
    return {"metric": "psi", "score": 0.41 if drifted else 0.05, "threshold": 0.2, "drifted": drifted,
            "feature": "conv_rate", "evaluatedAt": evaluated.strftime("%Y-%m-%dT%H:%M:%SZ")}


def ran(hours_ago: float, runs: int = 1) -> History:
    return History(runs=runs, last_run="fv-retrain-abcde", last_run_kind="FineTune",
                   last_triggered=NOW - timedelta(hours=hours_ago))


@pytest.mark.parametrize(("drift_block", "history", "max_runs", "problem", "create", "reason"), [
    (None, History(), 3, None, False, NO_DRIFT),
    (drift(drifted=False), History(), 3, None, False, NO_DRIFT),
    (drift(), History(), 3, None, True, TRIGGER),
    # A run created after the drift evaluation it answers: never a second one for the same evaluation.
    (drift(evaluated=NOW - timedelta(hours=2)), ran(hours_ago=1), 3, None, False, ALREADY_TRIGGERED),
    (drift(), ran(hours_ago=1), 3, None, False, COOLING_DOWN),
    (drift(), ran(hours_ago=25), 3, None, True, TRIGGER),
    (drift(), ran(hours_ago=25, runs=3), 3, None, False, MAX_RUNS_REACHED),
    (drift(), ran(hours_ago=1, runs=3), 3, None, False, MAX_RUNS_REACHED),
    (drift(), History(), 3, (TEMPLATE_MISSING, "no ConfigMap"), False, TEMPLATE_MISSING),
    (drift(), ran(hours_ago=1), 3, (TEMPLATE_MISSING, "no ConfigMap"), False, COOLING_DOWN),
    (drift(drifted=False), History(), 3, (TEMPLATE_INVALID, "bad"), False, NO_DRIFT),
])
def test_decision_table(drift_block, history, max_runs, problem, create, reason):
    decision = decide(drift_block, history, NOW, DAY, max_runs, problem)
    assert (decision.create, decision.reason) == (create, reason)
    assert decision.message


def test_cooling_down_says_when_the_next_run_may_start():
    decision = decide(drift(), ran(hours_ago=1), NOW, DAY, 3)
    assert "2026-05-02T11:00:00Z" in decision.message and "fv-retrain-abcde" in decision.message


def run_body(name: str, created: str, uid: str = "owner-uid") -> dict:
    return {"kind": "FineTune", "metadata": {"name": name, "creationTimestamp": created,
                                             "ownerReferences": [{"uid": uid}]}}


def test_history_counts_runs_a_lost_status_write_did_not_record():
    found = [run_body("fv-retrain-aaaaa", "2026-05-01T10:00:00Z"), run_body("fv-retrain-bbbbb", "2026-05-01T11:00:00Z")]
    history = history_of({"runs": 1, "lastRun": "fv-retrain-aaaaa", "lastTriggered": "2026-05-01T10:00:00Z"}, found)
    assert history.runs == 2 and history.last_run == "fv-retrain-bbbbb"
    assert history.last_triggered == datetime(2026, 5, 1, 11, tzinfo=timezone.utc)
    assert history_of(None, []) == History()


def test_status_block_and_condition_after_a_run():
    decision = decide(drift(), History(), NOW, DAY, 3)
    history = recorded(History(), {"kind": "FineTune", "metadata": {"name": "fv-retrain-xyz12"}}, NOW)
    assert status_block(history) == {"runs": 1, "lastRun": "fv-retrain-xyz12", "lastRunKind": "FineTune",
                                     "lastTriggered": "2026-05-01T12:00:00Z"}
    condition = retraining_condition(decision, history)
    assert (condition.type, condition.status, condition.reason) == ("Retraining", "True", TRIGGER)
    assert "psi 0.410 on conv_rate" in condition.message
    assert status_block(History()) is None
    again = retraining_condition(decide(drift(), history, NOW, DAY, 1), history)
    assert (again.status, again.reason) == ("True", TRIGGER), "the run made for this evaluation is still current"
    later = NOW + timedelta(hours=1)
    blocked = retraining_condition(decide(drift(evaluated=later), history, later, DAY, 1), history)
    assert (blocked.status, blocked.reason) == ("False", MAX_RUNS_REACHED)


@pytest.mark.parametrize(("run_status", "expected"), [
    ({}, ("True", RUN_IN_PROGRESS)),  # not reconciled yet
    ({"phase": "Suspended", "conditions": [{"type": "Succeeded", "status": "Unknown"}]}, ("True", RUN_IN_PROGRESS)),
    ({"phase": "Succeeded", "conditions": [{"type": "Succeeded", "status": "True"}]}, ("False", MAX_RUNS_REACHED)),
    ({"phase": "Failed", "conditions": [{"type": "Succeeded", "status": "False"}]}, ("False", MAX_RUNS_REACHED)),
])
def test_retraining_stays_true_while_the_last_run_has_not_finished(run_status, expected):
    history = recorded(History(), {"kind": "FineTune", "metadata": {"name": "svc-retrain-a"}}, NOW)
    later = NOW + timedelta(hours=1)
    decision = decide(drift(evaluated=later), history, later, DAY, 1)
    run = {"kind": "FineTune", "metadata": {"name": "svc-retrain-a"}, "status": run_status}
    condition = retraining_condition(decision, history, last_run(history, [run]))
    assert (condition.status, condition.reason) == expected
    if expected[1] == RUN_IN_PROGRESS:
        assert "svc-retrain-a" in condition.message and "maxRuns" in condition.message
    assert last_run(history, []) is None


def finetune_template(**changes) -> str:
    docs = yaml.safe_load_all((ROOT / "manifests" / "examples" / "finetune.yaml").read_text())
    manifest = next(d for d in docs if d and d["kind"] == "FineTune")
    manifest["metadata"] = {"labels": {"team": "ranking"}}
    manifest.update(changes)
    return yaml.safe_dump(manifest)


def configmap(text: str | None) -> dict:
    return {"data": {} if text is None else {"manifest.yaml": text}}


@pytest.mark.parametrize(("config_map", "reason", "words"), [
    (None, TEMPLATE_MISSING, "does not exist"),
    (configmap(None), TEMPLATE_MISSING, "no key manifest.yaml"),
    (configmap("a: [b"), TEMPLATE_INVALID, "not YAML"),
    (configmap("- 1\n- 2\n"), TEMPLATE_INVALID, "one object"),
    (configmap(finetune_template(kind="Guardrail")), TEMPLATE_INVALID, "kind must be FineTune or TrainingJob"),
    (configmap(finetune_template(metadata={"name": "fixed"})), TEMPLATE_INVALID, "leave metadata.name out"),
    (configmap(finetune_template(spec={"method": "lora"})), TEMPLATE_INVALID, "spec.baseModel"),
])
def test_unusable_templates_are_named(config_map, reason, words):
    with pytest.raises(TemplateProblem) as err:
        parse_template(config_map, "retrain-ft")
    assert err.value.reason == reason
    assert "spec.retrain.template: ConfigMap 'retrain-ft'" in str(err.value) and words in str(err.value)


def owner() -> FeatureView:
    docs = yaml.safe_load_all((ROOT / "manifests" / "examples" / "featureview.yaml").read_text())
    body = next(d for d in docs if d and d["kind"] == "FeatureView")
    body["metadata"].update(namespace="ml", uid="owner-uid")
    body["spec"]["retrain"] = {"template": "retrain-ft"}
    return parse(FeatureView, body)


def test_the_run_is_the_template_with_a_generated_name_a_label_and_a_plain_owner_reference():
    fv = owner()
    assert fv.spec.retrain.cooldown == "24h" and fv.spec.retrain.max_runs == 3
    run = build_run(parse_template(configmap(finetune_template()), "retrain-ft"), fv)
    meta = run["metadata"]
    assert "name" not in meta and meta["generateName"] == "driver-stats-retrain-"
    assert meta["labels"] == {"team": "ranking", RETRAINED_FROM: "driver-stats"}
    assert meta["ownerReferences"] == [{"apiVersion": "llmops.dev/v1alpha1", "kind": "FeatureView",
                                        "name": "driver-stats", "uid": "owner-uid", "controller": False,
                                        "blockOwnerDeletion": False}]
    assert run["spec"]["method"] == "lora"
    found = [run_body("driver-stats-retrain-a", "2026-05-01T10:00:00Z"),
             run_body("driver-stats-retrain-b", "2026-05-01T10:00:00Z", uid="an-earlier-object-of-that-name")]
    assert [r["metadata"]["name"] for r in runs_of(fv, found)] == ["driver-stats-retrain-a"]
    event = triggered_event(fv, {**run, "metadata": {**meta, "name": "driver-stats-retrain-a"}}, "psi 0.41",
                            "2026-05-01T12:00:00Z")
    assert (event["reason"], event["involvedObject"]["uid"]) == ("RetrainTriggered", "owner-uid")
    assert event["message"] == "created FineTune driver-stats-retrain-a: psi 0.41"
