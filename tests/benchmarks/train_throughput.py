"""Fine-tune step throughput: our runtime's DeepSpeed engine against a plain torch + peft loop.

Both contenders train the same LoRA-wrapped causal LM (random weights, built from a config) on the same
random token batches, each in its own process, measured in the same run: tokens/s and model FLOPs
utilisation (MFU against the device's dense peak). Our side uses the DeepSpeed config the operator renders
for a TrainingJob (builders/deepspeed.py) with the ZeRO stage asked for. The ratio ours/plain is the
runtime's overhead (or gain) per step. `--size 1b` is a ~1.2B-parameter GPT-2-style config for a GPU;
the default on CPU is a toy size.

FLOPs per token are 4 x parameters: a LoRA step runs the forward pass (2N) and the input-gradient half of
the backward pass (2N); frozen weights get no weight gradient, so the usual 6N would overstate MFU by half.
Attention's own FLOPs are left out, as is customary.

Run: python tests/benchmarks/train_throughput.py [--size toy|1b] [--zero-stage 0-3] [--steps 20]
     [--batch 4] [--seq 512]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass

SIZES = {
    "toy": {"n_layer": 2, "n_head": 4, "n_embd": 128, "n_positions": 512, "vocab_size": 8192,
            "bos_token_id": 0, "eos_token_id": 0},
    "1b": {"n_layer": 24, "n_head": 16, "n_embd": 2048, "n_positions": 2048, "vocab_size": 50257},
}
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0}
"""Dense bf16 tensor-core peaks from the vendors' data sheets, by device-name fragment."""


@dataclass
class Result:
    name: str
    rates: list[float]
    """Tokens/s of each round."""

    @property
    def median(self) -> float:
        return statistics.median(self.rates)

    @property
    def spread(self) -> float:
        """(max - min) / median over the rounds: differences smaller than this are noise."""
        return (max(self.rates) - min(self.rates)) / self.median


def model(size: str, precision: str, device: str):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    with torch.device(device):  # initialise on the device: a 1B model's init on the host takes far longer
        base = GPT2LMHeadModel(GPT2Config(**SIZES[size]))
    if precision == "bf16":
        base = base.to(torch.bfloat16)
    config = LoraConfig(r=16, lora_alpha=32, target_modules=["c_attn", "c_proj"], fan_in_fan_out=True,
                        task_type="CAUSAL_LM")
    return get_peft_model(base, config)


def batches(size: str, batch: int, seq: int, steps: int, device: str):
    import torch

    generator = torch.Generator().manual_seed(1)
    return [torch.randint(0, SIZES[size]["vocab_size"], (batch, seq), generator=generator).to(device)
            for _ in range(steps)]


