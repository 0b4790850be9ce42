"""`EngineFieldsDropped`: the fields the operator left out of a child because the installed engine CRD does not
declare them (pure).

Present (True) only while something was left out, with one line per child naming the CRD, the fields and the
engine version that declares them. It does not count toward Ready: the child was written and runs without them.
"""

from __future__ import annotations

from typing import Iterable

from llmops_operator.builders.crd_fields import Dropped
from llmops_operator.core import conditions as cond
from llmops_operator.core.contract import Observation

FIELDS_DROPPED = "EngineFieldsDropped"
NOT_DECLARED = "NotDeclaredByInstalledCRD"


def with_dropped(observation: Observation, dropped: Iterable[Dropped | None]) -> Observation:
    """The observation plus `EngineFieldsDropped` when any child lost fields."""
    lines = [d.message() for d in dropped if d is not None]
    if not lines:
        return observation
    extra = cond.true(FIELDS_DROPPED, NOT_DECLARED, "; ".join(lines))
    kept = [c for c in observation.conditions if c.type != FIELDS_DROPPED]
    return Observation(conditions=kept + [extra], phase=observation.phase, fields=observation.fields)
