"""Chat SFT and model families: the chat template, assistant-only labels, truncation, packing boundaries, and
LoRA targets read from each architecture. Real tokenizer (the builtin one) and real tiny models, no downloads."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")

from llmops_operator.backends.models import build_model, load_tokenizer, lora_targets  # noqa: E402
from llmops_operator.entrypoints import chat, data  # noqa: E402
from llmops_operator.entrypoints.engines import model_inputs  # noqa: E402

CONVERSATION = [
    {"role": "system", "content": "You answer briefly."},
    {"role": "user", "content": "What does a FineTune create?"},
    {"role": "assistant", "content": "A RayJob."},
    {"role": "user", "content": "And a TrainingJob?"},
    {"role": "assistant", "content": "Also a RayJob."},
]
SMALL = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2, "head_dim": 8}


@pytest.fixture(scope="module")
def tokenizer():
    return chat.ensure_chat_template(load_tokenizer("builtin:minilm"))


def test_the_builtin_tokenizer_gets_the_default_template_and_a_template_of_its_own_is_kept(tokenizer):
    assert tokenizer.chat_template == chat.DEFAULT_CHAT_TEMPLATE
    own = type("T", (), {"chat_template": "{{ messages }}"})()
    assert chat.ensure_chat_template(own).chat_template == "{{ messages }}"
    text = chat.render(tokenizer, CONVERSATION[:2], add_generation_prompt=True)
    assert text == ("<|system|>\nYou answer briefly.\n<|end|>\n<|user|>\nWhat does a FineTune create?\n<|end|>\n"
                    "<|assistant|>\n")


def test_only_assistant_tokens_carry_labels_and_the_switch_turns_that_off(tokenizer):
    ids, labels = chat.encode(tokenizer, CONVERSATION, assistant_only=True)
    learned = tokenizer.decode([t for t, label in zip(ids, labels) if label != chat.IGNORE_INDEX])
    assert learned == "a rayjob. < | end | > also a rayjob. < | end | >"  # replies and their end-of-turn marks
    assert labels[: len(tokenizer(chat.render(tokenizer, CONVERSATION[:2], True),
                                  add_special_tokens=False)["input_ids"])] == \
        [chat.IGNORE_INDEX] * len(tokenizer(chat.render(tokenizer, CONVERSATION[:2], True),
                                            add_special_tokens=False)["input_ids"])
    all_ids, all_labels = chat.encode(tokenizer, CONVERSATION, assistant_only=False)
    assert all_ids == ids and all_labels == ids


def test_bad_messages_are_refused_naming_the_record_and_field():
    with pytest.raises(ValueError, match=r"record 3 field 'messages' .*non-empty list"):
        chat.messages_of({"messages": []}, 3, "messages")
    with pytest.raises(ValueError, match=r"record 0 field 'chat' .*message 1 needs a role"):
        chat.messages_of({"chat": [{"role": "user", "content": "hi"}, {"role": "robot", "content": "x"}]}, 0, "chat")


def test_truncation_keeps_the_start_the_end_or_drops(tokenizer):
    example = (list(range(10)), list(range(10)))
    assert data.fit_length(example, 4, "right") == ([0, 1, 2, 3], [0, 1, 2, 3])
    assert data.fit_length(example, 4, "left") == ([6, 7, 8, 9], [6, 7, 8, 9])
    assert data.fit_length(example, 4, "drop") is None
    assert data.fit_length(example, 10, "drop") == example
    records = [{"messages": CONVERSATION}, {"messages": CONVERSATION[:3]}]
    # Cut to 8 tokens from the right, neither conversation reaches an assistant token: nothing to learn, skipped.
    assert chat.examples(records, tokenizer, {"maxLength": 8}, seq_length=64) == []
    assert len(chat.examples(records, tokenizer, {"truncation": "left", "maxLength": 8}, seq_length=64)) == 2


def test_packing_restarts_positions_per_example_and_pads_with_ignored_labels():
    blocks = data.pack_examples([([1, 2, 3], [-100, 2, 3]), ([4, 5], [4, 5]), ([6, 7, 8], [6, 7, 8])],
                                block=6, pad=0, packing=True)
    assert blocks == [
        {"input_ids": [1, 2, 3, 4, 5, 0], "labels": [-100, 2, 3, 4, 5, -100], "position_ids": [0, 1, 2, 0, 1, 0]},
        {"input_ids": [6, 7, 8, 0, 0, 0], "labels": [6, 7, 8, -100, -100, -100], "position_ids": [0, 1, 2, 0, 1, 2]},
    ]
    unpacked = data.pack_examples([([1, 2], [1, 2]), ([3], [3])], block=3, pad=0, packing=False)
    assert [b["input_ids"] for b in unpacked] == [[1, 2, 0], [3, 0, 0]]
    with pytest.raises(ValueError, match="does not fit"):
        data.pack_examples([([1] * 7, [1] * 7)], block=6, pad=0, packing=True)


@pytest.mark.parametrize("architecture,config", [
    ("llama", SMALL), ("gpt2", {"n_layer": 2, "n_embd": 32, "n_head": 4, "n_positions": 64})])
def test_packed_examples_do_not_attend_to_each_other(architecture, config):
    """The logits of two packed examples equal those of each example run alone: no cross-example attention."""
    import torch

    torch.manual_seed(0)
    model = build_model({"architecture": architecture, "config": config}, 300).eval()
    first, second = [5, 17, 42, 7, 99], [3, 250, 11]
    block = data.collate(data.pack_examples([(first, first), (second, second)], 10, pad=0, packing=True))
    with torch.no_grad():
        packed = model(**model_inputs(block, "cpu")).logits[0]
        alone = [model(input_ids=torch.tensor([ids])).logits[0] for ids in (first, second)]
    torch.testing.assert_close(packed[:5], alone[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(packed[5:8], alone[1], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("architecture", ["llama", "qwen2", "qwen3", "mistral", "gemma"])
def test_lora_targets_are_the_attention_and_mlp_projections_of_each_family(architecture):
    model = build_model({"architecture": architecture, "config": SMALL}, 300)
    assert lora_targets(model) == (["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"],
                                   False)
    assert lora_targets(model, ["q_proj", "v_proj"]) == (["q_proj", "v_proj"], False)


def test_gpt2_targets_are_conv1d_so_fan_in_fan_out_and_unknown_families_are_named():
    model = build_model({"architecture": "gpt2", "config": {"n_layer": 1, "n_embd": 32, "n_head": 4}}, 300)
    assert lora_targets(model) == (["c_attn", "c_fc", "c_proj"], True)
    with pytest.raises(ValueError, match="model.architecture 'nonsense' is not a transformers model type"):
        build_model({"architecture": "nonsense"}, 300)
