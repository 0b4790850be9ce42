"""InferenceService: serve a model (or a FineTune's output) through KServe, behind guardrails and a prompt release.

The operator builds one KServe `serving.kserve.io/v1beta1` InferenceService: the predictor serves the
model, and a transformer running the guardrail runtime applies the Guardrail's policy and renders the
PromptRelease's templates. Status mirrors KServe's readiness and URL, with cost, drift and safety.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from llmops_operator.api.v1alpha1.common import (
    CostStatus, DriftStatus, KindInfo, KubeModel, LocalObjectReference, PrinterColumn, Resource, ResourceStatus,
    SafetyStatus, StatusModel, age_column, cel, exactly_one_of, drift_column, list_map, ready_columns, safety_column,
)
from llmops_operator.api.v1alpha1.guardrail import DatasetConfigMapRef
from llmops_operator.api.v1alpha1.retrain import RetrainSpec, RetrainStatus
from llmops_operator.api.v1alpha1.serving_adapters import (
    MAX_ADAPTERS, AdapterServingStatus, AdapterSpec, unique_adapter_names,
)
from llmops_operator.api.v1alpha1.serving_engine import (
    Deployment, EngineArgs, ModelCacheSpec, ModelCacheStatus, Runtime, engine_problems,
)
from llmops_operator.api.v1alpha1.retrieval import RetrievalSpec, RetrievalStatus
from llmops_operator.api.v1alpha1.units import Duration, Quantity, parse_duration

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class ModelSpec(KubeModel):
    """What to serve. Exactly one of uri, fineTuneRef and trainingJobRef."""

    exactly_one = (exactly_one_of("uri", "fine_tune_ref", "training_job_ref", where="model"),)

    uri: str | None = Field(default=None, min_length=1, max_length=1024)
    """Storage URI of the model, as KServe's storage initializer reads it: s3://, gs://, pvc://, hf:// or https://."""
    fine_tune_ref: LocalObjectReference | None = None
    """Serve the output of a FineTune in this namespace (waits until it has succeeded; re-rolls when it changes)."""
    training_job_ref: LocalObjectReference | None = None
    """Serve the output of a TrainingJob in this namespace (waits until it has succeeded), for example as the base
    of spec.adapters trained on it."""
    format: str = Field(default="huggingface", min_length=1, max_length=63, pattern=DNS_LABEL)
    """KServe model format name (huggingface, sklearn, xgboost, pytorch, onnx, ...), matched against the serving
    runtimes' supported formats. Defaults to huggingface."""
    runtime: str | None = Field(default=None, max_length=253)
    """Name of the ServingRuntime or ClusterServingRuntime to use; KServe picks one for the format when absent."""
    cache: ModelCacheSpec | None = None
    """Download the weights once and share them between replicas (docs/serving.md#model-cache). Unset: every
    replica downloads its own copy at start."""


class ServingResources(KubeModel):
    """Requests and limits of each predictor replica."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel("!has(self.gpus) || self.gpus == 0 || has(self.gpuType)", "gpuType is required when gpus is above 0",
            ".gpuType"),
    ]}}

    cpu: Quantity = "1"
    """CPU per replica (request and limit). Defaults to 1."""
    memory: Quantity = "2Gi"
    """Memory per replica (request and limit). Defaults to 2Gi."""
    gpus: int = Field(default=0, ge=0, le=16)
    """GPUs per replica. Defaults to 0."""
    gpu_type: str | None = Field(default=None, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    """GPU type from the operator's price catalog (for example nvidia-l4); selects nodes and prices the service."""

    @model_validator(mode="after")
    def _gpu_type_with_gpus(self) -> "ServingResources":
        if self.gpus > 0 and not self.gpu_type:
            raise ValueError("gpuType is required when gpus is above 0")
        return self


class ReplicaRange(KubeModel):
    """How far the autoscaler may scale the predictor."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel("(has(self.min) ? self.min : 1) <= (has(self.max) ? self.max : 1)",
            "replicas.min must not exceed replicas.max"),
    ]}}

    min: int = Field(default=1, ge=0, le=1000)
    """Fewest replicas; 0 lets the service scale to zero when idle. Defaults to 1."""
    max: int = Field(default=1, ge=1, le=1000)
    """Most replicas. Defaults to 1."""

    @model_validator(mode="after")
    def _min_le_max(self) -> "ReplicaRange":
        if self.min > self.max:
            raise ValueError("replicas.min must not exceed replicas.max")
        return self


class ScalingSpec(KubeModel):
    """What the autoscaler watches (KServe scaleMetric and scaleTarget)."""

    metric: Literal["concurrency", "rps", "cpu", "memory", "inFlightRequests", "queueDepth"] = "concurrency"
    """Metric the autoscaler scales on: concurrent requests per replica as KServe's autoscaler counts them,
    requests per second, CPU / memory utilisation, or vLLM's own gauges read from Prometheus through KEDA:
    inFlightRequests (sequences running) and queueDepth (requests waiting), both per replica and runtime vllm
    only. Defaults to concurrency."""
    target: int = Field(default=1, ge=1, le=100_000)
    """Target value of the metric per replica (percent for cpu and memory). Defaults to 1."""


class TransformerSpec(KubeModel):
    """The guardrail runtime in front of the predictor."""

    image: str | None = Field(default=None, max_length=512)
    """Image of the transformer. Defaults to the operator's runtime image."""
    cpu: Quantity = "500m"
    """CPU of the transformer (request and limit). Defaults to 500m."""
    memory: Quantity = "1Gi"
    """Memory of the transformer (request and limit). Defaults to 1Gi."""


