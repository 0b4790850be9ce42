"""DPO steps: our loss (entrypoints/preference.py) against TRL's DPOTrainer, on the same model and pairs.

Both train the same LoRA-wrapped Llama-architecture model (the tiny-llama example's config, random weights,
the builtin tokenizer and the default chat template) on the shipped preference pairs, with the same batch,
learning rate, beta and number of steps, each in its own process. Reported: seconds per optimizer step after
the first (warm-up) one, the first and last step's loss, and the import time of the trainer's package.

Ours computes the reference log-probabilities once (adapters off) before the first step, as the runtime
does; TRL, given a peft model and no reference model, runs the reference forward (adapters off) on every step
unless told to precompute, so it is measured both ways.

TRL is optional: without it (`pip install trl`), only our side runs.

Run: python tests/benchmarks/dpo_steps.py [--steps 20] [--batch 4]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAIRS = ROOT / "manifests/examples/data/preference/tiny-preference.jsonl"
MODEL = {"architecture": "llama", "config": {"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 128,
                                             "num_attention_heads": 4, "num_key_value_heads": 2,
                                             "max_position_embeddings": 256}}
LR, BETA, SEQ = 0.01, 0.1, 64


def _model_and_tokenizer():
    import torch
    from peft import LoraConfig, get_peft_model

    from llmops_operator.backends.models import build_model, load_tokenizer, lora_targets
    from llmops_operator.entrypoints.chat import ensure_chat_template

    torch.manual_seed(0)
    tokenizer = ensure_chat_template(load_tokenizer("builtin:minilm"))
    base = build_model(MODEL, tokenizer.vocab_size)
    targets, _ = lora_targets(base)
    return get_peft_model(base, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=targets)), tokenizer


def ours(steps: int, batch: int, queue) -> None:
    started = time.perf_counter()
    import torch

    from llmops_operator.entrypoints import preference
    from llmops_operator.entrypoints.objectives import reference_model
    imported = time.perf_counter() - started
    model, tokenizer = _model_and_tokenizer()
    records = [json.loads(line) for line in PAIRS.read_text().splitlines()]
    pairs = preference.pairs(records, tokenizer, SEQ)
    batches = [preference.collate_pairs(pairs[i:i + batch], tokenizer.pad_token_id)
               for i in range(0, len(pairs) - batch + 1, batch)]

    def logps(b):
        return preference.sequence_logps(model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits,
                                         b["labels"])

    begin = time.perf_counter()
    with torch.no_grad(), reference_model(model):
        reference = [logps(b) for b in batches]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LR)
    losses, times = [], []
    for step in range(steps):
        t = time.perf_counter()
        b, ref = batches[step % len(batches)], reference[step % len(batches)]
        current, n = logps(b), len(ref) // 2
        loss, _ = preference.dpo_loss(current[:n], current[n:], ref[:n], ref[n:], BETA)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        times.append(time.perf_counter() - t)
    queue.put({"name": "ours", "import_s": imported, "total_s": time.perf_counter() - begin,
               "step_s": sum(times[1:]) / max(len(times) - 1, 1), "first_loss": losses[0], "last_loss": losses[-1]})


def trl_side(steps: int, batch: int, precompute: bool, queue) -> None:
    started = time.perf_counter()
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import DPOConfig, DPOTrainer
    imported = time.perf_counter() - started
    model, tokenizer = _model_and_tokenizer()
    rows = [json.loads(line) for line in PAIRS.read_text().splitlines()]
    conversational = [{"prompt": r["prompt"] if isinstance(r["prompt"], list)
                       else [{"role": "user", "content": r["prompt"]}],
                       "chosen": [{"role": "assistant", "content": r["chosen"]}],
                       "rejected": [{"role": "assistant", "content": r["rejected"]}]} for r in rows]
    times: list[float] = []

    class StepClock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            times.append(time.perf_counter())

        def on_step_end(self, args, state, control, **kwargs):
            times[-1] = time.perf_counter() - times[-1]

    args = DPOConfig(output_dir="/tmp/llmops-dpo-bench", use_cpu=True, bf16=False, per_device_train_batch_size=batch,
                     learning_rate=LR, beta=BETA, max_steps=steps, max_length=SEQ, logging_steps=1, report_to=[],
                     save_strategy="no", lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
                     precompute_ref_log_probs=precompute, dataloader_num_workers=0, seed=0)
    trainer = DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(conversational),
                         processing_class=tokenizer, callbacks=[StepClock()])
    begin = time.perf_counter()
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    queue.put({"name": f"trl{' precomputed' if precompute else ''}", "import_s": imported,
               "total_s": time.perf_counter() - begin, "step_s": sum(times[1:]) / max(len(times) - 1, 1),
               "first_loss": losses[0], "last_loss": losses[-1]})


def run(target, *args) -> dict:
    queue = multiprocessing.get_context("spawn").Queue()
    process = multiprocessing.get_context("spawn").Process(target=target, args=(*args, queue))
    process.start()
    result = queue.get(timeout=900)
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=4)
    options = parser.parse_args()
    results = [run(ours, options.steps, options.batch)]
    try:
        import trl  # noqa: F401
    except ImportError:
        print("trl is not installed: only our side ran")
    else:
        results += [run(trl_side, options.steps, options.batch, precompute) for precompute in (False, True)]
    print(f"| trainer | import s | total s | s/step | first loss | last loss |\n|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['name']} | {r['import_s']:.2f} | {r['total_s']:.2f} | {r['step_s']:.4f} | "
              f"{r['first_loss']:.4f} | {r['last_loss']:.4f} |")


if __name__ == "__main__":
    main()
