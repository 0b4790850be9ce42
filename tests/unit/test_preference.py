"""DPO: preference records checked with the line and field at fault, prompt tokens masked, the loss's sign and
descent, and the spec rules of objective dpo. Real tokenizer (the builtin one) and a real tiny model."""

from __future__ import annotations

import json
import math
import re

import pytest

pytest.importorskip("transformers")
import torch  # noqa: E402

from llmops_operator.api.v1alpha1 import FineTune  # noqa: E402
from llmops_operator.backends.models import build_model, load_tokenizer  # noqa: E402
from llmops_operator.core.contract import InvalidSpec, parse  # noqa: E402
from llmops_operator.entrypoints import chat, preference  # noqa: E402
from llmops_operator.entrypoints.objectives import reference_model  # noqa: E402

SMALL = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2, "head_dim": 8}
PAIR = {"prompt": "What does a FineTune create?", "chosen": "A RayJob that tunes the model.",
        "rejected": "Go away."}


@pytest.fixture(scope="module")
def tokenizer():
    return chat.ensure_chat_template(load_tokenizer("builtin:minilm"))


@pytest.mark.parametrize("record, message", [
    ({"prompt": "q", "chosen": "a"}, "record 3: missing field 'rejected'"),
    ({"prompt": "q", "chosen": "", "rejected": "b"}, "record 3 field 'chosen': expected a non-empty string"),
    ({"prompt": "q", "chosen": "a", "rejected": 7}, "record 3 field 'rejected': expected a non-empty string"),
    ({"prompt": "q", "chosen": "same", "rejected": "same"}, "record 3: fields 'chosen' and 'rejected' are the same"),
    ({"prompt": {"role": "user"}, "chosen": "a", "rejected": "b"}, "record 3 field 'prompt': expected a string"),
    ({"prompt": [{"role": "robot", "content": "x"}], "chosen": "a", "rejected": "b"},
     "record 3 field 'prompt': message 0 needs a role"),
    ({"prompt": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "chosen": "a",
      "rejected": "b"}, "record 3 field 'prompt': the last message is the assistant's"),
    ({"prompt": "q", "chosen": "a" * (preference.MAX_FIELD_CHARS + 1), "rejected": "b"},
     "record 3 field 'chosen': 32769 characters, more than 32768"),
    ({"prompt": [{"role": "user", "content": "q"}] * (preference.MAX_PROMPT_MESSAGES + 1), "chosen": "a",
      "rejected": "b"}, "at most 64 messages"),
    (["q", "a", "b"], "record 3: expected an object"),
])
def test_a_bad_record_is_refused_naming_its_line_and_field(record, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        preference.pair_of(json.loads(json.dumps(record)), 3)


def test_a_string_prompt_is_one_user_turn_and_a_message_list_is_kept(tokenizer):
    messages, chosen, rejected = preference.pair_of(PAIR, 0)
    assert messages == [{"role": "user", "content": PAIR["prompt"]}]
    assert (chosen, rejected) == ("A RayJob that tunes the model.", "Go away.")
    listed = {**PAIR, "prompt": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi?"}]}
    assert preference.pair_of(listed, 0)[0][0] == {"role": "system", "content": "Be kind."}


def test_prompt_tokens_carry_no_label_and_both_sides_share_the_prompt(tokenizer):
    pair = preference.encode_pair(tokenizer, *preference.pair_of(PAIR, 0), max_length=128)
    prompt_text, reply_text = preference.rendered(tokenizer, *preference.pair_of(PAIR, 0)[:2])
    assert prompt_text.endswith("<|assistant|>\n") and reply_text == "A RayJob that tunes the model.\n<|end|>\n"
    prompt_length = len(tokenizer(prompt_text, add_special_tokens=False)["input_ids"])
    for side in ("chosen", "rejected"):
        ids, labels = pair[f"{side}Ids"], pair[f"{side}Labels"]
        assert labels[:prompt_length] == [chat.IGNORE_INDEX] * prompt_length
        assert labels[prompt_length:] == ids[prompt_length:] and len(ids) > prompt_length
    assert pair["chosenIds"][:prompt_length] == pair["rejectedIds"][:prompt_length]
    decoded = tokenizer.decode([t for t, lab in zip(pair["chosenIds"], pair["chosenLabels"]) if lab != -100])
    assert "rayjob" in decoded.lower() and "finetune" not in decoded.lower()


def test_a_long_pair_keeps_the_prompt_end_and_the_reply_start_within_max_length(tokenizer):
    long = {"prompt": "words " * 200 + "final question?", "chosen": "yes " * 100, "rejected": "no"}
    pair = preference.encode_pair(tokenizer, *preference.pair_of(long, 0), max_length=32)
    assert len(pair["chosenIds"]) == 32 and len(pair["rejectedIds"]) <= 32
    labelled = sum(label != -100 for label in pair["chosenLabels"])
    assert labelled == 16  # half of max_length for the reply, the rest for the prompt's end
    assert "question" in tokenizer.decode(pair["chosenIds"][:16])


def test_sequence_log_probs_ignore_the_prompt_positions():
    logits = torch.randn(2, 6, 11)
    labels = torch.tensor([[-100, -100, 3, 4, 5, -100], [-100, -100, -100, 1, 2, 7]])
    changed = logits.clone()
    changed[0, 0:1] += 5.0  # position 0 predicts token 1, which is prompt: no effect
    changed[1, 0:2] -= 3.0
    assert torch.allclose(preference.sequence_logps(logits, labels), preference.sequence_logps(changed, labels))
    changed[0, 1, 3] += 5.0  # position 1 predicts label 3: counted
    before, after = preference.sequence_logps(logits, labels), preference.sequence_logps(changed, labels)
    assert not torch.allclose(before[0], after[0])


def test_the_loss_is_log_two_at_the_reference_and_its_margin_follows_the_preference():
    zero = torch.zeros(3)
    loss, margins = preference.dpo_loss(zero, zero, zero, zero, beta=0.1)
    assert math.isclose(float(loss), math.log(2), rel_tol=1e-6) and margins.tolist() == [0, 0, 0]
    better = torch.tensor([-1.0, -2.0, -3.0])
    worse = torch.tensor([-5.0, -6.0, -7.0])
    ref = torch.tensor([-4.0, -4.0, -4.0])
    loss_right, margins_right = preference.dpo_loss(better, worse, ref, ref, beta=0.5)
    loss_wrong, margins_wrong = preference.dpo_loss(worse, better, ref, ref, beta=0.5)
    assert (margins_right > 0).all() and (margins_wrong < 0).all() and loss_right < math.log(2) < loss_wrong
    assert preference.preference_scores(margins_right.tolist()) == {"preferenceAccuracy": 1.0, "rewardMargin": 2.0}
    ipo, _ = preference.dpo_loss(better, worse, ref, ref, beta=0.5, loss_type="ipo")
    assert math.isclose(float(ipo), (4 - 1) ** 2)  # (margin / beta - 1 / (2 beta))^2 with z = 4
    with pytest.raises(ValueError, match="dpo.lossType 'hinge'"):
        preference.dpo_loss(better, worse, ref, ref, beta=0.5, loss_type="hinge")


def test_steps_on_the_dpo_loss_lower_it_and_the_reference_is_the_base_with_adapters_off(tokenizer):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    base = build_model({"architecture": "llama", "config": SMALL}, tokenizer.vocab_size)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "o_proj"],
                                            init_lora_weights=False))
    batch = preference.collate_pairs(preference.pairs([PAIR, {**PAIR, "prompt": "And a TrainingJob?"}],
                                                      tokenizer, 64), tokenizer.pad_token_id)

    def logps():
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return preference.sequence_logps(out, batch["labels"])

    with torch.no_grad(), reference_model(model):
        ref = logps()
    with torch.no_grad():
        assert not torch.allclose(logps(), ref)  # adapters on: another model
    with torch.no_grad(), reference_model(model):
        assert torch.allclose(logps(), ref)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.01)
    losses = []
    for _ in range(8):
        current = logps()
        loss, margins = preference.dpo_loss(current[:2], current[2:], ref[:2], ref[2:], beta=0.1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0] and (margins > 0).all(), losses