class DriftReference(KubeModel):
    """Reference traffic the live traffic is compared with."""

    config_map: DatasetConfigMapRef
    """A ConfigMap key holding reference prompts as JSON Lines ({"text": ...})."""


class DriftSpec(KubeModel):
    """Drift monitoring of live prompts against a reference (recorded now, evaluated by the drift monitor)."""

    reference: DriftReference
    """The reference data."""
    metric: Literal["psi", "js", "ks", "embedding"] = "psi"
    """Drift statistic. Defaults to psi."""
    threshold: float = Field(default=0.2, gt=0)
    """Score above which live traffic counts as drifted. Defaults to 0.2."""
    window: Duration = "1h"
    """Live window the score is computed over. Defaults to 1h."""
    min_samples: int = Field(default=30, ge=1, le=1_000_000)
    """Live prompts the window must hold before drift can read drifted: a score from fewer is shown but never
    counts (a handful of requests would make any statistic noisy, and drift may start retraining). Defaults to 30."""


class ServiceBudgetSpec(KubeModel):
    """A spending limit per accounting period, and what to do when a period's spend reaches it."""

    limit: float = Field(gt=0)
    """The most the service may cost per period, in the price catalog's currency."""
    period: Duration = "720h"
    """The accounting window: spend restarts at 0 when a period ends and the next begins. Defaults to 720h (30 days)."""
    action: Literal["Alert", "Stop"] = "Alert"
    """Alert: set BudgetExceeded and emit an Event; the service keeps serving. Stop: stop the service (KServe keeps
    the object, its pods go) until the next period starts or spec.budget.limit is raised. Defaults to Alert."""

    @model_validator(mode="after")
    def _period_positive(self) -> "ServiceBudgetSpec":
        if parse_duration(self.period) <= 0:
            raise ValueError("period must be longer than 0s")
        return self


class InferenceServiceSpec(KubeModel):
    """What to serve, on what, and what stands in front of it."""

    model: ModelSpec
    """The model and its format."""
    resources: ServingResources = Field(default_factory=ServingResources)
    """Per-replica CPU, memory and GPUs of the predictor."""
    replicas: ReplicaRange = Field(default_factory=ReplicaRange)
    """Autoscaling bounds (KServe minReplicas / maxReplicas)."""
    scaling: ScalingSpec | None = None
    """Autoscaling metric and target; KServe's defaults when absent."""
    runtime: Runtime | None = None
    """Backend of KServe's Hugging Face runtime: vllm or huggingface (transformers). Unset: vllm when
    resources.gpus is above 0, huggingface otherwise. Needs model.format huggingface."""
    engine_args: EngineArgs | None = None
    """Typed engine arguments of the runtime (max model length, GPU memory share, tensor parallelism,
    quantization, ...)."""
    deployment: Deployment | None = None
    """Which KServe object serves the model: inferenceService (v1beta1, the guardrail as its transformer) or
    llmInferenceService (v1alpha1, vLLM behind KServe's inference scheduler, the guardrail as a gateway in front;
    needs KServe's LLMInferenceService CRD). Unset: inferenceService."""
    canary_traffic_percent: int | None = Field(default=None, ge=0, le=100)
    """Percent of traffic (0..100) the newest predictor revision gets while it rolls out; the previous revision keeps
    the rest (KServe canaryTrafficPercent). Every change rolls out at once when absent."""
    guardrail_ref: LocalObjectReference | None = None
    """Guardrail whose policy the transformer enforces on requests and responses."""
    prompt_release_ref: LocalObjectReference | None = None
    """PromptRelease whose templates the transformer renders, split between stable and canary as it says."""
    transformer: TransformerSpec | None = None
    """Transformer settings; a transformer runs whenever guardrailRef or promptReleaseRef is set."""
    drift: DriftSpec | None = None
    """Drift monitoring of live prompts; its settings appear in status.drift."""
    retrain: RetrainSpec | None = None
    """Create a FineTune or TrainingJob from a template when live drift is detected (needs drift). Unset: never."""
    budget: ServiceBudgetSpec | None = None
    """Spending limit per period; what the service has spent in the current period appears in status.cost. Unset:
    no limit."""
    adapters: list[AdapterSpec] | None = Field(default=None, max_length=MAX_ADAPTERS,
                                               json_schema_extra=list_map("name"))
    """LoRA adapters served on the same base model, each under its own model name (the OpenAI `model` field picks
    one; the service's name picks the base). Adding one, or a FineTune's new output, reaches the running predictor
    without restarting it. At most 16."""

    _unique_adapters = field_validator("adapters")(unique_adapter_names)
    retrieval: RetrievalSpec | None = None
    """Answer from a VectorIndex: the query is embedded and searched, and the chunks found fill the prompt
    version's {{context}} variable (needs promptReleaseRef). See docs/retrieval.md. Unset: no retrieval."""

    @model_validator(mode="after")
    def _engine_fits(self) -> "InferenceServiceSpec":
        problems = engine_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self


