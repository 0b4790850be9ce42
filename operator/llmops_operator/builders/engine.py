"""The serving engine's part of the KServe objects: runtime backend, engine arguments, LLM autoscaling (pure).

KServe's Hugging Face runtime (`kserve-huggingfaceserver`) takes `--backend=vllm|huggingface`, its own
`--max_model_len` and `--dtype`, and with the vLLM backend every vLLM engine flag (`--gpu-memory-utilization`,
`--tensor-parallel-size`, ...). An LLMInferenceService runs `vllm serve`, which reads the same vLLM flags from its
`VLLM_ADDITIONAL_ARGS`. inFlightRequests and queueDepth scale through KEDA on vLLM's Prometheus gauges, which
needs KServe's Standard (formerly RawDeployment) deployment mode.
"""

from __future__ import annotations

from typing import Any

from llmops_operator.api.v1alpha1.inferenceservice import InferenceService
from llmops_operator.api.v1alpha1.serving_engine import KEDA_METRICS, resolved_runtime
from llmops_operator.core.contract import InvalidSpec

AUTOSCALER_CLASS = "serving.kserve.io/autoscalerClass"
DEPLOYMENT_MODE = "serving.kserve.io/deploymentMode"
VLLM_GAUGES = {"inFlightRequests": "vllm:num_requests_running", "queueDepth": "vllm:num_requests_waiting"}
"""vLLM's per-replica gauges: sequences being decoded, and requests waiting for a slot."""
_VLLM_FLAGS = (("gpu_memory_utilization", "--gpu-memory-utilization"), ("quantization", "--quantization"),
               ("kv_cache_dtype", "--kv-cache-dtype"), ("max_num_seqs", "--max-num-seqs"),
               ("max_num_batched_tokens", "--max-num-batched-tokens"))
_VLLM_SWITCHES = (("enable_prefix_caching", "--enable-prefix-caching", "--no-enable-prefix-caching"),
                  ("enforce_eager", "--enforce-eager", None))


def vllm_flags(obj: InferenceService, max_model_length_flag: str = "--max-model-len") -> list[str]:
    """vLLM's command-line flags for spec.engineArgs; tensor parallelism defaults to every GPU of a replica."""
    args = obj.spec.engine_args
    flags = []
    if args and args.max_model_length:
        flags.append(f"{max_model_length_flag}={args.max_model_length}")
    if args and args.dtype:
        flags.append(f"--dtype={args.dtype}")
    tensor_parallel = (args.tensor_parallel_size if args else None) or obj.spec.resources.gpus
    if tensor_parallel and tensor_parallel > 1:
        flags.append(f"--tensor-parallel-size={tensor_parallel}")
    for name, flag in _VLLM_FLAGS:
        value = getattr(args, name) if args else None
        if value is not None:
            flags.append(f"{flag}={value}")
    for name, on, off in _VLLM_SWITCHES:
        value = getattr(args, name) if args else None
        if value is True or (value is False and off):
            flags.append(on if value else off)
    return flags


def predictor_args(obj: InferenceService) -> list[str]:
    """Arguments of KServe's Hugging Face runtime container: the backend and the engine arguments. [] for a model
    format that runtime does not serve."""
    runtime = resolved_runtime(obj.spec)
    if runtime is None:
        return []
    if runtime == "vllm":
        return ["--backend=vllm", *vllm_flags(obj, "--max_model_len")]
    args = obj.spec.engine_args
    out = ["--backend=huggingface"]
    if args and args.max_model_length:
        out.append(f"--max_model_len={args.max_model_length}")
    if args and args.dtype:
        out.append(f"--dtype={args.dtype}")
    return out


def keda_metric(obj: InferenceService) -> str | None:
    """The vLLM gauge the service scales on through KEDA, or None (KServe's own autoscaler)."""
    scaling = obj.spec.scaling
    return VLLM_GAUGES[scaling.metric] if scaling and scaling.metric in KEDA_METRICS else None


def keda_query(obj: InferenceService, workload: str) -> str:
    """The Prometheus query summing the gauge over the predictor's pods; HPA divides it by the replicas."""
    gauge = keda_metric(obj)
    return f'sum({gauge}{{namespace="{obj.namespace}",pod=~"{workload}-.*"}})'


def predictor_autoscaling(obj: InferenceService, predictor_workload: str, prometheus_url: str) -> dict[str, Any]:
    """KServe v1beta1 `autoScaling` with one External Prometheus metric (served by KEDA)."""
    metric = {"backend": "prometheus", "serverAddress": prometheus_url,
              "query": keda_query(obj, predictor_workload)}
    target = {"type": "AverageValue", "averageValue": str(obj.spec.scaling.target)}
    return {"metrics": [{"type": "External", "external": {"metric": metric, "target": target}}]}


def apply_engine(isvc: dict[str, Any], obj: InferenceService, prometheus_url: str | None) -> dict[str, Any]:
    """Add the runtime's arguments and the LLM autoscaling to a rendered KServe v1beta1 InferenceService."""
    predictor = isvc["spec"]["predictor"]
    args = predictor_args(obj)
    if args:  # before the adapters' engine arguments (builders/adapters.py)
        predictor["model"]["args"] = [*args, *predictor["model"].get("args", [])]
    if keda_metric(obj):
        if not prometheus_url:
            raise InvalidSpec("spec.scaling.metric reads Prometheus: the operator setting LLMOPS_PROMETHEUS_URL is "
                             "unset")
        predictor["autoScaling"] = predictor_autoscaling(obj, f"{isvc['metadata']['name']}-predictor",
                                                         prometheus_url)
        annotations = isvc["metadata"].setdefault("annotations", {})
        annotations |= {AUTOSCALER_CLASS: "keda", DEPLOYMENT_MODE: "Standard"}
    return isvc
