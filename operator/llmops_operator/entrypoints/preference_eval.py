"""Evaluation of a DPO-tuned model on held-out prompt/chosen/rejected records.

Each pair is scored by the tuned model and by the reference (the base it was tuned from: the adapter switched
off when the output is an adapter, else the base model loaded from baseModelUri). From these come the implicit
reward margins (preferenceAccuracy, rewardMargin), the chosen replies' token losses (perplexity), and the
prompts and chosen replies that generation metrics and the safety check use.
"""

from __future__ import annotations

import contextlib
from typing import Any

from llmops_operator.core.uris import local_path
from llmops_operator.entrypoints.chat import ensure_chat_template
from llmops_operator.entrypoints.preference import (
    collate_pairs, encode_pair, pair_of, preference_scores, rendered, sequence_logps,
)


@contextlib.contextmanager
def reference_of(model: Any, base_model_uri: str | None):
    """The reference model: the same model with its adapter off, or the base loaded beside a merged output."""
    disable = getattr(model, "disable_adapter", None)
    if disable is not None:
        with disable():
            yield model
        return
    if not base_model_uri:
        raise ValueError("objective dpo: the output is a whole model and no base model is known to compare it with")
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(local_path(base_model_uri)))
    base.eval()
    yield base


def _pair_logps(model: Any, pair: dict[str, Any], pad: int) -> tuple[float, float]:
    import torch

    batch = collate_pairs([pair], pad)
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    chosen, rejected = sequence_logps(logits, batch["labels"]).tolist()
    return chosen, rejected


def preference_cases(model: Any, tokenizer: Any, records: list[Any], config: dict[str, Any], max_length: int
                     ) -> tuple[dict[str, float], list[tuple[float, int]], list[tuple[dict[str, Any], str, str]]]:
    """(preferenceAccuracy and rewardMargin, chosen-reply losses for perplexity, (record, prompt, chosen) cases)."""
    ensure_chat_template(tokenizer)
    beta = (config.get("dpo") or {}).get("beta", 0.1)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    encoded, cases = [], []
    for index, record in enumerate(records):
        messages, chosen, rejected = pair_of(record, index)
        encoded.append(encode_pair(tokenizer, messages, chosen, rejected, max_length))
        cases.append((record, rendered(tokenizer, messages, chosen)[0], chosen))
    policy = [_pair_logps(model, pair, pad) for pair in encoded]
    with reference_of(model, config.get("baseModelUri")) as reference:
        ref = [_pair_logps(reference, pair, pad) for pair in encoded]
    margins = [beta * ((pc - rc) - (pr - rr)) for (pc, pr), (rc, rr) in zip(policy, ref)]
    scored = [sum(1 for label in pair["chosenLabels"][1:] if label != -100) for pair in encoded]
    losses = [(-chosen / n, n) for (chosen, _), n in zip(policy, scored) if n]
    return preference_scores(margins), losses, cases
