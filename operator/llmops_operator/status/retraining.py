"""Drift-triggered retraining: whether to create a run now, and the Retraining condition (pure).

Condition (only when spec.retrain is set; informational, never counts toward Ready):
- Retraining: True/RetrainTriggered in the pass that created a run, and while the run made for the current
  drift evaluation is the last one; True/RunInProgress while the last run drift created has not finished
  (its Succeeded condition is neither True nor False: running, pending or suspended), whatever drift says
  now; False otherwise, with the reason no run is created now: NoDrift, CoolingDown, MaxRunsReached,
  TemplateMissing (the ConfigMap or its key is absent) or TemplateInvalid.

A run is "for the current drift evaluation" when it was triggered at or after status.drift.evaluatedAt: a pass
that sees such a run creates nothing, so a retried or repeated reconcile never creates a second run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from llmops_operator.core import conditions as cond

RETRAINING = "Retraining"
TRIGGER = "RetrainTriggered"
NO_DRIFT = "NoDrift"
ALREADY_TRIGGERED = "AlreadyTriggered"
MAX_RUNS_REACHED = "MaxRunsReached"
COOLING_DOWN = "CoolingDown"
RUN_IN_PROGRESS = "RunInProgress"


@dataclass(frozen=True)
class History:
    """What is known of earlier runs: from status.retrain, completed by the runs found in the namespace."""

    runs: int = 0
    last_run: str | None = None
    last_run_kind: str | None = None
    last_triggered: datetime | None = None


@dataclass(frozen=True)
class Decision:
    """create: make a run now; otherwise reason (one of the constants above) and a message saying why not."""

    create: bool
    reason: str
    message: str


def _drift_summary(drift: dict[str, Any]) -> str:
    score = drift.get("score")
    shown = f"{score:.3f}" if isinstance(score, (int, float)) else "?"
    where = drift.get("feature") or "live data"
    return f"{drift.get('metric', 'drift')} {shown} on {where} (threshold {drift.get('threshold')})"


def decide(drift: dict[str, Any] | None, history: History, now: datetime, cooldown: timedelta, max_runs: int,
           template_problem: tuple[str, str] | None = None) -> Decision:
    """Whether to create a run now. template_problem: (TemplateMissing|TemplateInvalid, message) when the
    template cannot be used. Checks in order: drift, a run already made for this evaluation, maxRuns,
    cooldown, template."""
    if not drift or not drift.get("drifted"):
        return Decision(False, NO_DRIFT, "drift is not above its threshold")
    evaluated = cond.parse_rfc3339(drift.get("evaluatedAt"))
    last = history.last_triggered
    if last is not None and evaluated is not None and last >= evaluated:
        return Decision(False, ALREADY_TRIGGERED,
                        f"{history.last_run_kind} {history.last_run} was created for this drift evaluation")
    if history.runs >= max_runs:
        return Decision(False, MAX_RUNS_REACHED,
                        f"{history.runs} of maxRuns {max_runs} runs created; raise spec.retrain.maxRuns for more")
    if last is not None and now - last < cooldown:
        return Decision(False, COOLING_DOWN,
                        f"{_drift_summary(drift)}; the last run {history.last_run} was created at "
                        f"{cond.now_rfc3339(last)}, the next may start after {cond.now_rfc3339(last + cooldown)}")
    if template_problem is not None:
        return Decision(False, *template_problem)
    return Decision(True, TRIGGER, _drift_summary(drift))


def history_of(status_block: dict[str, Any] | None, found: list[dict[str, Any]]) -> History:
    """Status.retrain completed by the runs found (labelled retrained-from the owner): the larger count and the
    newest run win, so a status write lost after a create still counts that run."""
    block = status_block or {}
    history = History(runs=int(block.get("runs") or 0), last_run=block.get("lastRun"),
                      last_run_kind=block.get("lastRunKind"),
                      last_triggered=cond.parse_rfc3339(block.get("lastTriggered")))
    newest = max(found, key=lambda r: r["metadata"].get("creationTimestamp") or "", default=None)
    created = cond.parse_rfc3339(newest["metadata"].get("creationTimestamp")) if newest else None
    if newest and created and (history.last_triggered is None or created > history.last_triggered):
        history = History(runs=history.runs, last_run=newest["metadata"]["name"], last_run_kind=newest["kind"],
                          last_triggered=created)
    return History(runs=max(history.runs, len(found)), last_run=history.last_run,
                   last_run_kind=history.last_run_kind, last_triggered=history.last_triggered)


def recorded(history: History, run: dict[str, Any] | None, now: datetime) -> History:
    """The history after creating `run` (None: nothing created)."""
    if run is None:
        return history
    return History(runs=history.runs + 1, last_run=run["metadata"]["name"], last_run_kind=run["kind"],
                   last_triggered=now)


def status_block(history: History) -> dict[str, Any] | None:
    """status.retrain (camelCase); None before the first run."""
    if history.runs == 0 and history.last_run is None:
        return None
    block = {"runs": history.runs, "lastRun": history.last_run, "lastRunKind": history.last_run_kind,
             "lastTriggered": cond.now_rfc3339(history.last_triggered) if history.last_triggered else None}
    return {k: v for k, v in block.items() if v is not None}


def unfinished(run: dict[str, Any] | None) -> bool:
    """Whether a FineTune/TrainingJob has yet to finish: its Succeeded condition is not True or False."""
    if run is None:
        return False
    succeeded = cond.find((run.get("status") or {}).get("conditions") or [], "Succeeded") or {}
    return succeeded.get("status") not in ("True", "False")


def last_run(history: History, found: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The live object of the last run drift created, when it still exists."""
    return next((r for r in found if r["metadata"]["name"] == history.last_run), None)


def retraining_condition(decision: Decision, history: History, running: dict[str, Any] | None = None
                         ) -> cond.Observed:
    """Retraining after this pass; `history` already includes a run created in it; `running` is the last run's
    live object when it has not finished."""
    if decision.create or decision.reason == ALREADY_TRIGGERED:
        return cond.true(RETRAINING, TRIGGER,
                         f"created {history.last_run_kind} {history.last_run} ({history.runs} so far)"
                         + (f": {decision.message}" if decision.create else ""))
    if unfinished(running):
        phase = (running.get("status") or {}).get("phase") or "Pending"
        return cond.true(RETRAINING, RUN_IN_PROGRESS,
                         f"{history.last_run_kind} {history.last_run} is {phase}; then: {decision.message}")
    return cond.false(RETRAINING, decision.reason, decision.message)
