"""The LoRA adapters of an InferenceService: which FineTunes have an adapter to serve, and each one's share (pure).

An adapter is Served once its FineTune has succeeded with an adapter output (method lora or qlora, mergeAdapter
false): it is then listed in the adapters ConfigMap, which the predictor reloads while it runs. Until then it is
Pending, and Invalid when the FineTune's output is a whole model or (on a GPU) vLLM cannot load it; the base model
and the other adapters keep serving meanwhile.

Condition (only with spec.adapters; informational, since the base model serves regardless):
- AdaptersReady: True when every adapter is Served; False with reason AdaptersPending (a FineTune has not
  succeeded yet) or AdapterInvalid (naming the adapter and why), Invalid taking precedence.

status.adapters[] carries, per adapter, its requests, tokens, share of the service's tokens, the hourly rate
times that share, and the live safety of its requests, from the runtime's per-model metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmops_operator.api.v1alpha1.inferenceservice import InferenceService
from llmops_operator.api.v1alpha1.serving_adapters import AdapterServingStatus
from llmops_operator.builders.adapters import ServedAdapter, vllm_unsupported
from llmops_operator.core import conditions as cond
from llmops_operator.core.contract import Refs
from llmops_operator.scoring.serving_metrics import ServingSample, model_usage

ADAPTERS_READY = "AdaptersReady"
PENDING, INVALID, SERVED = "Pending", "Invalid", "Served"


@dataclass(frozen=True)
class AdapterState:
    name: str
    fine_tune: str
    state: str
    message: str | None = None
    uri: str | None = None
    rank: int = 8


def _state(obj: InferenceService, name: str, fine_tune_name: str, fine_tune: dict[str, Any] | None) -> AdapterState:
    if fine_tune is None:
        return AdapterState(name, fine_tune_name, PENDING, f"FineTune {fine_tune_name!r} does not exist in this "
                                                           "namespace")
    spec, status = fine_tune.get("spec") or {}, fine_tune.get("status") or {}
    rank = int((spec.get("lora") or {}).get("r") or 8)
    if spec.get("method") == "full" or (spec.get("output") or {}).get("mergeAdapter"):
        why = "method full" if spec.get("method") == "full" else "output.mergeAdapter true"
        return AdapterState(name, fine_tune_name, INVALID, f"FineTune {fine_tune_name!r} saves a whole model ({why}), "
                                                           "not an adapter: serve it as spec.model.fineTuneRef")
    uri = status.get("outputUri")
    if not cond.is_ready(status) or not uri:
        return AdapterState(name, fine_tune_name, PENDING, f"waiting for FineTune {fine_tune_name!r} to succeed "
                                                           f"(phase {status.get('phase') or 'Pending'})")
    if obj.spec.resources.gpus and (why := vllm_unsupported(uri, rank)):
        return AdapterState(name, fine_tune_name, INVALID, why, uri, rank)
    return AdapterState(name, fine_tune_name, SERVED, None, uri, rank)


def adapter_states(obj: InferenceService, refs: Refs) -> list[AdapterState]:
    return [_state(obj, a.name, a.fine_tune_ref.name, refs.get(("FineTune", a.fine_tune_ref.name)))
            for a in obj.spec.adapters or []]


def served(states: list[AdapterState]) -> tuple[ServedAdapter, ...]:
    return tuple(ServedAdapter(s.name, s.uri, s.rank) for s in states if s.state == SERVED and s.uri)


def adapters_condition(states: list[AdapterState]) -> cond.Observed:
    invalid = [s for s in states if s.state == INVALID]
    pending = [s for s in states if s.state == PENDING]
    if invalid:
        return cond.false(ADAPTERS_READY, "AdapterInvalid",
                          "; ".join(f"adapter {s.name!r}: {s.message}" for s in invalid))
    if pending:
        return cond.false(ADAPTERS_READY, "AdaptersPending",
                          "; ".join(f"adapter {s.name!r}: {s.message}" for s in pending))
    return cond.true(ADAPTERS_READY, "AdaptersServed", f"{len(states)} adapter(s) served on the base model")


def adapters_block(states: list[AdapterState], sample: ServingSample | None,
                   hourly_rate: float) -> list[dict[str, Any]]:
    """status.adapters: each adapter's state and, once it has had requests, its usage, cost share and safety."""
    out = []
    for s in states:
        entry = AdapterServingStatus(name=s.name, fine_tune=s.fine_tune, uri=s.uri, state=s.state,
                                     message=s.message).wire()
        usage = model_usage(sample, s.name) if sample is not None else None
        if usage is not None:
            entry |= usage
            entry["hourlyCost"] = round(hourly_rate * usage["tokenShare"], 6)
        out.append(entry)
    return out
