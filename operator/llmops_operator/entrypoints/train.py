"""The RayJob entrypoint of TrainingJob and FineTune: Ray Train TorchTrainer + DeepSpeed (or DDP).

`python -m llmops_operator.entrypoints.train` reads the run config from LLMOPS_RUN_CONFIG (written by
builders/runconfig.py), trains on `workers` Ray Train workers, checkpoints every N optimizer steps
with DeepSpeed's engine checkpoints (so a restarted job resumes with its optimizer state), and
saves the final model (or adapter) in save_pretrained layout. Progress is printed as one JSON line
per report, prefixed with PROGRESS_PREFIX.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from llmops_operator.builders.runconfig import RUN_CONFIG_ENV
from llmops_operator.entrypoints import data
from llmops_operator.entrypoints.objectives import mean_loss, objective_for
from llmops_operator.entrypoints.report import Reporter
from llmops_operator.core.uris import local_path

PROGRESS_PREFIX = "LLMOPS_PROGRESS "
RESULT_PREFIX = "LLMOPS_RESULT "
EVALUATION_PREFIX = "LLMOPS_EVALUATION "
PARTIAL_PREFIX = ".partial-"
"""A checkpoint being written; renamed to step-N when complete, so resume never sees half of one."""


def plan_steps(blocks_per_worker: int, training: dict[str, Any]) -> tuple[int, int]:
    """(optimizer steps per epoch, total optimizer steps) for this worker's share of blocks."""
    micro_batches = blocks_per_worker // training.get("batchSize", 8)
    per_epoch = micro_batches // training.get("gradientAccumulationSteps", 1)
    if per_epoch == 0:
        raise ValueError(f"the dataset is too small: {blocks_per_worker} blocks per worker make no full optimizer "
                         "step; lower training.batchSize or seqLength, or add data")
    total = per_epoch * training.get("epochs", 1)
    return per_epoch, min(total, training["maxSteps"]) if training.get("maxSteps") else total


def checkpoint_tags(directory: Path) -> list[int]:
    return sorted(int(p.name.removeprefix("step-")) for p in directory.glob("step-*") if p.name[5:].isdigit())


def resume_tag(checkpoint: dict[str, Any] | None) -> int | None:
    """The step to resume from, per checkpoint.resumeFrom (latest / none / a step), if such a checkpoint exists."""
    if not checkpoint or checkpoint.get("resumeFrom", "latest") == "none":
        return None
    tags = checkpoint_tags(local_path(checkpoint["uri"]))
    wanted = checkpoint.get("resumeFrom", "latest")
    if wanted == "latest":
        return tags[-1] if tags else None
    if int(wanted) not in tags:
        raise FileNotFoundError(f"checkpoint.resumeFrom {wanted}: no such checkpoint under {checkpoint['uri']}")
    return int(wanted)


def _tokenizer_and_model(config: dict[str, Any]) -> tuple[Any, Any]:
    from llmops_operator.backends.models import build_model, load_for_finetune, load_tokenizer

    if config["task"] == "finetune":
        base = local_path(config["baseModelUri"])
        tokenizer = load_tokenizer(str(base) if (base / "tokenizer_config.json").exists() else "builtin:minilm")
        model = load_for_finetune(config["baseModelUri"], config["method"], config.get("lora"))
    else:
        tokenizer = load_tokenizer(config["model"].get("tokenizer", "builtin:minilm"))
        model = build_model(config["model"], tokenizer.vocab_size)
    if config["dataset"].get("chat"):
        from llmops_operator.entrypoints.chat import ensure_chat_template

        ensure_chat_template(tokenizer)
    return tokenizer, model


def _blocks(config: dict[str, Any], tokenizer: Any) -> tuple[list[Any], list[Any]]:
    """Training and held-out items: packed token blocks of texts or of whole chat conversations, or preference
    pairs (objective dpo), each at most training.seqLength tokens."""
    dataset, seq = config["dataset"], config["training"].get("seqLength", 128)
    records = data.read_records(dataset)
    if config.get("objective") == "dpo":
        from llmops_operator.entrypoints.preference import pairs

        train, held = data.split(pairs(records, tokenizer, seq), dataset.get("validationFraction", 0.05))
        return train, held
    if dataset.get("chat"):
        from llmops_operator.entrypoints.chat import examples

        chat = dataset["chat"]
        train, held = data.split(records, dataset.get("validationFraction", 0.05))
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        pack = lambda items: data.pack_examples(examples(items, tokenizer, chat, seq), seq, pad,  # noqa: E731
                                                chat.get("packing", True))
        return pack(train), pack(held)
    train_texts, val_texts = data.split(data.texts(records, dataset.get("textField", "text")),
                                        dataset.get("validationFraction", 0.05))
    encode = lambda items: [tokenizer(t, add_special_tokens=False)["input_ids"] for t in items]  # noqa: E731
    separator = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    return data.pack(encode(train_texts), seq, separator), data.pack(encode(val_texts), seq, separator)


