"""Step speed-ups of a training worker: fused AdamW, Liger kernels, torch.compile and activation checkpointing.

Each was measured against the runtime without it in tests/benchmarks/train_throughput.py (docs/training.md has
the table); `training.speedups` in the spec turns each on or off.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


GPU_ONLY = frozenset({"ligerKernels"})
"""Speed-ups that exist only on a GPU; a CPU worker trains without them."""


def chosen(training: dict[str, Any], on_gpu: bool) -> frozenset[str]:
    """The speed-ups this worker applies: those training.speedups turns on that run on its device (pure)."""
    from llmops_operator.api.v1alpha1.training import SpeedupsSpec

    wanted = SpeedupsSpec.model_validate(training.get("speedups") or {}).wire()
    return frozenset(name for name, on in wanted.items() if on and (on_gpu or name not in GPU_ONLY))


def prepare(model: Any, speedups: frozenset[str]) -> list[str]:
    """Apply the model-side speed-ups to `model` in place (the optimizer's and compilation are the engine's to
    apply) and name every one in effect: Liger's kernels only where liger-kernel covers the architecture."""
    applied = set(speedups)
    if "ligerKernels" in speedups and not apply_liger(model):
        applied.discard("ligerKernels")
    if "activationCheckpointing" in speedups:
        checkpoint_activations(model)
    return sorted(applied)


def fused_adamw(config: dict[str, Any]) -> dict[str, Any]:
    """The DeepSpeed config with torch's fused AdamW, one kernel for every parameter's update instead of a loop
    of small ones (pure). Only the torch optimizer the operator renders is changed; a raw DeepSpeed optimizer
    from deepspeed.config is left as it is."""
    from llmops_operator.builders.deepspeed import deep_merge

    optimizer = config.get("optimizer") or {}
    params = optimizer.get("params") or {}
    if optimizer.get("type") not in ("Adam", "AdamW") or not params.get("torch_adam") or "fused" in params:
        return config
    return deep_merge(config, {"optimizer": {"params": {"fused": True}}})


def base_model(model: Any) -> Any:
    """The transformers model inside a peft wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def apply_liger(model: Any) -> bool:
    """Replace the model's RMSNorm, SwiGLU, rotary embedding and LM-head cross-entropy with Liger's Triton
    kernels, where liger-kernel supports the architecture. The fused linear cross-entropy never materialises
    the logits, the largest activation of a step. Returns whether they were applied. Liger also patches the
    architecture's module for the whole process (its rotary embedding), so only a worker applies them."""
    try:
        from liger_kernel.transformers.monkey_patch import MODEL_TYPE_TO_APPLY_LIGER_FN, _apply_liger_kernel_to_instance
    except ImportError:
        log.info("liger-kernel is not installed: training without its kernels")
        return False
    model_type = getattr(base_model(model).config, "model_type", None)
    if model_type not in MODEL_TYPE_TO_APPLY_LIGER_FN:
        log.info("liger-kernel has no kernels for %s models: training without them", model_type)
        return False
    _apply_liger_kernel_to_instance(model=base_model(model))
    return True


def checkpoint_activations(model: Any) -> None:
    """Recompute each block's activations in the backward pass instead of keeping them: about a third more
    compute for a fraction of the activation memory, so a larger micro-batch fits."""
    base = base_model(model)
    if hasattr(base, "activation_checkpointing_enable"):  # the name since transformers 5.2x
        base.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
