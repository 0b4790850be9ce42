"""The serving engine of an InferenceService: which runtime loads the model, its typed engine arguments, which
KServe object serves it, and the model cache every replica reads.

Runtimes (KServe's Hugging Face serving runtime, one image, two backends):
- vllm: `--backend=vllm`, vLLM's continuous batching and paged KV cache on GPUs;
- huggingface: `--backend=huggingface`, the transformers backend (CPU, or a model vLLM does not support).
Unset, the accelerator decides: GPUs requested -> vllm, none -> huggingface.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from llmops_operator.api.v1alpha1.common import KubeModel, StatusModel
from llmops_operator.api.v1alpha1.units import Quantity

Runtime = Literal["vllm", "huggingface"]
Deployment = Literal["inferenceService", "llmInferenceService"]


class EngineArgs(KubeModel):
    """Engine arguments of the model server. maxModelLength and dtype apply to both runtimes; the others are vLLM's
    and need runtime vllm."""

    max_model_length: int | None = Field(default=None, ge=16, le=1_048_576)
    """Most tokens (prompt and output) one sequence may hold; the model's own context length when unset."""
    dtype: Literal["auto", "float16", "bfloat16", "float32"] | None = None
    """Data type of weights and activations; the model's own (float32 on CPU) when unset."""
    gpu_memory_utilization: float | None = Field(default=None, ge=0.1, le=0.99)
    """Share of each GPU's memory vLLM may take for weights and KV cache (0.1..0.99); vLLM's 0.9 when unset."""
    tensor_parallel_size: int | None = Field(default=None, ge=1, le=16)
    """GPUs one replica shards the model over; at most resources.gpus. resources.gpus when unset."""
    quantization: Literal["awq", "gptq", "fp8", "bitsandbytes", "compressed-tensors"] | None = None
    """Quantization method of the weights (vLLM --quantization); read from the model's config when unset."""
    kv_cache_dtype: Literal["auto", "fp8", "fp8_e4m3", "fp8_e5m2"] | None = None
    """Data type of the KV cache; fp8 doubles the sequences that fit. The model's dtype when unset."""
    max_num_seqs: int | None = Field(default=None, ge=1, le=4096)
    """Most sequences vLLM batches at once (a replica's concurrency ceiling)."""
    max_num_batched_tokens: int | None = Field(default=None, ge=16, le=1_048_576)
    """Most tokens one scheduler step processes (bounds the prefill chunk)."""
    enable_prefix_caching: bool | None = None
    """Reuse the KV cache of a shared prompt prefix (system prompts, prompt release templates)."""
    enforce_eager: bool | None = None
    """Run without CUDA graphs: less memory and a faster start, slower decoding."""


VLLM_ONLY = ("gpu_memory_utilization", "tensor_parallel_size", "quantization", "kv_cache_dtype", "max_num_seqs",
             "max_num_batched_tokens", "enable_prefix_caching", "enforce_eager")
"""EngineArgs fields only vLLM reads: set with runtime huggingface they are an InvalidSpec."""


class ModelCacheSpec(KubeModel):
    """Download the weights once and let every replica read them: KServe's LocalModelNamespaceCache (per node
    group, kept on the nodes' disks) when nodeGroups is set and KServe's local model cache is installed;
    otherwise a PersistentVolumeClaim filled once by a Job and mounted read-only by every replica."""

    size: Quantity
    """Size of the model's files (the cache's modelSize, and the claim's request)."""
    node_groups: list[str] | None = Field(default=None, min_length=1, max_length=8)
    """KServe LocalModelNodeGroups whose nodes keep a copy (needs KServe's local model cache installed; without it
    the claim is used)."""
    storage_class_name: str | None = Field(default=None, max_length=253)
    """StorageClass of the claim; it must offer ReadWriteMany (the Job writes, every replica reads). The cluster's
    default class when unset."""


class ModelCacheStatus(StatusModel):
    """Where the weights are cached and whether the download finished."""

    kind: str | None = None
    """LocalModelNamespaceCache or PersistentVolumeClaim."""
    name: str | None = None
    """Name of that object."""
    filled: bool = False
    """True once every copy is downloaded (the fill Job succeeded, or KServe reports every node's copy)."""


KEDA_METRICS = ("inFlightRequests", "queueDepth")
"""ScalingSpec metrics read from vLLM's Prometheus gauges through KEDA."""


def resolved_runtime(spec) -> Runtime | None:
    """spec.runtime, or the accelerator's choice; None for a model format KServe's Hugging Face runtime does not
    serve (the runtime is then KServe's pick for the format). `spec` is an InferenceServiceSpec."""
    if spec.runtime:
        return spec.runtime
    if spec.model.format != "huggingface":
        return None
    return "vllm" if spec.resources.gpus > 0 else "huggingface"


def engine_problems(spec) -> list[str]:
    """What in an InferenceServiceSpec the runtime, engine arguments and deployment cannot honour (pure)."""
    problems = []
    runtime = resolved_runtime(spec)
    huggingface = spec.model.format == "huggingface"
    if (spec.runtime or spec.engine_args) and not huggingface:
        problems.append(f"runtime and engineArgs need model.format huggingface, not {spec.model.format!r}")
    args = spec.engine_args
    if args is not None and runtime == "huggingface":
        wire = [EngineArgs.model_fields[name].alias for name in VLLM_ONLY if getattr(args, name) is not None]
        if wire:
            problems.append(f"engineArgs.{wire[0]} is a vLLM argument: set runtime vllm (or request GPUs)")
    if args is not None and args.tensor_parallel_size and args.tensor_parallel_size > max(spec.resources.gpus, 1):
        problems.append(f"engineArgs.tensorParallelSize {args.tensor_parallel_size} exceeds the "
                        f"{spec.resources.gpus} GPUs of resources.gpus")
    metric = spec.scaling.metric if spec.scaling else None
    if metric in KEDA_METRICS and runtime != "vllm":
        problems.append(f"scaling.metric {metric} reads vLLM's gauges: it needs runtime vllm")
    if spec.deployment == "llmInferenceService":
        problems += _llm_inference_service_problems(spec, runtime, metric)
    return problems


def _llm_inference_service_problems(spec, runtime: Runtime | None, metric: str | None) -> list[str]:
    problems = []
    if runtime != "vllm":
        problems.append("deployment llmInferenceService serves with vLLM: it needs runtime vllm (set "
                        "runtime vllm or request GPUs) and model.format huggingface")
    if spec.canary_traffic_percent is not None:
        problems.append("canaryTrafficPercent: an LLMInferenceService has no revision traffic split")
    if metric is not None and metric not in KEDA_METRICS:
        problems.append(f"scaling.metric {metric}: an LLMInferenceService scales on vLLM's saturation "
                        f"(inFlightRequests or queueDepth)")
    if spec.model.runtime:
        problems.append("model.runtime names a ServingRuntime, which an LLMInferenceService does not use")
    if spec.adapters:
        problems.append("adapters are served on deployment inferenceService only (KServe's LLMInferenceService "
                        "model.lora is not rendered)")
    return problems
