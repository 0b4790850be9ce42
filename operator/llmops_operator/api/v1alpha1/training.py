"""Blocks shared by TrainingJob and FineTune: compute, DeepSpeed, hyper-parameters, checkpoints, budget."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from llmops_operator.api.v1alpha1.common import (
    CostStatus, KubeModel, ResourceStatus, StatusModel, cel,
)
from llmops_operator.api.v1alpha1.units import Duration, Quantity


class ComputeResources(KubeModel):
    """The Ray cluster the job runs on: one head plus `workers` identical training workers."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel("!has(self.gpusPerWorker) || self.gpusPerWorker == 0 || has(self.gpuType)",
            "gpuType is required when gpusPerWorker is above 0", ".gpuType"),
    ]}}

    workers: int = Field(default=1, ge=1, le=512)
    """Number of Ray Train workers (one torch process each). Defaults to 1."""
    gpus_per_worker: int = Field(default=0, ge=0, le=16)
    """GPUs per worker. 0 trains on CPU. Defaults to 0."""
    gpu_type: str | None = Field(default=None, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    """GPU type from the operator's price catalog (for example nvidia-h100-80gb); selects nodes and prices the job."""
    cpu: Quantity = "2"
    """CPU per worker (request and limit). Defaults to 2."""
    memory: Quantity = "8Gi"
    """Memory per worker (request and limit). Defaults to 8Gi."""
    head_cpu: Quantity = "1"
    """CPU of the Ray head pod, which runs the driver only. Defaults to 1."""
    head_memory: Quantity = "2Gi"
    """Memory of the Ray head pod. Defaults to 2Gi."""

    @model_validator(mode="after")
    def _gpu_type_with_gpus(self) -> "ComputeResources":
        if self.gpus_per_worker > 0 and not self.gpu_type:
            raise ValueError("gpuType is required when gpusPerWorker is above 0")
        return self


class DeepSpeedSpec(KubeModel):
    """DeepSpeed settings; the operator renders them into the DeepSpeed JSON config the workers load."""

    enabled: bool = True
    """Train through DeepSpeed. When false, plain torch DistributedDataParallel is used. Defaults to true."""
    zero_stage: Literal[0, 1, 2, 3] = 1
    """ZeRO stage: 0 none, 1 optimizer state, 2 + gradients, 3 + parameters partitioned. Defaults to 1."""
    offload_optimizer: Literal["none", "cpu", "nvme"] = "none"
    """Offload optimizer state (ZeRO 1-3). Defaults to none."""
    offload_params: Literal["none", "cpu", "nvme"] = "none"
    """Offload parameters (ZeRO 3 only). Defaults to none."""
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    """Training precision. bf16/fp16 need GPUs. Defaults to fp32."""
    gradient_clipping: float | None = Field(default=1.0, ge=0)
    """Clip gradients to this global norm. Defaults to 1.0."""
    config: dict[str, Any] | None = None
    """Raw DeepSpeed config keys merged over the rendered config, for settings this API does not model."""

    @model_validator(mode="after")
    def _offload_params_needs_zero3(self) -> "DeepSpeedSpec":
        if self.offload_params != "none" and self.zero_stage != 3:
            raise ValueError("offloadParams needs zeroStage 3")
        return self


class SpeedupsSpec(KubeModel):
    """Step speed-ups of the training workers, each measured against the runtime without it (docs/training.md)."""

    liger_kernels: bool = True
    """Liger's Triton kernels for RMSNorm, SwiGLU, rotary embeddings and a fused LM-head cross-entropy that never
    holds the logits, for the architectures liger-kernel supports (Llama, Qwen, Mistral, Gemma and more). Applied on
    GPU workers only; CPU workers train without them. Defaults to true."""
    fused_optimizer: bool = False
    """torch's fused AdamW: one kernel per step for every parameter's update. Defaults to false."""
    compile: bool = False
    """Compile the model with torch.compile (the first steps wait for the compilation). Defaults to false."""
    activation_checkpointing: bool = False
    """Recompute activations in the backward pass instead of keeping them: a fraction of the memory for about a
    quarter more step time, so a larger batch or sequence fits. Defaults to false."""


class Hyperparameters(KubeModel):
    """The optimisation loop."""

    epochs: int = Field(default=1, ge=1, le=10_000)
    """Passes over the dataset. Defaults to 1."""
    max_steps: int | None = Field(default=None, ge=1)
    """Stop after this many optimizer steps, whatever the epoch count."""
    batch_size: int = Field(default=8, ge=1, le=65_536)
    """Micro-batch size per worker. Defaults to 8."""
    gradient_accumulation_steps: int = Field(default=1, ge=1, le=1024)
    """Micro-batches per optimizer step. Defaults to 1."""
    learning_rate: float = Field(default=3e-4, gt=0, le=1)
    """Peak learning rate (AdamW). Defaults to 3e-4."""
    warmup_steps: int = Field(default=0, ge=0)
    """Linear warm-up steps. Defaults to 0."""
    seq_length: int = Field(default=128, ge=8, le=131_072)
    """Tokens per training sequence. Defaults to 128."""
    eval_every_steps: int | None = Field(default=None, ge=1)
    """Evaluate on the held-out split every N steps (reported as evalLoss)."""
    seed: int = 0
    """Random seed. Defaults to 0."""
    speedups: SpeedupsSpec = Field(default_factory=SpeedupsSpec)
    """Kernels, optimizer, compilation and activation checkpointing of each step."""


class CheckpointSpec(KubeModel):
    """Where and how often checkpoints are written, and where a restarted job resumes."""

    uri: str = Field(min_length=1, max_length=1024, json_schema_extra={"x-kubernetes-validations": [
        cel("self == oldSelf", "checkpoint.uri is immutable: a job resumes from it"),
    ]})
    """Checkpoint location: file:///path, pvc://claim/path or s3://bucket/prefix. Immutable."""
    every_steps: int = Field(default=100, ge=1)
    """Write a checkpoint every N optimizer steps (and at the end). Defaults to 100."""
    keep: int = Field(default=3, ge=1, le=100)
    """How many recent checkpoints to keep. Defaults to 3."""
    resume_from: str = Field(default="latest", pattern=r"^(latest|none|[0-9]+)$")
    """latest (resume from the newest checkpoint if one exists), none, or a step number. Defaults to latest."""


class RetrySpec(KubeModel):
    """Retry a failed run (a lost worker, a preempted node) from its newest checkpoint, waiting longer each time."""

    limit: int = Field(default=0, ge=0, le=20)
    """Retries after a failure. 0 never retries. Defaults to 0."""
    backoff: Duration = "30s"
    """Wait before the first retry; each further retry waits twice as long. Defaults to 30s."""
    max_backoff: Duration = "10m"
    """Longest wait between retries. Defaults to 10m."""


class BudgetSpec(KubeModel):
    """A spending limit and what to do when it is crossed."""

    limit: float = Field(gt=0)
    """The most this object may cost, in the price catalog's currency."""
    action: Literal["Alert", "Suspend", "Stop"] = "Alert"
    """Alert: set BudgetExceeded and emit an Event. Suspend: suspend the job (resumable). Stop: stop it for good. Defaults to Alert."""


class RayClusterSelector(KubeModel):
    """Run on an existing RayCluster instead of creating one per job."""

    match_labels: dict[str, str] = Field(min_length=1, max_length=16)
    """Labels of the RayCluster to submit to (KubeRay's RayJob clusterSelector)."""


class SchedulingSpec(KubeModel):
    """Queueing and placement."""

    queue_name: str | None = Field(default=None, max_length=63)
    """Kueue LocalQueue to admit the job through (sets the kueue.x-k8s.io/queue-name label)."""
    priority_class_name: str | None = Field(default=None, max_length=253)
    """PriorityClass of the Ray pods."""
    node_selector: dict[str, str] | None = None
    """Extra node selector for every Ray pod, merged over the GPU type's selector."""
    tolerations: list[dict[str, Any]] | None = Field(default=None, max_length=32)
    """Extra tolerations for every Ray pod (Kubernetes Toleration objects)."""
    cluster_selector: RayClusterSelector | None = None
    """Submit to an existing RayCluster instead of creating one."""


class ChatSpec(KubeModel):
    """Records are conversations (OpenAI `messages`), rendered with the model's chat template for supervised fine-tuning."""

    messages_field: str = Field(default="messages", min_length=1, max_length=253)
    """The record field holding the list of {role, content} messages. Defaults to messages."""
    assistant_only_loss: bool = True
    """Train on the assistant turns only (system and user tokens carry no loss). Defaults to true."""
    max_length: int | None = Field(default=None, ge=8, le=131_072)
    """Longest conversation in tokens; longer ones are cut per truncation. Defaults to training.seqLength."""
    truncation: Literal["right", "left", "drop"] = "right"
    """right keeps a conversation's beginning, left its end (the latest turns), drop skips it. Defaults to right."""
    packing: bool = True
    """Pack several conversations into each training sequence; each attends only to itself. Defaults to true."""


class DatasetSpec(KubeModel):
    """Training data: a file of records, read with fsspec."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel("!has(self.chat) || !has(self.format) || self.format != 'text'",
            "chat needs records with a messages list: use format jsonl or parquet", ".chat"),
    ]}}

    uri: str = Field(min_length=1, max_length=1024)
    """file:///path, pvc://claim/path or s3://bucket/key of a JSONL, Parquet or text file (or a directory of them)."""
    format: Literal["jsonl", "parquet", "text"] = "jsonl"
    """Record format. Defaults to jsonl."""
    text_field: str = "text"
    """The record field holding the text. Defaults to text."""
    validation_fraction: float = Field(default=0.05, ge=0, lt=1)
    """Share of records held out for evalLoss. Defaults to 0.05."""
    chat: ChatSpec | None = None
    """Records are chat conversations: chat template, assistant-only loss, truncation and packing."""

    @model_validator(mode="after")
    def _chat_needs_records(self) -> "DatasetSpec":
        if self.chat is not None and self.format == "text":
            raise ValueError("chat needs records with a messages list: use format jsonl or parquet")
        return self


class JobSpecCommon(KubeModel):
    """Fields every training-like kind has."""

    image: str | None = Field(default=None, max_length=512)
    """Container image of the Ray pods. Defaults to the operator's runtime image."""
    resources: ComputeResources = Field(default_factory=ComputeResources)
    """Workers, GPUs, CPU and memory."""
    deepspeed: DeepSpeedSpec = Field(default_factory=DeepSpeedSpec)
    """DeepSpeed ZeRO, offload and precision."""
    training: Hyperparameters = Field(default_factory=Hyperparameters)
    """The optimisation loop."""
    checkpoint: CheckpointSpec | None = None
    """Checkpointing and resume. Without it the job cannot resume after a restart."""
    retries: RetrySpec | None = None
    """Retry a failed run from its newest checkpoint, with exponential backoff. Without it a failure is final."""
    budget: BudgetSpec | None = None
    """Spending limit and action."""
    max_duration: Duration = "6h"
    """Longest the job may run (KubeRay activeDeadlineSeconds); also bounds the cost estimate. Defaults to 6h."""
    pending_timeout: Duration = "15m"
    """Fail the job if its workers are not running within this time (for example GPUs that never arrive). Defaults to 15m."""
    suspend: bool = False
    """Suspend the job: running work is stopped and resumes from the latest checkpoint when unset."""
    ttl_seconds_after_finished: int | None = Field(default=None, ge=0)
    """Delete the Ray cluster this long after the job finishes. Defaults to keeping it 10 minutes."""
    scheduling: SchedulingSpec | None = None
    """Kueue queue, priority, placement, or an existing RayCluster."""

    @model_validator(mode="after")
    def _chat_fits_a_sequence(self) -> "JobSpecCommon":
        chat = getattr(getattr(self, "dataset", None), "chat", None)
        if chat is not None and chat.max_length is not None and chat.max_length > self.training.seq_length:
            raise ValueError(f"dataset.chat.maxLength {chat.max_length} exceeds training.seqLength "
                             f"{self.training.seq_length}: a conversation must fit one training sequence")
        return self


# ----- status --------------------------------------------------------------------------------------


class LossPoint(StatusModel):
    """One point of the training loss curve."""

    step: int
    """Optimizer step."""
    loss: float
    """Training loss at that step."""


class ProgressStatus(StatusModel):
    """Training progress, reported by the runtime."""

    step: int = 0
    """Optimizer steps done."""
    total_steps: int | None = None
    """Steps the job will run in all."""
    epoch: float = 0
    """Fractional epoch."""
    loss: float | None = None
    """Latest training loss."""
    first_loss: float | None = None
    """Training loss at the first reported step (to show the trend)."""
    eval_loss: float | None = None
    """Latest held-out loss."""
    loss_curve: list[LossPoint] | None = Field(default=None, max_length=64)
    """Training loss from step 1 on, carried across resumes and retries (thinned to at most 64 points)."""
    tokens_per_second: float | None = None
    """Training throughput over all workers."""
    speedups: list[str] | None = Field(default=None, max_length=8)
    """The training.speedups in effect on the workers: those asked for that their device runs (Liger's kernels
    need a GPU and an architecture liger-kernel covers)."""
    eta_seconds: int | None = None
    """Estimated seconds to completion."""
    updated_at: str | None = None
    """When the runtime last reported (RFC 3339)."""


class CheckpointStatus(StatusModel):
    """The newest checkpoint and where the run resumed from."""

    uri: str | None = None
    """Location of the newest checkpoint."""
    step: int | None = None
    """Step of the newest checkpoint."""
    resumed_from_step: int | None = None
    """Step the current run resumed from, if it resumed."""


class RayJobRef(StatusModel):
    """The KubeRay RayJob the operator created, recorded before it is created."""

    name: str
    """RayJob name."""
    submission_id: str
    """Ray job submission id (KubeRay spec.jobId), deterministic per generation so a retry never submits twice."""
    job_status: str | None = None
    """Ray job status mirrored from the RayJob (PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED)."""
    deployment_status: str | None = None
    """KubeRay jobDeploymentStatus mirrored from the RayJob."""
    message: str | None = None
    """Last message KubeRay reported."""


class JobStatusCommon(ResourceStatus):
    """Status shared by TrainingJob and FineTune."""

    ray_job: RayJobRef | None = None
    """The RayJob doing the work."""
    progress: ProgressStatus | None = None
    """Step, loss and throughput."""
    checkpoint: CheckpointStatus | None = None
    """Newest checkpoint."""
    cost: CostStatus | None = None
    """Estimated and accrued cost."""
    start_time: str | None = None
    """When the job started running (RFC 3339)."""
    completion_time: str | None = None
    """When the job finished (RFC 3339)."""
