"""The DeepSpeed JSON config a training run loads, rendered from the typed spec (pure)."""

from __future__ import annotations

from typing import Any

from llmops_operator.api.v1alpha1.training import JobSpecCommon


def deepspeed_config(spec: JobSpecCommon) -> dict[str, Any] | None:
    """DeepSpeed's config for `spec`, or None when the job trains with plain DDP.

    train_batch_size is stated explicitly (micro-batch x accumulation x workers) because DeepSpeed
    checks the three against each other at start-up; writing all three here makes a mismatch
    impossible instead of a crash on the cluster.
    """
    ds = spec.deepspeed
    if not ds.enabled:
        return None
    hp = spec.training
    config: dict[str, Any] = {
        "train_micro_batch_size_per_gpu": hp.batch_size,
        "gradient_accumulation_steps": hp.gradient_accumulation_steps,
        "train_batch_size": hp.batch_size * hp.gradient_accumulation_steps * spec.resources.workers,
        "zero_optimization": _zero(ds.zero_stage, ds.offload_optimizer, ds.offload_params),
        # torch_adam: torch's AdamW instead of DeepSpeed's fused kernel, which compiles for minutes at start-up.
        "optimizer": {"type": "AdamW", "params": {"lr": hp.learning_rate, "weight_decay": 0.0, "torch_adam": True}},
        "bf16": {"enabled": ds.precision == "bf16"},
        "fp16": {"enabled": ds.precision == "fp16"},
        "steps_per_print": 10**9,  # progress is reported by the runtime, not DeepSpeed's stdout
        "wall_clock_breakdown": False,
    }
    if hp.warmup_steps:
        # DeepSpeed's WarmupLR refuses zero warm-up steps; without warm-up the rate is constant.
        config["scheduler"] = {"type": "WarmupLR", "params": {
            "warmup_min_lr": 0.0, "warmup_max_lr": hp.learning_rate, "warmup_num_steps": hp.warmup_steps}}
    if ds.gradient_clipping is not None:
        config["gradient_clipping"] = ds.gradient_clipping
    if ds.offload_optimizer == "cpu":
        # ZeRO-Offload insists on DeepSpeedCPUAdam (a compiled op) unless told the torch optimizer is fine.
        config["zero_force_ds_cpu_optimizer"] = False
    return deep_merge(config, ds.config or {})


def _zero(stage: int, offload_optimizer: str, offload_params: str) -> dict[str, Any]:
    zero: dict[str, Any] = {"stage": stage}
    if stage >= 1 and offload_optimizer != "none":
        zero["offload_optimizer"] = {"device": offload_optimizer, "pin_memory": offload_optimizer == "cpu"}
    if stage == 3 and offload_params != "none":
        zero["offload_param"] = {"device": offload_params, "pin_memory": offload_params == "cpu"}
    if stage >= 2:
        zero["overlap_comm"] = True
        zero["contiguous_gradients"] = True
    return zero


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` merged into a copy of `base`, recursively for nested dicts."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