def finetune(**spec) -> dict:
    body = {"dataset": {"uri": "pvc://data/pairs.jsonl"}, "baseModel": {"uri": "pvc://models/base"},
            "output": {"uri": "pvc://models/out"}, "objective": "dpo", **spec}
    return {"apiVersion": "llmops.dev/v1alpha1", "kind": "FineTune", "metadata": {"name": "ft", "namespace": "ml"},
            "spec": body}


@pytest.mark.parametrize("spec, message", [
    ({"dataset": {"uri": "pvc://data/pairs.jsonl", "chat": {}}}, "objective dpo reads prompt/chosen/rejected"),
    ({"dataset": {"uri": "pvc://data/pairs.txt", "format": "text"}}, "objective dpo reads prompt/chosen/rejected"),
    ({"objective": "sft", "dpo": {"beta": 0.2}}, "dpo settings apply to objective dpo only"),
    ({"objective": "sft", "evaluation": {"dataset": {"uri": "pvc://d/e.jsonl"}, "metrics": ["rewardMargin"]}},
     "preferenceAccuracy and rewardMargin need objective dpo"),
    ({"dpo": {"beta": 0}}, "beta"),
    ({"dpo": {"lossType": "hinge"}}, "lossType"),
])
def test_the_spec_refuses_what_dpo_cannot_run(spec, message):
    with pytest.raises(InvalidSpec, match=message):
        parse(FineTune, finetune(**spec))


def test_a_dpo_run_config_carries_the_objective_and_its_defaults():
    from llmops_operator.builders.runconfig import finetune_run_config

    config = finetune_run_config(parse(FineTune, finetune()), "file:///base")
    assert config["objective"] == "dpo" and config["dpo"] == {"beta": 0.1, "lossType": "sigmoid"}
    sft = finetune_run_config(parse(FineTune, finetune(objective="sft")), "file:///base")
    assert sft["objective"] == "sft" and sft["dpo"] is None
