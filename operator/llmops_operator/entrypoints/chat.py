"""Chat records for supervised fine-tuning: render with the chat template, mask all but the assistant turns.

A record holds OpenAI-style `messages` ({role, content}). The conversation is rendered with the tokenizer's
chat template, or with DEFAULT_CHAT_TEMPLATE when the tokenizer has none (the builtin tokenizer has none).
Assistant spans are found by rendering the conversation incrementally: the text of
messages[:i] followed by the generation prompt is a prefix of the text of messages[:i+1], and what lies
between the two is assistant i's reply (its end-of-turn marker included, so the model learns to stop).
Tokens whose characters fall inside those spans keep their labels; every other token is IGNORE_INDEX.
"""

from __future__ import annotations

from typing import Any

IGNORE_INDEX = -100
"""The label torch's cross-entropy (and so every transformers causal LM) skips."""
ROLES = ("system", "user", "assistant", "tool")
DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}\n<|end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
"""Used when the tokenizer has no chat template: a role header, the content, and an end-of-turn line per message."""


def ensure_chat_template(tokenizer: Any) -> Any:
    """The tokenizer, given the default template when it has none (saved with it, so serving renders alike)."""
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
    return tokenizer


def messages_of(record: dict[str, Any], index: int, field: str) -> list[dict[str, str]]:
    """The record's conversation, checked: a non-empty list of {role, content} with a known role."""
    messages = record.get(field)
    where = f"record {index} field {field!r} (dataset.chat.messagesField)"
    if not isinstance(messages, list) or not messages:
        raise ValueError(f"{where}: expected a non-empty list of messages")
    checked = []
    for position, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES \
                or not isinstance(message.get("content"), str):
            raise ValueError(f"{where}: message {position} needs a role ({', '.join(ROLES)}) and a string content")
        checked.append({"role": message["role"], "content": message["content"]})
    return checked


def render(tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def assistant_spans(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[str, list[tuple[int, int]]]:
    """(rendered conversation, character spans of each assistant reply in it)."""
    text = render(tokenizer, messages)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt, upto = render(tokenizer, messages[:i], add_generation_prompt=True), render(tokenizer, messages[:i + 1])
        if not (upto.startswith(prompt) and text.startswith(upto)):
            raise ValueError("the chat template does not render a conversation as a prefix of its continuation, so "
                             "assistant turns cannot be located: set dataset.chat.assistantOnlyLoss to false")
        spans.append((len(prompt), len(upto)))
    return text, spans


def encode(tokenizer: Any, messages: list[dict[str, str]], assistant_only: bool) -> tuple[list[int], list[int]]:
    """(input ids, labels) of one conversation; labels are IGNORE_INDEX outside assistant replies."""
    if not assistant_only:
        ids = tokenizer(render(tokenizer, messages), add_special_tokens=False)["input_ids"]
        return ids, list(ids)
    text, spans = assistant_spans(tokenizer, messages)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    labels = [token if any(start <= begin < end for start, end in spans) else IGNORE_INDEX
              for token, (begin, _) in zip(encoded["input_ids"], encoded["offset_mapping"])]
    return encoded["input_ids"], labels


def prompt_and_reference(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[str, str] | None:
    """For generation metrics: the conversation up to its last assistant reply, and that reply."""
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last is None:
        return None
    return render(tokenizer, messages[:last], add_generation_prompt=True), messages[last]["content"]


def examples(records: list[dict[str, Any]], tokenizer: Any, chat: dict[str, Any],
             seq_length: int) -> list[tuple[list[int], list[int]]]:
    """Every record encoded and fitted to dataset.chat.maxLength; one with nothing left to learn is skipped."""
    from llmops_operator.entrypoints.data import fit_length

    max_length = min(chat.get("maxLength") or seq_length, seq_length)
    field, assistant_only = chat.get("messagesField", "messages"), chat.get("assistantOnlyLoss", True)
    out = []
    for index, record in enumerate(records):
        example = fit_length(encode(tokenizer, messages_of(record, index, field), assistant_only),
                             max_length, chat.get("truncation", "right"))
        if example is not None and any(label != IGNORE_INDEX for label in example[1][1:]):
            out.append(example)
    return out
