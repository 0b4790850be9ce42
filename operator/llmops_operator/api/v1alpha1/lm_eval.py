"""lm-evaluation-harness tasks a FineTune's output model runs after training: stock tasks by name, or tasks on
records the user supplies, with their scores in status and optional gates."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from llmops_operator.api.v1alpha1.common import (
    KubeModel,
    StatusModel,
    exactly_one_of,
    list_map,
    require_unique_names,
)

MAX_TASKS = 16
TASK_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
LmEvalMetric = Literal["acc", "acc_norm", "exact_match", "perplexity"]
OutputType = Literal["multiple_choice", "generate_until", "loglikelihood"]
METRICS_OF: dict[str, tuple[str, ...]] = {
    "multiple_choice": ("acc", "acc_norm"),
    "generate_until": ("exact_match",),
    "loglikelihood": ("perplexity", "acc"),
}
"""The metrics lm-eval computes for each output type; the first ones are the defaults."""


class LocalTaskSpec(KubeModel):
    """A task on records you supply, rendered as an lm-eval task config: nothing is fetched from a hub."""

    uri: str = Field(min_length=1, max_length=1024)
    """file://, pvc:// or s3:// URI of the records (JSON Lines or Parquet)."""
    format: Literal["jsonl", "parquet"] = "jsonl"
    """Record format. Defaults to jsonl."""
    output_type: OutputType = "multiple_choice"
    """multiple_choice: the model ranks choicesField's options by likelihood after the prompt; generate_until:
    it generates greedily and is compared with targetField; loglikelihood: targetField's likelihood as the
    prompt's continuation. Defaults to multiple_choice."""
    prompt: str = Field(min_length=1, max_length=4000)
    """The text the model reads: `{field}` is replaced by that record field, for example
    "Question: {question}\\nAnswer:"."""
    choices_field: str | None = Field(default=None, min_length=1, max_length=253)
    """multiple_choice: the record field holding the list of options (strings)."""
    target_field: str = Field(default="answer", min_length=1, max_length=253)
    """The record field holding the answer: for multiple_choice the index of the right option or its text, for
    the others the expected text. Defaults to answer."""
    metrics: list[LmEvalMetric] | None = Field(default=None, min_length=1, max_length=2)
    """multiple_choice: acc, acc_norm (default both); generate_until: exact_match (default); loglikelihood:
    perplexity, acc (default both)."""
    until: list[str] | None = Field(default=None, min_length=1, max_length=8)
    """generate_until: stop sequences (each at most 64 characters). Defaults to a newline."""
    max_gen_tokens: int = Field(default=32, ge=1, le=1024)
    """generate_until: tokens generated at most per record. Defaults to 32."""

    @field_validator("until")
    @classmethod
    def _short_stops(cls, until: list[str] | None) -> list[str] | None:
        if until and any(not stop or len(stop) > 64 for stop in until):
            raise ValueError("until: each stop sequence is 1 to 64 characters")
        return until

    @model_validator(mode="after")
    def _fits_output_type(self) -> "LocalTaskSpec":
        allowed = METRICS_OF[self.output_type]
        wrong = [m for m in self.metrics or [] if m not in allowed]
        if wrong:
            raise ValueError(f"metrics {wrong} do not apply to outputType {self.output_type}: use {list(allowed)}")
        if (self.output_type == "multiple_choice") != (self.choices_field is not None):
            raise ValueError("choicesField is required with outputType multiple_choice and applies to it only")
        return self

    def metric_names(self) -> list[str]:
        return list(self.metrics or METRICS_OF[self.output_type])


class LmEvalGateSpec(KubeModel):
    """A bound on one metric of the task; missing it (or the metric not being measured) fails the FineTune."""

    exactly_one = (exactly_one_of("min", "max", where="gate"),)

    metric: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_./,-]+$")
    """The metric as status reports it under the task, for example acc, acc_norm or exact_match (for a stock
    task with filters, metric/filter as in status)."""
    min: float | None = None
    """Lowest acceptable value (for metrics where higher is better)."""
    max: float | None = None
    """Highest acceptable value (for metrics where lower is better, such as perplexity)."""


class LmEvalTaskSpec(KubeModel):
    """One task: a stock lm-eval task by name, or one defined on your records with `local`."""

    name: str = Field(min_length=1, max_length=128, pattern=TASK_NAME)
    """Without local: the name of a stock lm-eval task (its dataset must be reachable from the job: a model hub, or
    a datasets cache in the image). With local: this task's name. It is the task's key in status."""
    local: LocalTaskSpec | None = None
    """Define the task on your own records instead of a stock one."""
    num_fewshot: int | None = Field(default=None, ge=0, le=25)
    """Examples shown before each question (for local tasks drawn from the same records, never the question
    itself). Unset: a stock task's own default, 0 for a local task."""
    gate: LmEvalGateSpec | None = None
    """Gate on one of the task's metrics. Unset, the scores are reported only."""

    @model_validator(mode="after")
    def _gate_on_a_computed_metric(self) -> "LmEvalTaskSpec":
        if self.local is not None and self.gate is not None and self.gate.metric not in self.local.metric_names():
            raise ValueError(f"gate.metric {self.gate.metric!r} is not one of the task's metrics "
                             f"{self.local.metric_names()}")
        return self


class LmEvalSpec(KubeModel):
    """lm-evaluation-harness tasks on the output model, run in the job after training; bounded in examples and
    time."""

    tasks: list[LmEvalTaskSpec] = Field(min_length=1, max_length=MAX_TASKS, json_schema_extra=list_map("name"))
    """The tasks, each named once."""
    limit: int = Field(default=100, ge=1, le=100_000)
    """Examples per task at most. Defaults to 100."""
    batch_size: int = Field(default=8, ge=1, le=256)
    """Requests per forward pass. Defaults to 8."""
    timeout_seconds: int = Field(default=1800, ge=10, le=86_400)
    """All tasks together stop after this long; a task cut short, and those not started, report an error.
    Defaults to 1800."""

    @field_validator("tasks")
    @classmethod
    def _unique_names(cls, tasks: list[LmEvalTaskSpec]) -> list[LmEvalTaskSpec]:
        require_unique_names(tasks, "name ")
        return tasks


class LmEvalTaskStatus(StatusModel):
    """One lm-eval task's outcome."""

    scores: dict[str, float] = Field(default_factory=dict, max_length=32)
    """Metric -> value as lm-eval computed it (with `<metric>_stderr` beside it where lm-eval has one); a metric
    of a filter other than none is `<metric>/<filter>`."""
    samples: int | None = None
    """Examples scored."""
    error: str | None = Field(default=None, max_length=2000)
    """Why the task has no scores: its dataset could not be read, a record was malformed, or the time ran out."""
