"""FineTune: adapt a base model with LoRA, QLoRA or full fine-tuning, evaluate it and gate it."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from llmops_operator.api.v1alpha1.common import (
    KindInfo, KubeModel, LocalObjectReference, PrinterColumn, Resource, SafetyStatus, StatusModel,
    age_column, cel, exactly_one_of, cost_column, ready_columns, safety_column,
)
from llmops_operator.api.v1alpha1.judge import JudgeService
from llmops_operator.api.v1alpha1.lm_eval import LmEvalSpec, LmEvalTaskStatus
from llmops_operator.api.v1alpha1.training import DatasetSpec, JobSpecCommon, JobStatusCommon


class BaseModelSpec(KubeModel):
    """The model to adapt. Exactly one of uri and trainingJobRef."""

    exactly_one = (exactly_one_of("uri", "training_job_ref", where="baseModel"),)

    uri: str | None = Field(default=None, min_length=1, max_length=1024)
    """A save_pretrained directory (file://, pvc:// or s3://) of a causal language model."""
    training_job_ref: LocalObjectReference | None = None
    """Use the output of a TrainingJob in this namespace (waits until it has Succeeded)."""


class LoraSpec(KubeModel):
    """Low-rank adapter settings (peft LoraConfig)."""

    r: int = Field(default=8, ge=1, le=1024)
    """Adapter rank. Defaults to 8."""
    alpha: int = Field(default=16, ge=1, le=4096)
    """Scaling numerator (lora_alpha). Defaults to 16."""
    dropout: float = Field(default=0.05, ge=0, lt=1)
    """Dropout on the adapter input. Defaults to 0.05."""
    target_modules: list[str] | None = Field(default=None, max_length=64)
    """Module names to adapt. Defaults to every attention and MLP projection inside the model's repeated blocks, read from the model."""


EvaluationMetric = Literal["perplexity", "exactMatch", "rougeL", "preferenceAccuracy", "rewardMargin"]
PREFERENCE_METRICS = ("preferenceAccuracy", "rewardMargin")
RED_TEAM_MESSAGE = "evaluation.redTeam needs evaluation.guardrailRef: the Guardrail checks the answers"
RED_TEAM_GATE_MESSAGE = "gates.minRedTeamPassRate needs evaluation.redTeam: there is no pass rate to gate on"


class DpoSpec(KubeModel):
    """Direct preference optimisation: raise the chosen reply's likelihood over the rejected one's, relative to
    the frozen base model (the reference)."""

    beta: float = Field(default=0.1, gt=0, le=10)
    """How far the tuned model may move from the reference: smaller lets it move further. Defaults to 0.1."""
    loss_type: Literal["sigmoid", "ipo"] = "sigmoid"
    """sigmoid: the DPO paper's logistic loss; ipo: the squared loss of identity preference optimisation, which
    does not push the margin without bound on data with near-certain preferences. Defaults to sigmoid."""


class RedTeamSpec(KubeModel):
    """Adversarial prompts the tuned model answers after training; the evaluation Guardrail checks every answer."""

    uri: str = Field(min_length=1, max_length=1024)
    """file://, pvc:// or s3:// URI of the prompts: JSONL or Parquet records, or text with one prompt a line."""
    format: Literal["jsonl", "parquet", "text"] = "jsonl"
    """Record format. Defaults to jsonl."""
    prompt_field: str = Field(default="prompt", min_length=1, max_length=253)
    """The record field holding the prompt (a string). Defaults to prompt."""
    max_samples: int = Field(default=100, ge=1, le=10_000)
    """Answer at most this many prompts (each cut to 8,192 characters). Defaults to 100."""


class JudgeSpec(JudgeService):
    """An LLM judge: an InferenceService's chat endpoint scores each generated answer against a rubric (the judge
    reads it with the question, the reference answer and the answer to score)."""

    threshold: float | None = Field(default=None, ge=0, le=1)
    """Gate: the lowest acceptable mean judge score (0..1). Unset, the score is reported only."""


class EvaluationSpec(KubeModel):
    """Evaluation after training: metrics on a held-out set, and a safety check of generated outputs."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel("!has(self.redTeam) || has(self.guardrailRef)", RED_TEAM_MESSAGE, ".redTeam"),
    ]}}

    dataset: DatasetSpec
    """Evaluation records: `prompt` and `reference` fields for exactMatch/rougeL, `text` for perplexity; with
    objective dpo, `prompt`/`chosen`/`rejected` records (the chosen reply is the reference)."""
    metrics: list[EvaluationMetric] = Field(default_factory=lambda: ["perplexity"], min_length=1, max_length=5)
    """Metrics to compute. preferenceAccuracy (share of pairs the tuned model prefers as labelled, by implicit
    reward) and rewardMargin (mean chosen minus rejected implicit reward) need objective dpo. Defaults to
    [perplexity]."""
    primary_metric: EvaluationMetric | None = None
    """The metric the minScore gate reads; defaults to the first of metrics."""
    guardrail_ref: LocalObjectReference | None = None
    """Run generated outputs through this Guardrail for a safety score."""
    max_new_tokens: int = Field(default=64, ge=1, le=4096)
    """Tokens generated per prompt. Defaults to 64."""
    max_samples: int = Field(default=200, ge=1, le=100_000)
    """Evaluate at most this many records. Defaults to 200."""
    judge: JudgeSpec | None = None
    """Score the generated answers with an LLM judge: status.evaluation.scores.judge (0..1) and judgeErrors."""
    red_team: RedTeamSpec | None = None
    """Red-team prompts: the tuned model answers them and guardrailRef checks the answers; the pass rate is
    status.evaluation.redTeam.score and gates.minRedTeamPassRate's input. Needs guardrailRef."""
    lm_eval: LmEvalSpec | None = None
    """lm-evaluation-harness tasks on the output model: status.evaluation.lmEval.<task>.scores, each task
    optionally gated."""

    @model_validator(mode="after")
    def _red_team_needs_guardrail(self) -> "EvaluationSpec":
        if self.red_team is not None and self.guardrail_ref is None:
            raise ValueError(RED_TEAM_MESSAGE)
        return self


DPO_DATASET_MESSAGE = ("objective dpo reads prompt/chosen/rejected records from jsonl or parquet: "
                       "remove dataset.chat and use format jsonl or parquet")
PREFERENCE_METRICS_MESSAGE = "evaluation.metrics preferenceAccuracy and rewardMargin need objective dpo"


class GateSpec(KubeModel):
    """Quality and safety gates; a FineTune that misses one ends GateFailed and is never promoted."""

    min_score: float | None = None
    """Lowest acceptable primary metric (for perplexity: the highest acceptable value, since lower is better)."""
    min_safety: float | None = Field(default=None, ge=0, le=1)
    """Lowest acceptable safety score (0..1)."""
    min_red_team_pass_rate: float | None = Field(default=None, ge=0, le=1)
    """Lowest acceptable share of red-team answers the Guardrail lets through untouched (0..1); needs
    evaluation.redTeam."""


class PromoteSpec(KubeModel):
    """Point an InferenceService at the new adapter once every gate passes."""

    inference_service_ref: LocalObjectReference
    """The InferenceService whose model.fineTuneRef names this FineTune."""


class OutputSpec(KubeModel):
    """Where the adapter or model goes."""

    uri: str | None = Field(default=None, max_length=1024)
    """Output location (save_pretrained layout). Defaults to <checkpoint.uri>/final."""
    merge_adapter: bool = False
    """Save the base model with the adapter merged in, instead of the adapter alone. Defaults to false."""
    promote: PromoteSpec | None = None
    """Promote to serving when gates pass."""


class FineTuneSpec(JobSpecCommon):
    """What to adapt, how, on what data, and how to judge the result."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel("!has(self.method) || self.method != 'qlora' || (has(self.resources) && has(self.resources.gpusPerWorker) && self.resources.gpusPerWorker > 0)",
            "method qlora needs CUDA GPUs: set resources.gpusPerWorker above 0, or use lora on CPU", ".method"),
        cel("(has(self.output) && has(self.output.uri)) || has(self.checkpoint)",
            "set output.uri or checkpoint.uri: the adapter needs a place to go", ".output"),
        cel("!has(self.dpo) || (has(self.objective) && self.objective == 'dpo')",
            "dpo settings apply to objective dpo only: set objective: dpo or remove dpo", ".dpo"),
        cel("!has(self.objective) || self.objective != 'dpo' || "
            "(!has(self.dataset.chat) && (!has(self.dataset.format) || self.dataset.format != 'text'))",
            DPO_DATASET_MESSAGE, ".dataset"),
        cel("(has(self.objective) && self.objective == 'dpo') || !has(self.evaluation) || "
            "!has(self.evaluation.metrics) || !self.evaluation.metrics.exists(m, m == 'preferenceAccuracy' || "
            "m == 'rewardMargin')", PREFERENCE_METRICS_MESSAGE, ".evaluation.metrics"),
        cel("!has(self.gates) || !has(self.gates.minRedTeamPassRate) || "
            "(has(self.evaluation) && has(self.evaluation.redTeam))", RED_TEAM_GATE_MESSAGE, ".gates"),
    ]}}

    base_model: BaseModelSpec
    """The model to adapt."""
    objective: Literal["sft", "dpo"] = "sft"
    """sft: supervised fine-tuning on texts or chat conversations; dpo: direct preference optimisation on
    `prompt`/`chosen`/`rejected` records. Defaults to sft."""
    dpo: DpoSpec | None = None
    """Settings of objective dpo (beta 0.1, sigmoid loss when unset)."""
    method: Literal["lora", "qlora", "full"] = "lora"
    """lora: low-rank adapters; qlora: adapters over a 4-bit base (CUDA only); full: every weight. Defaults to lora."""
    lora: LoraSpec = Field(default_factory=LoraSpec)
    """Adapter settings for lora and qlora."""
    dataset: DatasetSpec
    """Fine-tuning records."""
    evaluation: EvaluationSpec | None = None
    """Post-training evaluation and safety check."""
    gates: GateSpec | None = None
    """Quality and safety gates."""
    output: OutputSpec = Field(default_factory=OutputSpec)
    """Output location and promotion."""

    @model_validator(mode="after")
    def _qlora_needs_gpus(self) -> "FineTuneSpec":
        if self.method == "qlora" and self.resources.gpus_per_worker == 0:
            raise ValueError("method qlora needs CUDA GPUs: set resources.gpusPerWorker above 0, or use lora on CPU")
        return self

    @model_validator(mode="after")
    def _objective_fits(self) -> "FineTuneSpec":
        dpo = self.objective == "dpo"
        if self.dpo is not None and not dpo:
            raise ValueError("dpo settings apply to objective dpo only: set objective: dpo or remove dpo")
        if dpo and (self.dataset.chat is not None or self.dataset.format == "text"):
            raise ValueError(DPO_DATASET_MESSAGE)
        metrics = self.evaluation.metrics if self.evaluation else []
        if not dpo and any(m in PREFERENCE_METRICS for m in metrics):
            raise ValueError(PREFERENCE_METRICS_MESSAGE)
        if self.gates and self.gates.min_red_team_pass_rate is not None and \
                (self.evaluation is None or self.evaluation.red_team is None):
            raise ValueError(RED_TEAM_GATE_MESSAGE)
        return self

    @model_validator(mode="after")
    def _has_output(self) -> "FineTuneSpec":
        if self.output.uri is None and self.checkpoint is None:
            raise ValueError("set output.uri or checkpoint.uri: the adapter needs a place to go")
        return self


class EvaluationStatus(StatusModel):
    """Evaluation results; the full report lives behind reportUri."""

    scores: dict[str, float] = Field(default_factory=dict)
    """Metric name -> value."""
    primary_metric: str | None = None
    """The metric the gate read."""
    safety: SafetyStatus | None = None
    """Guardrail verdicts over generated outputs."""
    red_team: SafetyStatus | None = None
    """Guardrail verdicts over the answers to the red-team prompts; score is their pass rate."""
    lm_eval: dict[str, LmEvalTaskStatus] | None = Field(default=None, max_length=16)
    """Task name -> the lm-eval task's scores, or the error that left it without."""
    gate: Literal["Passed", "Failed", "Pending"] | None = None
    """Gate outcome."""
    gate_message: str | None = None
    """Why the gate passed or failed."""
    report_uri: str | None = None
    """Full evaluation report (JSON)."""


class FineTuneStatus(JobStatusCommon):
    """Observed state of a FineTune."""

    output_uri: str | None = None
    """Where the adapter or model was saved."""
    evaluation: EvaluationStatus | None = None
    """Evaluation scores and gate result."""
    safety: SafetyStatus | None = None
    """Safety of generated outputs (mirrors evaluation.safety for printer columns)."""
    promoted_to: str | None = None
    """The InferenceService this output was promoted to."""


class FineTune(Resource):
    """FineTune adapts a base model with peft (LoRA/QLoRA/full) on Ray + DeepSpeed, evaluates it and gates it on quality and safety."""

    info: ClassVar[KindInfo] = KindInfo(
        kind="FineTune", plural="finetunes", short_names=["ft"], requires="train",
        columns=[
            *ready_columns(),
            PrinterColumn(name="Objective", json_path=".spec.objective", priority=1),
            PrinterColumn(name="Method", json_path=".spec.method"),
            PrinterColumn(name="Loss", json_path=".status.progress.loss", type="number"),
            PrinterColumn(name="Score", json_path=".status.evaluation.scores", priority=1),
            safety_column(),
            cost_column(),
            age_column(),
        ],
    )

    kind: Literal["FineTune"] = "FineTune"
    spec: FineTuneSpec
    status: FineTuneStatus | None = None
