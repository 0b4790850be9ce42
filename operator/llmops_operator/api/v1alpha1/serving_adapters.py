"""LoRA adapters an InferenceService serves on its one base model, each picked by the OpenAI `model` field."""

from __future__ import annotations

from pydantic import Field

from llmops_operator.api.v1alpha1.common import (
    KubeModel,
    LocalObjectReference,
    SafetyStatus,
    StatusModel,
    require_unique_names,
)

MAX_ADAPTERS = 16
"""Adapters one service may list: each one is held in the predictor's memory (vLLM: --max-loras slots)."""
ADAPTER_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


class AdapterSpec(KubeModel):
    """One FineTune's LoRA adapter, served beside the base model under its own model name."""

    name: str = Field(min_length=1, max_length=63, pattern=ADAPTER_NAME)
    """The model name clients send in the OpenAI `model` field to get this adapter; unique in the service and
    different from the base model's name (the service's name)."""
    fine_tune_ref: LocalObjectReference
    """A FineTune in this namespace with method lora or qlora and output.mergeAdapter false: its output is the
    adapter. Served once the FineTune has succeeded; until then the other models keep serving."""


def unique_adapter_names(adapters: list[AdapterSpec] | None) -> list[AdapterSpec] | None:
    require_unique_names(adapters, "name ")
    return adapters


class AdapterServingStatus(StatusModel):
    """One adapter: what it serves, whether it is loaded, and its share of the service's traffic, cost and safety."""

    name: str
    """The adapter's model name."""
    fine_tune: str
    """The FineTune whose output it is."""
    uri: str | None = None
    """The adapter's storage URI (the FineTune's outputUri), once it has one."""
    state: str = "Pending"
    """Pending (the FineTune has no adapter yet), Invalid (its output is not an adapter: see message) or Served
    (listed in the adapters ConfigMap the predictor reloads)."""
    message: str | None = None
    """Why the adapter is Pending or Invalid."""
    requests: int | None = None
    """Requests that named this adapter, from the runtime's metrics."""
    tokens: int | None = None
    """Prompt plus completion tokens of those requests."""
    token_share: float | None = None
    """Its share (0..1) of every token the service served over the same window."""
    hourly_cost: float | None = None
    """The service's hourly rate times tokenShare, in status.cost.currency: what this adapter's traffic costs."""
    safety: SafetyStatus | None = None
    """Live safety of this adapter's requests (share neither blocked nor redacted)."""
