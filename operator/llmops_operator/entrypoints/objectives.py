"""What a training step optimises: next-token loss (pretraining, SFT) or the DPO preference loss.

The training loop (entrypoints/train.py) is the same for both; an objective turns the run's records into
training items, prepares what its loss needs before the first step, and computes the loss of a batch.

DPO's reference model is the model before training. Its sequence log-probabilities are computed once, before the
first step, through the same engine: for lora and qlora with the adapters switched off (the frozen base, with no
second copy in memory), for full fine-tuning from the untouched weights. They are kept in every checkpoint, so a
resumed or retried run, whose weights have moved, scores against the same reference.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

from llmops_operator.entrypoints import data


class NextTokenObjective:
    """Mean cross-entropy of the labelled tokens of packed blocks."""

    def prepare(self, engine: Any, train: list[Any], held: list[Any], state: dict[str, Any], rank: int,
                world: int) -> None:
        """Nothing to prepare."""

    def loss(self, engine: Any, items: list[Any], train: bool = True) -> tuple[Any, int]:
        inputs = data.collate(items)
        return engine.forward_loss(inputs, train=train), inputs["input_ids"].numel()

    def state(self) -> dict[str, Any]:
        return {}


class DpoObjective:
    """The DPO loss over prompt/chosen/rejected pairs against the reference log-probabilities."""

    def __init__(self, dpo: dict[str, Any] | None, pad: int, batch: int):
        dpo = dpo or {}
        self.beta, self.loss_type = dpo.get("beta", 0.1), dpo.get("lossType", "sigmoid")
        self.pad, self.batch = pad, batch
        self.reference: dict[str, Any] = {}

    def prepare(self, engine: Any, train: list[Any], held: list[Any], state: dict[str, Any], rank: int,
                world: int) -> None:
        """Attach each pair's reference log-probabilities: from the resumed checkpoint, else computed now."""
        saved = state.get("referenceLogps")
        if saved and len(saved["train"]) == world and len(saved["train"][rank]) == len(train):
            mine, held_logps = saved["train"][rank], saved["held"]
        elif saved:
            raise ValueError(f"the checkpoint's DPO reference was taken with {len(saved['train'])} workers and "
                             f"another split of the data; resume with the same resources.workers and dataset")
        else:
            mine, held_logps = self._reference_logps(engine, train), self._reference_logps(engine, held)
        for pair, (chosen, rejected) in [*zip(train, mine), *zip(held, held_logps)]:
            pair["refChosen"], pair["refRejected"] = chosen, rejected
        self.reference = {"train": _gathered(mine, world), "held": held_logps}

    def _reference_logps(self, engine: Any, pairs: list[dict[str, Any]]) -> list[list[float]]:
        import torch

        from llmops_operator.entrypoints.preference import collate_pairs, sequence_logps

        out: list[list[float]] = []
        with torch.no_grad(), reference_model(engine.module):
            for start in range(0, len(pairs), self.batch):
                chunk = pairs[start:start + self.batch]
                batch = collate_pairs(chunk, self.pad)
                logps = sequence_logps(engine.forward_logits(batch, train=False), batch["labels"].to(engine.device))
                out += [[float(c), float(r)] for c, r in zip(logps[:len(chunk)], logps[len(chunk):])]
        return out

    def margins(self, engine: Any, items: list[dict[str, Any]], train: bool) -> tuple[Any, Any, int]:
        """(loss, per-pair reward margins, tokens) of a batch of pairs carrying their reference log-probs."""
        import torch

        from llmops_operator.entrypoints.preference import collate_pairs, dpo_loss, sequence_logps

        batch = collate_pairs(items, self.pad)
        logps = sequence_logps(engine.forward_logits(batch, train=train), batch["labels"].to(engine.device))
        ref = torch.tensor([[p["refChosen"], p["refRejected"]] for p in items], device=logps.device)
        n = len(items)
        loss, margins = dpo_loss(logps[:n], logps[n:], ref[:, 0], ref[:, 1], self.beta, self.loss_type)
        return loss, margins, batch["input_ids"].numel()

    def loss(self, engine: Any, items: list[dict[str, Any]], train: bool = True) -> tuple[Any, int]:
        loss, _, tokens = self.margins(engine, items, train)
        return loss, tokens

    def state(self) -> dict[str, Any]:
        return {"referenceLogps": self.reference}


def _gathered(mine: list[list[float]], world: int) -> list[list[list[float]]]:
    """Every worker's reference log-probs, by rank (rank 0 writes the checkpoint state for all)."""
    import torch.distributed as dist

    if world == 1 or not (dist.is_available() and dist.is_initialized()):
        return [mine]
    everyone: list[Any] = [None] * world
    dist.all_gather_object(everyone, mine)
    return everyone


@contextlib.contextmanager
def reference_model(module: Any):
    """The model as it was before training: adapters switched off for lora/qlora, the weights as they are otherwise
    (the reference is computed before the first step)."""
    disable = getattr(module, "disable_adapter", None)
    with (disable() if disable is not None else contextlib.nullcontext()):
        yield


def objective_for(config: dict[str, Any], tokenizer: Any) -> NextTokenObjective | DpoObjective:
    if config.get("objective") == "dpo":
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
        return DpoObjective(config.get("dpo"), pad, config["training"].get("batchSize", 8))
    return NextTokenObjective()


def mean_loss(objective: Any, engine: Any, items: list[Any], batch: int) -> float:
    """Mean loss over held-out items, without gradients."""
    import torch

    losses = []
    with torch.no_grad():
        for i in range(0, len(items), batch):
            losses.append(float(objective.loss(engine, items[i:i + batch], train=False)[0]))
    return round(sum(losses) / len(losses), 4) if losses else math.nan
