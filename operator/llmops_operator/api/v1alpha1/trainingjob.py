"""TrainingJob: train a model from scratch or from weights, on Ray Train + torch + DeepSpeed."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from llmops_operator.api.v1alpha1.common import (
    KindInfo, KubeModel, LocalObjectReference, PrinterColumn, Resource, age_column, cel,
    cost_column, exactly_one_of, ready_columns,
)
from llmops_operator.api.v1alpha1.training import DatasetSpec, JobSpecCommon, JobStatusCommon


class ModelSpec(KubeModel):
    """The model to train: a Hugging Face architecture built from a config, optionally from existing weights."""

    architecture: str = Field(default="gpt2", min_length=2, max_length=63, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    """Transformers model type of a causal language model: llama, qwen2, qwen3, mistral, gemma, gpt2, ... Defaults to gpt2."""
    config: dict[str, Any] | None = None
    """Config overrides for the architecture (for example num_hidden_layers, hidden_size, vocab_size)."""
    uri: str | None = Field(default=None, max_length=1024)
    """Initial weights (a save_pretrained directory); random initialisation when absent."""
    tokenizer: str = Field(default="builtin:minilm", max_length=1024)
    """Tokenizer: a save_pretrained directory URI, or builtin:minilm (the tokenizer shipped with the runtime). Defaults to builtin:minilm."""


class FeatureServiceDataset(KubeModel):
    """Training rows from a Feast feature service (point-in-time correct historical features).

    Each row becomes one training text: the textField column when set, otherwise the service's
    features as "name: value" pairs, followed by " => <label>: <value>" when a label is set."""

    feature_view: LocalObjectReference
    """The FeatureView whose Feast project holds the service; the job waits until it is Ready."""
    service: str = Field(min_length=1, max_length=253)
    """Name of a feature service registered in the FeatureView's Feast project."""
    entities_uri: str = Field(min_length=1, max_length=1024)
    """Parquet file (or directory of them) of entity rows: the view's join keys, event_timestamp, and any other columns such as the label."""
    label: str | None = None
    """Column (of the entity rows or the service) the model learns to predict: appended to each text as its answer part."""


class TrainingDataset(DatasetSpec):
    """Training data: a file of records, or a Feast feature service. Exactly one of uri and featureService."""

    exactly_one = (exactly_one_of("uri", "feature_service", where="dataset"),)

    uri: str | None = Field(default=None, min_length=1, max_length=1024)
    """file:///path, pvc://claim/path or s3://bucket/key of a JSONL, Parquet or text file (or a directory of them)."""
    feature_service: FeatureServiceDataset | None = None
    """Read the training set from a Feast feature service instead of a file."""

    @model_validator(mode="after")
    def _chat_is_read_from_files(self) -> "TrainingDataset":
        if self.chat is not None and self.feature_service is not None:
            raise ValueError("chat reads conversations from dataset.uri; a feature service yields texts, not messages")
        return self


class TrainingJobSpec(JobSpecCommon):
    """What to train, on what data, with which resources."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel("has(self.outputUri) || has(self.checkpoint)",
            "set outputUri or checkpoint.uri: the trained model needs a place to go", ".outputUri"),
    ]}}

    model: ModelSpec = Field(default_factory=ModelSpec)
    """The model architecture and initial weights."""
    dataset: TrainingDataset
    """Training data."""
    output_uri: str | None = Field(default=None, max_length=1024)
    """Where the final model is saved (save_pretrained layout). Defaults to <checkpoint.uri>/final."""

    @model_validator(mode="after")
    def _has_output(self) -> "TrainingJobSpec":
        if self.output_uri is None and self.checkpoint is None:
            raise ValueError("set outputUri or checkpoint.uri: the trained model needs a place to go")
        return self


class TrainingJobStatus(JobStatusCommon):
    """Observed state of a TrainingJob."""

    output_uri: str | None = None
    """Where the trained model was saved."""


class TrainingJob(Resource):
    """TrainingJob trains a model on a Ray cluster with Ray Train, torch and DeepSpeed, and reports progress, checkpoints and cost."""

    info: ClassVar[KindInfo] = KindInfo(
        kind="TrainingJob", plural="trainingjobs", short_names=["tj"], requires="train",
        columns=[
            *ready_columns(),
            PrinterColumn(name="Step", json_path=".status.progress.step", type="integer"),
            PrinterColumn(name="Loss", json_path=".status.progress.loss", type="number"),
            cost_column(),
            PrinterColumn(name="Workers", json_path=".spec.resources.workers", type="integer", priority=1),
            age_column(),
        ],
    )

    kind: Literal["TrainingJob"] = "TrainingJob"
    spec: TrainingJobSpec
    status: TrainingJobStatus | None = None