class TrafficTarget(StatusModel):
    """One predictor revision and its share of traffic, as KServe reports it."""

    revision: str
    """Revision name."""
    percent: int | None = None
    """Percent of traffic it gets."""
    latest: bool = False
    """Whether it is the latest ready revision."""


class AttachedStatus(StatusModel):
    """The guardrail policy and prompt versions the running service mounts."""

    policy_config_map: str | None = None
    """The Guardrail's compiled policy ConfigMap."""
    prompt_stable: str | None = None
    """The PromptRelease's stable version."""
    prompt_canary: str | None = None
    """The PromptRelease's canary version, when one runs."""


class LatencyStatus(StatusModel):
    """Request latency measured by the guardrail runtime (checks and generation included)."""

    p50_ms: float | None = None
    """Median latency in milliseconds."""
    p99_ms: float | None = None
    """99th percentile latency in milliseconds."""
    requests: int = 0
    """Requests the percentiles were computed from."""
    time_to_first_token_p50_ms: float | None = None
    """Median time to first token (gen_ai.server.time_to_first_token), in milliseconds."""
    time_to_first_token_p99_ms: float | None = None
    """99th percentile time to first token, in milliseconds."""
    time_per_output_token_p50_ms: float | None = None
    """Median decode time per output token after the first (gen_ai.server.time_per_output_token), in ms."""


class ServiceCostStatus(CostStatus):
    """Cost of a service: the hourly rate at the replica floor, and the spend of the current budget period."""

    spent: float | None = None
    """Accrued in the current period at the hourly rate the service ran at (nothing while stopped or pending)."""
    period_start: str | None = None
    """When the current accounting period began (RFC 3339); the next begins one spec.budget.period later."""


class InferenceServiceStatus(ResourceStatus):
    """Observed state of an InferenceService."""

    url: str | None = None
    """URL the service answers on, as KServe reports it."""
    model_uri: str | None = None
    """The storage URI being served (spec.model.uri or the FineTune's outputUri)."""
    kserve_service: str | None = None
    """Name of the KServe InferenceService the operator created."""
    latest_ready_revision: str | None = None
    """Newest ready predictor revision."""
    traffic: list[TrafficTarget] | None = None
    """Traffic split across predictor revisions."""
    attached: AttachedStatus | None = None
    """Guardrail policy and prompt versions mounted."""
    cost: ServiceCostStatus | None = None
    """Hourly cost at the replica floor (replicas.min) from the price catalog, and the current period's spend."""
    drift: DriftStatus | None = None
    """Drift of live prompts against the reference; score empty until evaluated."""
    retrain: RetrainStatus | None = None
    """The runs drift has created (spec.retrain)."""
    safety: SafetyStatus | None = None
    """Live safety from the runtime's verdicts (share of requests neither blocked nor redacted, hits by rule);
    the Guardrail's self-test score until the service has seen traffic."""
    latency: LatencyStatus | None = None
    """Request latency percentiles from the runtime's metrics."""
    adapters: list[AdapterServingStatus] | None = None
    """Per adapter of spec.adapters: its state, and its requests, tokens, cost share and safety."""
    runtime: str | None = None
    """The runtime serving the model (vllm or huggingface), spec.runtime or the one the accelerator chose."""
    cache: ModelCacheStatus | None = None
    """The model cache (spec.model.cache) and whether it is filled."""
    retrieval: RetrievalStatus | None = None
    """With spec.retrieval: retrieval latency, empty-retrieval rate and mean top-1 score from the runtime's metrics."""


class InferenceService(Resource):
    """InferenceService serves a model or a FineTune's output on KServe, with a guardrail transformer and prompt release, autoscaling and canary rollout."""

    info: ClassVar[KindInfo] = KindInfo(
        kind="InferenceService", plural="inferenceservices", short_names=["lsvc"], requires="serving",
        columns=[
            *ready_columns(),
            PrinterColumn(name="URL", json_path=".status.url"),
            PrinterColumn(name="Cost", json_path=".status.cost.hourlyRate", type="number",
                          description="Cost per hour at the replica floor, in status.cost.currency"),
            drift_column(),
            safety_column(),
            PrinterColumn(name="RetrievalP99", json_path=".status.retrieval.p99Ms", type="number", priority=1,
                          description="99th percentile of query embedding plus search, in milliseconds"),
            PrinterColumn(name="Top1", json_path=".status.retrieval.meanTopScore", type="number", priority=1,
                          description="Mean similarity of the best retrieved chunk"),
            age_column(),
        ],
    )

    kind: Literal["InferenceService"] = "InferenceService"
    spec: InferenceServiceSpec
    status: InferenceServiceStatus | None = None