def plain_loop(size: str, data: list, device: str, precision: str, warmup: int, zero_stage: int) -> float:
    import torch

    net = model(size, precision, device)
    optimizer = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-4)
    net.train()

    def step(ids) -> None:
        loss = net(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return timed(step, data, warmup, device)


def rendered_config(batch: int, precision: str, zero_stage: int) -> dict:
    """The DeepSpeed config the operator renders for a one-worker TrainingJob with these settings."""
    from llmops_operator.api.v1alpha1.trainingjob import TrainingJobSpec
    from llmops_operator.builders.deepspeed import deepspeed_config

    spec = TrainingJobSpec.model_validate({
        "dataset": {"uri": "file:///unused.jsonl"}, "outputUri": "file:///unused",
        "resources": {"workers": 1},
        "deepspeed": {"zeroStage": zero_stage, "precision": precision},
        "training": {"batchSize": batch, "learningRate": 1e-4, "warmupSteps": 0},
    })
    return deepspeed_config(spec)


def our_runtime(size: str, data: list, device: str, precision: str, warmup: int, zero_stage: int) -> float:
    """The engine runtime/train.py uses, with the DeepSpeed config the operator renders."""
    from llmops_operator.entrypoints.engines import DeepSpeedEngine

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29517")
    os.environ.setdefault("RANK", "0")
    os.environ.setdefault("LOCAL_RANK", "0")
    os.environ.setdefault("WORLD_SIZE", "1")
    config = rendered_config(data[0].shape[0], precision, zero_stage)
    engine = DeepSpeedEngine(model(size, precision, device), config)

    def step(ids) -> None:
        loss = engine.forward_loss({"input_ids": ids, "labels": ids})
        engine.backward(loss)
        engine.step()

    return timed(step, data, warmup, device)


def timed(step, data: list, warmup: int, device: str) -> float:
    import torch

    for ids in data[:warmup]:
        step(ids)
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for ids in data[warmup:]:
        step(ids)
    if device == "cuda":
        torch.cuda.synchronize()
    tokens = sum(ids.numel() for ids in data[warmup:])
    return tokens / (time.perf_counter() - start)


def peak_flops(device: str, override: float | None) -> float | None:
    if override:
        return override * 1e12
    if device != "cuda":
        return None
    import torch

    name = torch.cuda.get_device_name()
    return next((tflops * 1e12 for key, tflops in PEAK_TFLOPS.items() if key in name), None)


def parameter_count(size: str) -> int:
    from transformers import GPT2Config, GPT2LMHeadModel

    with __import__("torch").device("meta"):
        return sum(p.numel() for p in GPT2LMHeadModel(GPT2Config(**SIZES[size])).parameters())


CONTENDERS = {"plain torch+peft": plain_loop, "llmops runtime": our_runtime}


def measure_one(name: str, args: argparse.Namespace) -> float:
    """Tokens/s of one contender, in this (fresh) process."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    precision = "bf16" if device == "cuda" else "fp32"
    data = batches(args.size, args.batch, args.seq, args.steps + args.warmup, device)
    return CONTENDERS[name](args.size, data, device, precision, args.warmup, args.zero_stage)


def main() -> int:
    import json
    import subprocess
    import sys

    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="1b" if torch.cuda.is_available() else "toy")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--zero-stage", type=int, choices=[0, 1, 2, 3], default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3, help="processes per contender, alternating; median reported")
    parser.add_argument("--peak-tflops", type=float, help="device peak for MFU when it is not a known GPU")
    parser.add_argument("--contender", choices=sorted(CONTENDERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.contender:  # a child run: one contender, one number
        print(json.dumps({"tokensPerSecond": measure_one(args.contender, args)}))
        return 0
    device = "cuda" if torch.cuda.is_available() else "cpu"
    flops_per_token = 4 * parameter_count(args.size)
    peak = peak_flops(device, args.peak_tflops)
    results = {name: Result(name, []) for name in CONTENDERS}
    # Each round runs every contender in its own process, so none inherits another's warm caches or allocator
    # state, and alternating them spreads slow phases of a shared machine over both.
    for _ in range(args.rounds):
        for name in CONTENDERS:
            child = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--contender", name],
                                   capture_output=True, text=True, check=True)
            results[name].rates.append(json.loads(child.stdout.strip().splitlines()[-1])["tokensPerSecond"])
    print(f"model {args.size} ({parameter_count(args.size) / 1e6:.0f}M params), batch {args.batch} x seq {args.seq}, "
          f"ZeRO-{args.zero_stage}, "
          f"{device} {torch.cuda.get_device_name() if device == 'cuda' else ''} "
          f"{'bf16' if device == 'cuda' else 'fp32'}")
    for r in results.values():
        mfu = f"{r.median * flops_per_token / peak * 100:.1f}%" if peak else "n/a (pass --peak-tflops)"
        print(f"{r.name:<18} {r.median:>10.0f} tokens/s (median of {len(r.rates)}, spread {r.spread * 100:.0f}%)"
              f"   MFU {mfu}")
    ours, plain = results["llmops runtime"].median, results["plain torch+peft"].median
    print(f"ratio llmops/plain: {ours / plain:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
