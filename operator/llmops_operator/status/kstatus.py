"""kstatus conditions every kind carries beside its own: `Reconciling` and `Stalled` (pure).

- `Reconciling=True` (reason and message of Ready) while work is in flight: the object is not Ready and its phase
  says something is still moving (Pending, Running, Waiting, Progressing), or a pass was cut short by an error
  the API server may not repeat (a conflict, throttling, a 5xx).
- `Stalled=True` when the operator cannot make progress without someone acting: the API server refused a write
  (403 from admission or quota, 404 for a missing CRD, 422 invalid), a child's name is taken by an object the
  operator does not control (`ChildConflict`), an engine's CRD is missing or too old (`EngineMissing`), or the spec
  is invalid (`InvalidSpec`). Ready is then False with the same reason and the API server's own message.

Neither condition is present when the object has settled (Ready, Succeeded, Failed, Stopped...), so tools that read
kstatus (Argo CD, Flux, `kubectl wait`) see Current, InProgress or Failed without kind-specific code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmops_operator.core import conditions as cond
from llmops_operator.core.contract import Observation

RECONCILING = "Reconciling"
STALLED = "Stalled"
IN_FLIGHT_PHASES = frozenset({"Pending", "Running", "Waiting", "Progressing"})
KSTATUS_TYPES = frozenset({cond.READY, RECONCILING, STALLED})
STATUS_BOOKKEEPING = frozenset({"conditions", "phase", "observedGeneration"})


@dataclass(frozen=True)
class PassFailure:
    """Why a reconcile pass could not finish: a CamelCase reason and the API server's message.

    `stalled`: someone must act (Stalled, Ready=False); otherwise a retry may succeed on its own (Reconciling)."""

    reason: str
    message: str
    stalled: bool = True


def with_progress(observation: Observation) -> Observation:
    """The reducer's observation plus the kstatus condition its Ready and phase imply."""
    ready = next((c for c in observation.conditions if c.type == cond.READY), None)
    extra: list[cond.Observed] = []
    if ready is not None and ready.status != "True":
        if ready.reason == cond.INVALID_SPEC:
            extra.append(cond.true(STALLED, ready.reason, ready.message))
        elif observation.phase in IN_FLIGHT_PHASES or ready.status == "Unknown":
            extra.append(cond.true(RECONCILING, ready.reason, ready.message))
    kept = [c for c in observation.conditions if c.type not in (RECONCILING, STALLED)]
    return Observation(conditions=kept + extra, phase=observation.phase, fields=observation.fields)


def failed_pass(previous: dict[str, Any] | None, failure: PassFailure) -> Observation:
    """The observation of a pass that stopped at `failure`: everything the last status said, kept (the progress,
    cost and drift blocks are still true), with the kstatus conditions saying why nothing moved."""
    previous = previous or {}
    kept = [_observed(c) for c in previous.get("conditions") or []
            if isinstance(c, dict) and c.get("type") and c.get("type") not in KSTATUS_TYPES]
    fields = {k: v for k, v in previous.items() if k not in STATUS_BOOKKEEPING}
    if failure.stalled:
        conditions = kept + [cond.false(cond.READY, failure.reason, failure.message),
                             cond.true(STALLED, failure.reason, failure.message)]
        return Observation(conditions=conditions, phase="Stalled", fields=fields)
    ready = cond.find(previous.get("conditions") or [], cond.READY)
    conditions = kept + ([_observed(ready)] if ready else []) + [
        cond.true(RECONCILING, failure.reason, failure.message)]
    return Observation(conditions=conditions, phase=str(previous.get("phase") or "Pending"), fields=fields)


def _observed(condition: dict[str, Any]) -> cond.Observed:
    return cond.Observed(str(condition.get("type")), str(condition.get("status", "Unknown")),
                         str(condition.get("reason", "")), str(condition.get("message", "")))
