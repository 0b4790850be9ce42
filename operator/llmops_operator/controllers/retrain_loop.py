"""The drift -> retrain closed loop, shared by the kinds that report drift (InferenceService, FeatureView).

After a pass has reduced status, `close_loop` reads the template ConfigMap and the runs already made (facts),
asks the pure `status.retrain.decide` whether to create a run, creates at most one, and adds status.retrain,
the Retraining condition and, when a run was created, a RetrainTriggered Event.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from llmops_operator.api.v1alpha1.common import Resource
from llmops_operator.api.v1alpha1.retrain import RetrainSpec
from llmops_operator.api.v1alpha1.units import parse_duration
from llmops_operator.builders.labels import RETRAINED_FROM
from llmops_operator.builders.retrain_run import RUN_KINDS, TemplateProblem, build_run, parse_template, runs_of
from llmops_operator.controllers.base import Context, Observation
from llmops_operator.controllers import events
from llmops_operator.k8s.client import ApiClient
from llmops_operator.k8s.resources import ApiResource, resource_for
from llmops_operator.core import conditions as cond
from llmops_operator.status import retraining as retrain

CONFIGMAP = resource_for("v1", "ConfigMap")
log = logging.getLogger("llmops.retrain")


@dataclass(frozen=True)
class RetrainFacts:
    """The template's run manifest (or why it cannot be used) and the runs this object made before."""

    template: dict[str, Any] | None
    problem: tuple[str, str] | None
    found: list[dict[str, Any]]


def run_resource(kind: str) -> ApiResource:
    return resource_for(RUN_KINDS[kind].model_fields["api_version"].default, kind)


async def observe_retrain(obj: Resource, spec: RetrainSpec, api: ApiClient) -> RetrainFacts:
    """Read the template ConfigMap and list the runs labelled retrained-from this object (both kinds)."""
    template, problem = None, None
    try:
        template = parse_template(await api.get_or_none(CONFIGMAP, obj.namespace, spec.template), spec.template)
    except TemplateProblem as err:
        problem = (err.reason, str(err))
    found: list[dict[str, Any]] = []
    for kind in RUN_KINDS:
        found += await api.list(run_resource(kind), obj.namespace, f"{RETRAINED_FROM}={obj.name}")
    return RetrainFacts(template=template, problem=problem, found=runs_of(obj, found))


def triggered_event(obj: Resource, run: dict[str, Any], message: str, now: str) -> dict[str, Any]:
    """The RetrainTriggered Event on the object whose drift created `run` (pure)."""
    return events.event(events.involved(obj), retrain.TRIGGER,
                        f"created {run['kind']} {run['metadata']['name']}: {message}", "Normal", now)


async def _create(obj: Resource, template: dict[str, Any], message: str, now: str,
                  api: ApiClient) -> dict[str, Any]:
    manifest = build_run(template, obj)
    run = await api.request("POST", run_resource(manifest["kind"]).path(obj.namespace), manifest)
    await events.post(api, triggered_event(obj, run, message, now))
    return run


async def close_loop(obj: Resource, observation: Observation, ctx: Context, api: ApiClient) -> Observation:
    """The observation with status.retrain and Retraining added, after creating a run if the decision says so.

    Objects without spec.retrain are returned unchanged."""
    spec = getattr(obj.spec, "retrain", None)
    if spec is None:
        return observation
    facts = await observe_retrain(obj, spec, api)
    last = getattr(obj.status, "retrain", None)
    previous = last.wire() if last is not None else None
    history = retrain.history_of(previous, facts.found)
    decision = retrain.decide(observation.fields.get("drift"), history, ctx.now,
                              timedelta(seconds=parse_duration(spec.cooldown)), spec.max_runs, facts.problem)
    run = None
    if decision.create and facts.template is not None:
        run = await _create(obj, facts.template, decision.message, cond.now_rfc3339(ctx.now), api)
        log.info("%s %s/%s: drift created %s %s", obj.kind, obj.namespace, obj.name, run["kind"],
                 run["metadata"]["name"])
    history = retrain.recorded(history, run, ctx.now)
    fields = dict(observation.fields)
    fields.pop("retrain", None)
    if (block := retrain.status_block(history)) is not None:
        fields["retrain"] = block
    running = None if run is not None else retrain.last_run(history, facts.found)
    conditions = [*observation.conditions, retrain.retraining_condition(decision, history, running)]
    return replace(observation, conditions=conditions, fields=fields)
