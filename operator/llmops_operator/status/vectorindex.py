"""Status of a VectorIndex, reduced from its ingest Job and the ingest runtime's report (pure).

Conditions (each reported on every pass):
- Ingested: set from the ingest Job of the current spec. True once it succeeded (the physical
  collection for this spec is built and the alias points at it); False with the Job's reason when it
  failed (backoff limit, deadline); Unknown while it is pending or running. Counts toward Ready.
- Ready: True when Ingested is True. While a changed spec is being re-embedded and the alias still
  serves the previous physical collection, Ready stays True (reason ServingPrevious): searches work
  and never see a half-built collection. Otherwise it mirrors Ingested.
- CleanupFailed: set by the finalizer, not by this reducer, only while a deleted object's cleanup Job
  failed or ran past its deadline (controllers/cleanup.py); the object stays until the cleanup succeeds
  or it carries llmops.dev/skip-cleanup.

Phase: Ready, Ingesting (pending or running), Failed.
The report (progress ConfigMap, written by the runtime) gives vectors, lastIngested, sourceDigest,
indexState and the drift block; it describes the collection the alias serves, which the status
shows as physicalCollection. The drift block is corpus drift: the served collection against the one the
alias served before the last ingest (not queries against documents).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from llmops_operator.api.v1alpha1.common import DriftStatus
from llmops_operator.api.v1alpha1.vectorindex import VectorIndex
from llmops_operator.core.contract import Observation
from llmops_operator.core import conditions as cond
from llmops_operator.status.batchjob import FAILED, SUCCEEDED, job_state, report

INGESTED = "Ingested"


def _typed(values: dict[str, Any], key: str, kind: type) -> Any:
    value = values.get(key)
    return value if isinstance(value, kind) and not isinstance(value, bool) else None


def _drift(values: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return DriftStatus.model_validate(values["drift"]).wire() if isinstance(values.get("drift"), dict) else None
    except ValidationError:
        return None


def served(values: dict[str, Any]) -> dict[str, Any]:
    """What the report says the alias serves: physicalCollection, vectors, lastIngested, embeddingModel, sourceDigest, indexState."""
    index = values.get("index") if isinstance(values.get("index"), dict) else {}
    return {"physicalCollection": _typed(values, "physicalCollection", str), "vectors": _typed(values, "vectors", int),
            "lastIngested": _typed(values, "ingestedAt", str), "embeddingModel": _typed(values, "embeddingModel", str),
            "sourceDigest": _typed(values, "sourceDigest", str), "indexState": _typed(index, "state", str)}


def vectorindex_observation(obj: VectorIndex, target: str, job: dict[str, Any] | None,
                            progress: dict[str, Any] | None) -> Observation:
    """`target` is the physical collection of the current spec; `job` its ingest Job as the API returned it."""
    state, values = job_state(job), report(progress)
    now_serving = served(values)
    if state.state == SUCCEEDED:
        ingested = cond.true(INGESTED, "Ingested", f"{target} is built and the alias {obj.collection} points at it")
        if now_serving["physicalCollection"] != target:
            now_serving = {"physicalCollection": target, "vectors": None, "lastIngested": state.completion_time}
        now_serving["embeddingModel"] = obj.spec.embedding.model
    elif state.state == FAILED:
        ingested = cond.false(INGESTED, state.reason, state.message)
    else:
        ingested = cond.unknown(INGESTED, "Ingesting" if state.state == "Running" else "Pending",
                                f"embedding the source into {target}: {state.message}")

    previous = now_serving["physicalCollection"]
    if ingested.status == "Unknown" and previous and previous != target:
        ready = cond.true(cond.READY, "ServingPrevious",
                          f"the alias {obj.collection} serves {previous} while {target} is built")
    else:
        ready = cond.aggregate_ready([ingested], [INGESTED], "Ingested", ingested.message)
    phase = {SUCCEEDED: "Ready", FAILED: "Failed"}.get(state.state, "Ingesting")
    fields = {"collection": obj.collection, **now_serving, "drift": _drift(values)}
    return Observation(conditions=[ingested, ready], phase=phase,
                       fields={k: v for k, v in fields.items() if v is not None})
