"""Preference records for DPO: validate, render with the chat template, mask the prompt, and the loss.

A record holds `prompt` (a string, taken as one user turn, or an OpenAI `messages` list ending on a user turn),
`chosen` and `rejected` (the preferred and the dispreferred assistant reply, strings). The prompt is rendered
with the chat template and its generation prompt; a reply is what the template adds after that for the
assistant turn, end-of-turn marker included. Prompt and reply are tokenized apart so their boundary is exact;
only reply tokens are scored.

The loss (Rafailov et al., 2023) compares how much the tuned policy raised the chosen reply's log-likelihood
over the rejected one's, against the same difference under the reference model:
    z = (log pi(y_w|x) - log pi(y_l|x)) - (log ref(y_w|x) - log ref(y_l|x))
    sigmoid: -log sigmoid(beta * z)           ipo: (z - 1 / (2 beta))^2
The implicit reward of a reply is beta * (log pi - log ref); the reward margin is chosen minus rejected, and a
pair counts as preferred when its margin is positive.
"""

from __future__ import annotations

from typing import Any

from llmops_operator.entrypoints.chat import IGNORE_INDEX, ROLES, ensure_chat_template, render

FIELDS = ("prompt", "chosen", "rejected")
MAX_FIELD_CHARS = 32_768
"""Longest prompt or reply accepted, in characters; a record is tenant data and read whole into memory."""
MAX_PROMPT_MESSAGES = 64
LOSS_TYPES = ("sigmoid", "ipo")


def pair_of(record: Any, index: int) -> tuple[list[dict[str, str]], str, str]:
    """(prompt messages, chosen, rejected) of record `index`, checked, with the field at fault named."""
    where = f"record {index}"
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected an object with fields prompt, chosen and rejected")
    for field in FIELDS:
        if field not in record:
            raise ValueError(f"{where}: missing field {field!r} (objective dpo reads prompt, chosen and rejected)")
    for field in ("chosen", "rejected"):
        value = record[field]
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{where} field {field!r}: expected a non-empty string")
        if len(value) > MAX_FIELD_CHARS:
            raise ValueError(f"{where} field {field!r}: {len(value)} characters, more than {MAX_FIELD_CHARS}")
    if record["chosen"] == record["rejected"]:
        raise ValueError(f"{where}: fields 'chosen' and 'rejected' are the same reply, so the pair states no "
                         "preference")
    return _prompt_messages(record["prompt"], index), record["chosen"], record["rejected"]


def _prompt_messages(prompt: Any, index: int) -> list[dict[str, str]]:
    where = f"record {index}"
    if isinstance(prompt, str):
        if not prompt.strip():
            raise ValueError(f"{where} field 'prompt': expected a non-empty string or a list of messages")
        messages = [{"role": "user", "content": prompt}]
    elif isinstance(prompt, list) and 0 < len(prompt) <= MAX_PROMPT_MESSAGES:
        messages = []
        for position, message in enumerate(prompt):
            if not isinstance(message, dict) or message.get("role") not in ROLES \
                    or not isinstance(message.get("content"), str):
                raise ValueError(f"{where} field 'prompt': message {position} needs a role ({', '.join(ROLES)}) "
                                 "and a string content")
            messages.append({"role": message["role"], "content": message["content"]})
    else:
        raise ValueError(f"{where} field 'prompt': expected a string or a list of at most {MAX_PROMPT_MESSAGES} "
                         "messages")
    if sum(len(m["content"]) for m in messages) > MAX_FIELD_CHARS:
        raise ValueError(f"{where} field 'prompt': longer than {MAX_FIELD_CHARS} characters")
    if messages[-1]["role"] == "assistant":
        raise ValueError(f"{where} field 'prompt': the last message is the assistant's; the reply to learn is "
                         "chosen/rejected")
    return messages


def rendered(tokenizer: Any, messages: list[dict[str, str]], reply: str) -> tuple[str, str]:
    """(prompt text with the generation prompt, the reply as the template writes it after that prompt)."""
    prompt = render(tokenizer, messages, add_generation_prompt=True)
    whole = render(tokenizer, [*messages, {"role": "assistant", "content": reply}])
    if not whole.startswith(prompt):
        raise ValueError("the chat template does not render a conversation as a prefix of its continuation, so "
                         "the prompt cannot be told from the reply")
    return prompt, whole[len(prompt):]