def train_loop(config: dict[str, Any]) -> None:
    """Runs on every Ray Train worker."""
    import ray.train
    import torch

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    training = config["training"]
    torch.manual_seed(training.get("seed", 0))
    tokenizer, model = _tokenizer_and_model(config)
    objective = objective_for(config, tokenizer)
    train_blocks, val_blocks = _blocks(config, tokenizer)
    mine = data.shard(train_blocks, rank, world)
    per_epoch, total = plan_steps(len(mine), training)
    engine, applied = _engine(config, model)
    checkpoint = config.get("checkpoint")
    reporter = Reporter(config.get("progress") if rank == 0 else None)
    reporter.update("progress", {"speedups": applied})
    step, resumed = _resume(engine, checkpoint, reporter)
    objective.prepare(engine, mine, val_blocks, resumed, rank, world)
    batch, accumulation = training.get("batchSize", 8), training.get("gradientAccumulationSteps", 1)
    started, tokens = time.monotonic(), 0
    first_loss, curve = resumed.get("firstLoss"), [p for p in resumed.get("lossCurve", []) if p["step"] <= step]
    while step < total:
        offset = (step % per_epoch) * accumulation * batch
        loss_sum = 0.0
        for micro in range(accumulation):
            loss, micro_tokens = objective.loss(engine, mine[offset + micro * batch: offset + (micro + 1) * batch])
            engine.backward(loss)
            engine.step()
            loss_sum += float(loss.detach())
            tokens += micro_tokens * world
        step += 1
        loss_value = loss_sum / accumulation
        first_loss = loss_value if first_loss is None else first_loss
        curve = loss_curve(curve, step, round(loss_value, 4))
        metrics = {**_progress(step, total, per_epoch, loss_value, first_loss, tokens, started), "lossCurve": curve}
        if training.get("evalEverySteps") and step % training["evalEverySteps"] == 0 and val_blocks:
            metrics["evalLoss"] = mean_loss(objective, engine, val_blocks, batch)
        if checkpoint and (step % checkpoint.get("everySteps", 100) == 0 or step == total):
            state = {"step": step, "firstLoss": first_loss, "lossCurve": curve, **objective.state()}
            _save_checkpoint(engine, checkpoint, state, rank)
            reporter.update("checkpoint", {"uri": checkpoint["uri"], "step": step})
        ray.train.report(metrics)
        reporter.update("progress", metrics)
        if rank == 0:
            print(PROGRESS_PREFIX + json.dumps(metrics), flush=True)
    final = {"step": step, "evalLoss": mean_loss(objective, engine, val_blocks, batch) if val_blocks else None}
    if rank == 0:
        output = _output_dir(config)
        engine.save_pretrained(output, tokenizer, merge=bool((config.get("output") or {}).get("mergeAdapter")))
        final["outputUri"] = str(output)
    if final["evalLoss"] is not None:
        reporter.update("progress", {"evalLoss": final["evalLoss"]})
    reporter.flush()
    ray.train.report(final)


def _progress(step: int, total: int, per_epoch: int, loss: float, first: float, tokens: int,
              started: float) -> dict[str, Any]:
    elapsed = max(time.monotonic() - started, 1e-6)
    return {"step": step, "totalSteps": total, "epoch": round(step / per_epoch, 3), "loss": round(loss, 4),
            "firstLoss": round(first, 4), "tokensPerSecond": round(tokens / elapsed, 1),
            "etaSeconds": int(elapsed / step * (total - step))}


def _output_dir(config: dict[str, Any]) -> Path:
    uri = config["outputUri"] if config["task"] == "pretrain" else config["output"]["uri"]
    return local_path(uri)


def loss_curve(curve: list[dict[str, Any]], step: int, loss: float, points: int = 64) -> list[dict[str, Any]]:
    """The curve with {step, loss} appended; past `points`, every other point is dropped (the newest kept), so a
    long run keeps an even outline from its first step. A resumed run continues the curve its checkpoint holds."""
    curve = [*curve, {"step": step, "loss": loss}]
    return curve[:-1:2] + [curve[-1]] if len(curve) > points else curve


def _save_checkpoint(engine: Any, checkpoint: dict[str, Any], state: dict[str, Any], rank: int) -> None:
    """Write under a partial name, then rename once every rank is done: a worker killed mid-write (a
    preemption) leaves no step-N that a retry would try, and fail, to resume from."""
    import torch.distributed as dist

    directory, tag = local_path(checkpoint["uri"]), f"step-{state['step']}"
    partial = directory / f"{PARTIAL_PREFIX}{tag}"
    if rank == 0:
        shutil.rmtree(partial, ignore_errors=True)
    engine.save_checkpoint(directory, partial.name, state)
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
    if rank == 0:
        shutil.rmtree(directory / tag, ignore_errors=True)
        os.replace(partial, directory / tag)
        if (directory / "latest").exists():  # DeepSpeed's pointer for its own tools (zero_to_fp32.py)
            (directory / "latest").write_text(tag)
        for old in checkpoint_tags(directory)[: -checkpoint.get("keep", 3)]:
            shutil.rmtree(directory / f"step-{old}", ignore_errors=True)


