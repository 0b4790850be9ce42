"""An InferenceService's budget: period accounting, the Alert / Stop decision, and the rendered stop switch."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from llmops_operator.api.v1alpha1.inferenceservice import InferenceService
from llmops_operator.builders.kserve import STOP_ANNOTATION
from llmops_operator.core.contract import Context, InvalidSpec, parse
from llmops_operator.controllers.inferenceservice import InferenceServiceReconciler, budget_event
from llmops_sandbox.standins.kserve_status import is_stopped, service_status, stopped_status
from llmops_operator.scoring.budget import PreviousSpend, accrue, previous_spend
from llmops_operator.core.settings import Settings

T0 = datetime(2026, 5, 1, 0, 0, tzinfo=timezone.utc)
HOUR = 3600.0
PERIOD = 10 * HOUR


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def prev(spent: float, start_h: float, updated_h: float, rate: float = 2.0, running: bool = True) -> PreviousSpend:
    return PreviousSpend(spent=spent, period_start=at(start_h), updated_at=at(updated_h), hourly_rate=rate,
                         running=running)


# ----- accounting ---------------------------------------------------------------------------------------------

ACCRUAL_CASES = [
    # (what, previous, now in hours, spent, period start in hours)
    ("no previous status starts a period at 0", None, 5.0, 0.0, 5.0),
    ("an hour at 2/h adds 2", prev(3.0, 0, 1), 2.0, 5.0, 0.0),
    ("nothing accrues while stopped or pending", prev(3.0, 0, 1, running=False), 4.0, 3.0, 0.0),
    ("a clock gone backwards adds nothing", prev(3.0, 0, 4), 2.0, 3.0, 0.0),
    ("a pass at the same instant adds nothing (no double count)", prev(3.0, 0, 4), 4.0, 3.0, 0.0),
    ("a new period restarts at 0 plus the time since it began", prev(18.0, 0, 9), 11.0, 2.0, 10.0),
    ("a gap of several periods lands in the current one", prev(18.0, 0, 9), 35.0, 10.0, 30.0),
    ("a stopped service starts the new period at 0", prev(20.0, 0, 9, running=False), 12.0, 0.0, 10.0),
    ("a clock before the period start keeps the period and adds nothing", prev(1.0, 5, 6), 3.0, 1.0, 5.0),
]


@pytest.mark.parametrize("what, previous, now_h, spent, start_h", ACCRUAL_CASES, ids=[c[0] for c in ACCRUAL_CASES])
def test_accrual(what, previous, now_h, spent, start_h):
    got = accrue(previous, PERIOD, at(now_h))
    assert got.spent == pytest.approx(spent)
    assert got.period_start == at(start_h)
    assert got.spent >= 0


def test_spend_is_rounded_as_money():
    got = accrue(prev(0.0, 0, 0, rate=0.123456789), PERIOD, at(1))
    assert got.spent == 0.1235


@pytest.mark.parametrize("cost, running, expected", [
    (None, True, None),
    ({"hourlyRate": 1.0, "updatedAt": "2026-05-01T01:00:00Z"}, True, None),  # written before budgets existed
    ({"hourlyRate": 1.0, "spent": 2.0, "periodStart": "garbage", "updatedAt": "2026-05-01T01:00:00Z"}, True, None),
    ({"hourlyRate": 1.0, "spent": -4.0, "periodStart": "2026-05-01T00:00:00Z", "updatedAt": "2026-05-01T01:00:00Z"},
     False, PreviousSpend(0.0, at(0), at(1), 1.0, running=False)),
    ({"hourlyRate": 1.5, "spent": 2.0, "periodStart": "2026-05-01T00:00:00Z", "updatedAt": "2026-05-01T01:00:00Z"},
     True, PreviousSpend(2.0, at(0), at(1), 1.5, running=True)),
])
def test_previous_spend_reads_the_last_status(cost, running, expected):
    assert previous_spend(cost, running) == expected


# ----- the decision, through the reconciler's pure pieces ---------------------------------------------------------

def body(budget: dict[str, Any] | None, status: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"model": {"uri": "pvc://models/assistant"}}
    if budget is not None:
        spec["budget"] = budget
    out = {"apiVersion": "llmops.dev/v1alpha1", "kind": "InferenceService",
           "metadata": {"name": "assistant", "namespace": "ml", "uid": "u-1", "generation": 1}, "spec": spec}
    if status is not None:
        out["status"] = status
    return out


def last_status(spent: float, phase: str = "Ready", exceeded: str = "False", rate: float = 0.2,
                kserve_service: str | None = "assistant") -> dict[str, Any]:
    return {"phase": phase, "observedGeneration": 1, "kserveService": kserve_service, "cost": {
        "currency": "USD", "hourlyRate": rate, "spent": spent, "periodStart": stamp(at(0)),
        "updatedAt": stamp(at(1))},
        "conditions": [{"type": "BudgetExceeded", "status": exceeded, "reason": "x", "message": "",
                        "lastTransitionTime": stamp(at(0))}]}


def kserve_ready(child: dict[str, Any]) -> dict[str, Any]:
    return {**child, "status": {"url": "http://assistant.ml", "conditions": [
        {"type": t, "status": "True"} for t in ("PredictorReady", "IngressReady", "Ready")]}}


def reconcile_pure(raw: dict[str, Any], now: datetime):
    obj = parse(InferenceService, raw)
    settings = Settings(runtime_image="registry.example/llmops:1.0")
    ctx = Context(settings=settings, catalog=settings.catalog, now=now)
    rec = InferenceServiceReconciler()
    children = rec.children(obj, ctx, {})
    observation = rec.status(obj, [kserve_ready(c) for c in children], None, ctx, {})
    return obj, children, observation


def conditions(observation) -> dict[str, Any]:
    return {c.type: c for c in observation.conditions}


def test_no_budget_tracks_spend_without_budget_conditions():
    _, children, observation = reconcile_pure(body(None, last_status(1.0)), at(2))
    assert STOP_ANNOTATION not in children[0]["metadata"].get("annotations", {})
    assert "BudgetExceeded" not in conditions(observation)
    cost = observation.fields["cost"]
    assert cost["spent"] > 1.0 and "budget" not in cost


def test_alert_sets_budget_exceeded_and_leaves_ready_alone():
    obj, children, observation = reconcile_pure(body({"limit": 1.0}, last_status(0.9)), at(2))
    found = conditions(observation)
    assert found["BudgetExceeded"].status == "True"
    assert found["Ready"].status == "True"
    assert observation.phase == "Ready"
    assert STOP_ANNOTATION not in children[0]["metadata"].get("annotations", {})
    assert observation.fields["cost"]["budget"] == 1.0
    event = budget_event(obj, observation, at(2))
    assert event["reason"] == "BudgetExceeded" and event["type"] == "Warning"
    assert event["involvedObject"]["uid"] == "u-1"


def test_the_event_is_posted_once_per_crossing():
    obj, _, observation = reconcile_pure(body({"limit": 1.0}, last_status(1.5, exceeded="True")), at(2))
    assert conditions(observation)["BudgetExceeded"].status == "True"
    assert budget_event(obj, observation, at(2)) is None


def test_stop_renders_kserve_s_stop_switch_and_reports_stopped():
    obj, children, observation = reconcile_pure(body({"limit": 1.0, "action": "Stop"}, last_status(0.9)), at(2))
    assert children[0]["metadata"]["annotations"][STOP_ANNOTATION] == "true"
    assert budget_event(obj, observation, at(2)) is None, "Ready's own transition Event announces a stop"
    ready = conditions(observation)["Ready"]
    assert (ready.status, ready.reason) == ("False", "BudgetExceeded")
    assert "spent 1.1 USD of the 1.0 budget" in ready.message
    assert observation.phase == "Stopped"


def test_a_raised_limit_lifts_the_stop():
    raw = body({"limit": 5.0, "action": "Stop"}, last_status(1.1, phase="Stopped", exceeded="True"))
    _, children, observation = reconcile_pure(raw, at(2))
    assert STOP_ANNOTATION not in children[0]["metadata"].get("annotations", {})
    assert conditions(observation)["BudgetExceeded"].status == "False"
    assert observation.phase == "Ready"
    assert observation.fields["cost"]["spent"] == 1.1  # nothing accrued while stopped


def test_a_new_period_lifts_the_stop():
    raw = body({"limit": 1.0, "action": "Stop", "period": "10h"}, last_status(1.1, phase="Stopped", exceeded="True"))
    _, children, observation = reconcile_pure(raw, at(10.5))
    assert STOP_ANNOTATION not in children[0]["metadata"].get("annotations", {})
    assert observation.fields["cost"]["spent"] == 0.0
    assert observation.fields["cost"]["periodStart"] == stamp(at(10))


@pytest.mark.parametrize("phase, kserve_service", [("Stopped", "assistant"), ("Pending", None)])
def test_nothing_accrues_after_a_pass_with_nothing_running(phase, kserve_service):
    raw = body({"limit": 100.0}, last_status(1.0, phase=phase, kserve_service=kserve_service))
    _, _, observation = reconcile_pure(raw, at(5))
    assert observation.fields["cost"]["spent"] == 1.0


def test_budget_below_a_period_at_the_floor_warns():
    _, _, observation = reconcile_pure(body({"limit": 0.01, "period": "720h"}), at(0))
    fits = conditions(observation)["BudgetFitsEstimate"]
    assert (fits.status, fits.reason) == ("False", "BudgetBelowEstimate")
    _, _, roomy = reconcile_pure(body({"limit": 100_000.0}), at(0))
    assert conditions(roomy)["BudgetFitsEstimate"].status == "True"


@pytest.mark.parametrize("budget, field", [
    ({"limit": 0}, "spec.budget.limit"),
    ({"limit": 1, "action": "Suspend"}, "spec.budget.action"),
    ({"limit": 1, "period": "0s"}, "spec.budget"),
    ({"limit": 1, "period": "a month"}, "spec.budget.period"),
])
def test_bad_budgets_name_the_field(budget, field):
    with pytest.raises(InvalidSpec, match=field.replace(".", r"\.")):
        parse(InferenceService, body(budget))


# ----- the KServe stand-in's view of the switch -----------------------------------------------------------------

def test_the_stand_in_reports_a_stopped_service_not_ready():
    obj = {"metadata": {"name": "assistant", "generation": 2, "annotations": {STOP_ANNOTATION: "true"}}}
    assert is_stopped(obj) and not is_stopped({"metadata": {"annotations": {STOP_ANNOTATION: "false"}}})
    status = stopped_status(obj, wants_transformer=True, now="2026-05-01T00:00:00Z")
    found = {c["type"]: c for c in status["conditions"]}
    assert found["Ready"]["status"] == "False" and found["Ready"]["reason"] == "Stopped"
    assert found["TransformerReady"]["status"] == "False" and found["Stopped"]["status"] == "True"
    assert status["url"] is None and status["components"] == {"predictor": None, "transformer": None}
    resumed = service_status({**obj, "status": status}, {}, False, "2026-05-01T00:01:00Z")
    assert "Stopped" not in {c["type"] for c in resumed["conditions"]}
