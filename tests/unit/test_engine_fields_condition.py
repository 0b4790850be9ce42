"""status/engine_fields: EngineFieldsDropped says what an older engine CRD made the operator leave out."""

from __future__ import annotations

from llmops_operator.builders.crd_fields import Dropped
from llmops_operator.core import conditions as cond
from llmops_operator.core.contract import Observation
from llmops_operator.status.engine_fields import FIELDS_DROPPED, with_dropped

READY = cond.true(cond.READY, "Succeeded")


def test_no_drop_leaves_the_observation_as_it_is():
    observation = Observation(conditions=[READY], phase="Succeeded")
    assert with_dropped(observation, [None]) is observation


def test_a_drop_is_a_true_condition_beside_ready():
    dropped = Dropped("RayJob", "a", "rayjobs.ray.io", ("spec.preRunningDeadlineSeconds",), "KubeRay v1.6")
    out = with_dropped(Observation(conditions=[READY], phase="Succeeded", fields={"x": 1}), [None, dropped])
    by_type = {c.type: c for c in out.conditions}
    assert by_type[cond.READY] == READY and out.phase == "Succeeded" and out.fields == {"x": 1}
    assert by_type[FIELDS_DROPPED].status == "True"
    assert "spec.preRunningDeadlineSeconds" in by_type[FIELDS_DROPPED].message
    assert "rayjobs.ray.io" in by_type[FIELDS_DROPPED].message