def _resume(engine: Any, checkpoint: dict[str, Any] | None, reporter: Reporter) -> tuple[int, dict[str, Any]]:
    """(step to continue from, the checkpoint's saved state: firstLoss and lossCurve)."""
    tag = resume_tag(checkpoint)
    if tag is None:
        return 0, {}
    state = engine.load_checkpoint(local_path(checkpoint["uri"]), f"step-{tag}")
    print(PROGRESS_PREFIX + json.dumps({"resumedFromStep": tag}), flush=True)
    reporter.update("checkpoint", {"uri": checkpoint["uri"], "step": tag, "resumedFromStep": tag}, force=True)
    return int(state.get("step", tag)), state


def _engine(config: dict[str, Any], model: Any) -> tuple[Any, list[str]]:
    """The training engine over `model`, with the speed-ups training.speedups asks for that this worker's device
    runs, and the names of those in effect."""
    import torch

    from llmops_operator.entrypoints import speedups
    from llmops_operator.entrypoints.engines import DdpEngine, DeepSpeedEngine

    chosen = speedups.chosen(config["training"], torch.cuda.is_available())
    applied = speedups.prepare(model, chosen)
    compile_model, fused = "compile" in chosen, "fusedOptimizer" in chosen
    if config.get("deepspeed"):
        deepspeed = speedups.fused_adamw(config["deepspeed"]) if fused else config["deepspeed"]
        return DeepSpeedEngine(model, deepspeed, compile_model=compile_model), applied
    return DdpEngine(model, config["training"], fused=fused, compile_model=compile_model), applied


def retry_delay(failures: int, retries: dict[str, Any] | None) -> float | None:
    """Seconds to wait before retrying after the `failures`-th failed attempt, or None when no retry is left:
    backoff, doubled per further failure, capped at maxBackoff."""
    if not retries or failures > retries.get("limit", 0):
        return None
    return min(retries["backoffSeconds"] * 2 ** (failures - 1), retries["maxBackoffSeconds"])


def fit(config: dict[str, Any], sleep: Any = time.sleep) -> dict[str, Any]:
    """Run the training on a Ray cluster (the one this job was submitted to, or a local one).

    A failed attempt (a worker lost to preemption or a crash) is retried per spec.retries: each new attempt
    starts fresh workers, which resume from the newest checkpoint under checkpoint.uri."""
    from ray.train import TrainingFailedError

    failures = 0
    while True:
        try:
            return _fit_once(config)
        except TrainingFailedError as err:
            failures += 1
            delay = retry_delay(failures, config.get("retries"))
            if delay is None:
                raise
            print(f"llmops: training attempt {failures} failed ({type(err).__name__}: {err}); retrying from the "
                  f"newest checkpoint in {delay:g}s", file=sys.stderr, flush=True)
            sleep(delay)


def _fit_once(config: dict[str, Any]) -> dict[str, Any]:
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    gpus = config.get("gpusPerWorker", 0)
    storage = Path(os.environ.get("LLMOPS_RAY_STORAGE", "/tmp/llmops-ray-train")).resolve()
    trainer = TorchTrainer(
        train_loop, train_loop_config=config,
        scaling_config=ScalingConfig(num_workers=config["workers"], use_gpu=gpus > 0,
                                     resources_per_worker={"CPU": 1, **({"GPU": gpus} if gpus else {})}),
        torch_config=TorchConfig(backend="nccl" if gpus else "gloo"),
        run_config=RunConfig(name=f"{config['owner']['namespace']}-{config['owner']['name']}",
                             storage_path=str(storage)),
    )
    result = trainer.fit()
    if result.error:
        raise result.error
    return dict(result.metrics or {})


def main() -> int:
    try:
        config = json.loads(os.environ[RUN_CONFIG_ENV])
    except KeyError:
        print(f"{RUN_CONFIG_ENV} is not set: this entrypoint runs inside a RayJob built by llmops-operator",
              file=sys.stderr)
        return 2
    metrics = fit(config)
    print(RESULT_PREFIX + json.dumps(metrics), flush=True)
    if config.get("task") == "finetune" and config.get("evaluation"):
        return report_evaluation(config)
    return 0


def report_evaluation(config: dict[str, Any]) -> int:
    """Evaluate the saved output in the driver and report its metrics; the operator decides the gate from them."""
    from llmops_operator.entrypoints.evaluate import evaluate

    result = evaluate(config)
    reporter = Reporter(config.get("progress")).carry_on()  # keep the workers' progress and checkpoint blocks
    reporter.update("evaluation", result, force=True)
    print(EVALUATION_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
