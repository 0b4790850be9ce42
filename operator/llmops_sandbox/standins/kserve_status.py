"""The status the KServe stand-in writes, shaped as KServe's InferenceServiceStatus (pure).

KServe (pkg/apis/serving/v1beta1/inference_service_status.go) reports: url, address.url, conditions
(PredictorReady, TransformerReady when a transformer is declared, IngressReady, and Ready, which is True when all
of them are), components.<component>.{url, address, latestCreatedRevision, latestReadyRevision, traffic[]} and
modelStatus.{states.{activeModelState, targetModelState}, transitionStatus, lastFailureInfo, copies}.
The sandbox runs one process per component and only its latest revision, so traffic is 100% to that revision.
A service stopped through KServe's `serving.kserve.io/stop: "true"` annotation has no running component: every
component condition, IngressReady and Ready are False with reason Stopped, and a Stopped condition is True.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmops_operator.core import conditions as cond

PREDICTOR, TRANSFORMER = "predictor", "transformer"
STARTING, READY, FAILED = "Starting", "Ready", "Failed"
CONDITION = {PREDICTOR: "PredictorReady", TRANSFORMER: "TransformerReady"}
INGRESS_READY = "IngressReady"
STOPPED = "Stopped"
STOP_ANNOTATION = "serving.kserve.io/stop"


def is_stopped(obj: dict[str, Any]) -> bool:
    """Whether the InferenceService asks KServe to stop it (the annotation's value is exactly "true")."""
    return ((obj.get("metadata") or {}).get("annotations") or {}).get(STOP_ANNOTATION) == "true"


@dataclass(frozen=True)
class ComponentState:
    """What the stand-in knows about one component's process."""

    component: str
    phase: str  # Starting | Ready | Failed
    revision: int
    url: str | None = None
    reason: str = ""
    message: str = ""
    since: str = ""
    """When the component reached its phase (the failure time for Failed)."""


def revision_name(service: str, component: str, revision: int) -> str:
    return f"{service}-{component}-{revision:05d}"


def component_condition(state: ComponentState | None, component: str) -> cond.Observed:
    type_ = CONDITION[component]
    if state is None or state.phase == STARTING:
        return cond.unknown(type_, (state and state.reason) or "Deploying",
                            (state and state.message) or f"the {component} is starting")
    if state.phase == FAILED:
        return cond.false(type_, state.reason, state.message)
    return cond.true(type_, "", "")


def component_status(service: str, state: ComponentState) -> dict[str, Any]:
    created = revision_name(service, state.component, state.revision)
    block: dict[str, Any] = {"latestCreatedRevision": created}
    if state.url:
        block |= {"url": state.url, "address": {"url": state.url}}
    if state.phase == READY:
        block |= {"latestReadyRevision": created, "latestRolledoutRevision": created,
                  "traffic": [{"revisionName": created, "percent": 100, "latestRevision": True}]}
    return block


def model_status(predictor: ComponentState | None, now: str) -> dict[str, Any]:
    """KServe's modelStatus for the predictor's model: Loading, Loaded or FailedToLoad."""
    if predictor is not None and predictor.phase == READY:
        return {"states": {"activeModelState": "Loaded", "targetModelState": "Loaded"},
                "transitionStatus": "UpToDate", "copies": {"totalCopies": 1, "failedCopies": 0}}
    if predictor is not None and predictor.phase == FAILED:
        invalid = predictor.reason in ("InvalidStorageUri", "NoSupportingRuntime")
        return {"states": {"activeModelState": "", "targetModelState": "FailedToLoad"},
                "transitionStatus": "InvalidSpec" if invalid else "BlockedByFailedLoad",
                "lastFailureInfo": {"reason": "ModelLoadFailed" if not invalid else predictor.reason,
                                    "message": predictor.message, "time": predictor.since or now},
                "copies": {"totalCopies": 1, "failedCopies": 1}}
    return {"states": {"activeModelState": "", "targetModelState": "Loading"}, "transitionStatus": "InProgress",
            "copies": {"totalCopies": 0, "failedCopies": 0}}


def entry_component(states: dict[str, ComponentState]) -> ComponentState | None:
    """Where the service's URL routes: the transformer when there is one, else the predictor."""
    return states.get(TRANSFORMER) or states.get(PREDICTOR)


def service_status(obj: dict[str, Any], states: dict[str, ComponentState], wants_transformer: bool,
                   now: str) -> dict[str, Any]:
    """The whole status block for the InferenceService `obj` (previous conditions keep their transition times)."""
    name = obj["metadata"]["name"]
    components = [PREDICTOR, *([TRANSFORMER] if wants_transformer else [])]
    observed = [component_condition(states.get(c), c) for c in components]
    entry = entry_component(states)
    if entry is not None and entry.phase == READY and all(o.status == "True" for o in observed):
        ingress = cond.true(INGRESS_READY, "", "")
    else:
        ingress = cond.unknown(INGRESS_READY, "Deploying", "waiting for the components to become ready")
    ready = cond.aggregate_ready([*observed, ingress], [*(o.type for o in observed), INGRESS_READY])
    conditions = _wire_conditions(obj, [*observed, ingress, ready], now)
    status: dict[str, Any] = {
        "observedGeneration": obj["metadata"].get("generation"),
        "conditions": conditions,
        "components": {c: (component_status(name, states[c]) if c in states else None)
                       for c in (PREDICTOR, TRANSFORMER)},
        "modelStatus": model_status(states.get(PREDICTOR), now),
    }
    if not wants_transformer:
        status["components"][TRANSFORMER] = None  # merge-patch: drop a transformer the spec no longer has
    url = entry.url if entry is not None and ingress.status == "True" else None
    status["url"] = url
    status["address"] = {"url": url} if url else None
    return status


def _wire_conditions(obj: dict[str, Any], observed: list[cond.Observed], now: str) -> list[dict[str, Any]]:
    previous = (obj.get("status") or {}).get("conditions") or []
    return [{k: v for k, v in c.items() if k != "observedGeneration" and (v or k != "reason")}
            for c in cond.merge(previous, observed, None, now)]


def stopped_status(obj: dict[str, Any], wants_transformer: bool, now: str) -> dict[str, Any]:
    """The status of a stopped InferenceService: no components, no URL, not Ready."""
    message = f"the InferenceService is stopped ({STOP_ANNOTATION}: \"true\")"
    components = [PREDICTOR, *([TRANSFORMER] if wants_transformer else [])]
    observed = [cond.false(CONDITION[c], STOPPED, message) for c in components]
    observed += [cond.false(INGRESS_READY, STOPPED, message), cond.true(STOPPED, STOPPED, message),
                 cond.false(cond.READY, STOPPED, message)]
    return {
        "observedGeneration": obj["metadata"].get("generation"),
        "conditions": _wire_conditions(obj, observed, now),
        "components": {PREDICTOR: None, TRANSFORMER: None},
        "modelStatus": None, "url": None, "address": None,
    }