def _ids(tokenizer: Any, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def encode_pair(tokenizer: Any, messages: list[dict[str, str]], chosen: str, rejected: str, max_length: int
                ) -> dict[str, list[int]]:
    """Token ids and labels of the chosen and the rejected sequence, prompt tokens labelled IGNORE_INDEX.

    A pair longer than max_length keeps the start of each reply (at least half of max_length, or all of it)
    and the end of the prompt, the same prompt for both sides."""
    prompt_text, chosen_text = rendered(tokenizer, messages, chosen)
    _, rejected_text = rendered(tokenizer, messages, rejected)
    prompt = _ids(tokenizer, prompt_text)
    replies = [_ids(tokenizer, chosen_text), _ids(tokenizer, rejected_text)]
    reply_room = max(max_length - len(prompt), max_length // 2)
    replies = [reply[:reply_room] for reply in replies]
    prompt = prompt[len(prompt) - min(len(prompt), max_length - max(map(len, replies))):]
    out: dict[str, list[int]] = {}
    for side, reply in zip(("chosen", "rejected"), replies):
        out[f"{side}Ids"] = prompt + reply
        out[f"{side}Labels"] = [IGNORE_INDEX] * len(prompt) + reply
    return out


def pairs(records: list[Any], tokenizer: Any, max_length: int) -> list[dict[str, Any]]:
    """Every record validated and encoded, in order."""
    ensure_chat_template(tokenizer)
    return [encode_pair(tokenizer, *pair_of(record, index), max_length) for index, record in enumerate(records)]


def collate_pairs(batch: list[dict[str, Any]], pad: int) -> dict[str, Any]:
    """One batch of 2N right-padded sequences, the N chosen first, then the N rejected in the same order."""
    import torch

    sequences = [(p["chosenIds"], p["chosenLabels"]) for p in batch] + \
                [(p["rejectedIds"], p["rejectedLabels"]) for p in batch]
    width = max(len(ids) for ids, _ in sequences)
    ids = [s + [pad] * (width - len(s)) for s, _ in sequences]
    labels = [lab + [IGNORE_INDEX] * (width - len(lab)) for _, lab in sequences]
    mask = [[1] * len(s) + [0] * (width - len(s)) for s, _ in sequences]
    return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask), "labels": torch.tensor(labels)}


def sequence_logps(logits: Any, labels: Any) -> Any:
    """Sum of the log-probabilities of each sequence's labelled tokens (next-token shifted)."""
    import torch

    logits, labels = logits[:, :-1, :].float(), labels[:, 1:]
    scored = labels != IGNORE_INDEX
    picked = torch.gather(logits.log_softmax(-1), 2, labels.clamp(min=0).unsqueeze(2)).squeeze(2)
    return (picked * scored).sum(-1)


def dpo_loss(policy_chosen: Any, policy_rejected: Any, ref_chosen: Any, ref_rejected: Any, beta: float,
             loss_type: str = "sigmoid") -> tuple[Any, Any]:
    """(mean loss, per-pair reward margins) from per-pair sequence log-probabilities."""
    import torch.nn.functional as F

    z = (policy_chosen - policy_rejected) - (ref_chosen - ref_rejected)
    if loss_type == "sigmoid":
        losses = -F.logsigmoid(beta * z)
    elif loss_type == "ipo":
        losses = (z - 1 / (2 * beta)) ** 2
    else:
        raise ValueError(f"dpo.lossType {loss_type!r}: expected one of {', '.join(LOSS_TYPES)}")
    margins = beta * ((policy_chosen - ref_chosen) - (policy_rejected - ref_rejected))
    return losses.mean(), margins.detach()


def preference_scores(margins: list[float]) -> dict[str, float]:
    """preferenceAccuracy (share of positive margins) and rewardMargin (their mean)."""
    if not margins:
        return {}
    return {"preferenceAccuracy": round(sum(m > 0 for m in margins) / len(margins), 4),
            "rewardMargin": round(sum(margins) / len(margins), 4)}
