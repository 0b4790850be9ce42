"""Fine-tune step throughput: our runtime, no speed-ups and with each speed-up, against a plain torch + peft loop.

Every contender trains the same causal LM (random weights built from a config, saved once and loaded through
the runtime's own loader, backends/models.py) on the same random token batches, each in its own process, in
the same run. Our side is the DeepSpeed engine the runtime uses (entrypoints/engines.py) with the config the
operator renders for a TrainingJob (builders/deepspeed.py) and the speed-ups of entrypoints/speedups.py.

Model FLOPs per step, stated so MFU can be checked (PaLM's convention, attention counted):
  matmul  = k x N x tokens, N = parameters that take part in a matmul (all but the input embedding table);
            k = 6 for full fine-tuning (forward 2N, input gradients 2N, weight gradients 2N) and 4 for
            LoRA/QLoRA, whose frozen weights get no weight gradient (the adapters' own 6 x N_lora is added);
  attention = 12 x layers x hidden x sum over sequences of length^2 (QK^T and AV, forward and backward, with
            no discount for the causal mask); a packed row counts each packed sequence on its own.
MFU = model FLOPs / step time / the device's dense bf16 peak (data sheet). Tokens/s counts real tokens only,
so padding is not counted as work.

Run: python tests/benchmarks/train_throughput.py [--size toy|1b|gpt2-1b] [--batch 16] [--seq 2048]
     [--steps 8] [--only NAME ...] [--rounds N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

SIZES = {
    "toy": ("llama", {"hidden_size": 64, "intermediate_size": 176, "num_hidden_layers": 2, "num_attention_heads": 4,
                      "num_key_value_heads": 2, "vocab_size": 2048, "max_position_embeddings": 4096}),
    # A TinyLlama-1.1B-shaped config: grouped-query attention, SwiGLU, untied embeddings.
    "1b": ("llama", {"hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 22,
                     "num_attention_heads": 32, "num_key_value_heads": 4, "vocab_size": 32000,
                     "max_position_embeddings": 4096}),
    # The GPT-2-style 1.3B config of the runtime's earlier measurement, for today's figure at equal settings.
    "gpt2-1b": ("gpt2", {"n_layer": 24, "n_head": 16, "n_embd": 2048, "n_positions": 2048, "vocab_size": 50257}),
}
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0}
"""Dense bf16 tensor-core peaks from the vendors' data sheets, by device-name fragment."""


@dataclass(frozen=True)
class Contender:
    name: str
    runtime: str = "llmops"
    """llmops: the runtime's DeepSpeed engine; plain: a hand-written torch loop."""
    method: str = "lora"
    zero: int = 2
    speedups: frozenset[str] = frozenset()
    """training.speedups switches (ligerKernels, fusedOptimizer, compile, activationCheckpointing), and eager:
    attention without SDPA."""
    data: str = "dense"
    """dense: full random rows; padded: rows of varied length padded; packed: the same lengths packed."""
    batch_scale: int = 1


FUSED, LIGER = frozenset({"fusedOptimizer"}), frozenset({"ligerKernels"})
BEST = FUSED | LIGER
BASELINE = "llmops LoRA ZeRO-2, no speed-ups"
"""The runtime before training.speedups: the ratio column is against it."""
CONTENDERS = [
    Contender("plain torch+peft LoRA", runtime="plain"),
    Contender("llmops LoRA ZeRO-2, no speed-ups"),
    Contender("llmops LoRA ZeRO-2 +fused AdamW", speedups=FUSED),
    Contender("llmops LoRA ZeRO-2 +Liger", speedups=LIGER),
    Contender("llmops LoRA ZeRO-2 +fused +Liger", speedups=BEST),
    Contender("plain torch full", runtime="plain", method="full", speedups=FUSED),
    Contender("llmops full ZeRO-2, no speed-ups", method="full"),
    Contender("llmops full ZeRO-2 +fused +Liger", method="full", speedups=BEST),
    Contender("llmops QLoRA ZeRO-2 +fused +Liger", method="qlora", speedups=BEST),
    Contender("llmops LoRA ZeRO-0 +fused +Liger", zero=0, speedups=BEST),
    Contender("llmops LoRA ZeRO-3 +fused +Liger", zero=3, speedups=BEST),
    Contender("llmops LoRA padded rows +fused +Liger", speedups=BEST, data="padded"),
    Contender("llmops LoRA packed rows +fused +Liger", speedups=BEST, data="packed"),
    Contender("llmops LoRA 2x batch +checkpointing +fused +Liger", speedups=BEST | {"activationCheckpointing"},
              batch_scale=2),
    Contender("llmops LoRA ZeRO-2 eager attention", speedups=frozenset({"eager"})),
    Contender("llmops LoRA ZeRO-2 +fused +Liger +compile", speedups=BEST | {"compile"}),
]


@dataclass
class Result:
    name: str
    rates: list[float] = field(default_factory=list)
    """Real tokens/s of each round."""
    flops_per_token: float = 0.0
    peak_gib: float = 0.0
    error: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.rates)

    @property
    def spread(self) -> float:
        """(max - min) / median over the rounds: differences smaller than this are noise."""
        return (max(self.rates) - min(self.rates)) / self.median


def build_checkpoint(size: str, directory: str) -> None:
    """A randomly initialised model of `size`, saved in bf16 (on a GPU) for every contender to load."""
    import torch
    import transformers

    architecture, overrides = SIZES[size]
    torch.manual_seed(0)
    config = transformers.AutoConfig.for_model(architecture, **overrides)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):  # a 1B model's init on the host takes far longer
        model = transformers.AutoModelForCausalLM.from_config(config)
    if device == "cuda":
        model = model.to(torch.bfloat16)
    model.save_pretrained(directory)


def segment_lengths(contender: Contender, batch: int, seq: int, generator) -> list[list[int]]:
    """Lengths of the sequences in each row: one full sequence per row, or varied lengths (1/8 to all of
    seq) padded one per row or packed several per row."""
    import torch

    if contender.data == "dense":
        return [[seq] for _ in range(batch)]
    draw = lambda: int(torch.randint(seq // 8, seq + 1, (1,), generator=generator))  # noqa: E731
    if contender.data == "padded":
        return [[draw()] for _ in range(batch)]
    rows = []
    for _ in range(batch):
        row: list[int] = []
        while sum(row) < seq:
            row.append(min(draw(), seq - sum(row)))
        rows.append(row)
    return rows


def make_batch(lengths: list[list[int]], seq: int, vocab: int, generator) -> dict:
    """input_ids and labels, plus attention_mask for padded rows or position_ids restarting at each packed
    sequence (the runtime's own packing: transformers reads the restarts as boundaries)."""
    import torch

    ids = torch.randint(0, vocab, (len(lengths), seq), generator=generator)
    labels = ids.clone()
    batch = {"input_ids": ids, "labels": labels}
    if all(row == [seq] for row in lengths):
        return batch
    if all(len(row) == 1 for row in lengths):
        mask = torch.zeros_like(ids)
        for i, (length,) in enumerate(lengths):
            mask[i, :length] = 1
        labels[mask == 0] = -100
        return {**batch, "attention_mask": mask}
    batch["position_ids"] = torch.cat([torch.cat([torch.arange(n) for n in row]).unsqueeze(0) for row in lengths])
    return batch


def step_flops(lengths: list[list[int]], matmul_per_token: float, layers: int, hidden: int) -> float:
    tokens = sum(sum(row) for row in lengths)
    return matmul_per_token * tokens + 12 * layers * hidden * sum(n * n for row in lengths for n in row)


def load_model(checkpoint: str, contender: Contender, device: str):
    """The model through the runtime's loader, with the contender's model-side speed-ups."""
    import torch

    from llmops_operator.backends.models import load_for_finetune
    from llmops_operator.entrypoints import speedups

    attention = "eager" if "eager" in contender.speedups else "sdpa"
    model = load_for_finetune(f"file://{checkpoint}", contender.method, {"r": 16, "alpha": 32, "dropout": 0.0},
                              attn_implementation=attention)
    if device == "cuda" and contender.method != "qlora":
        model = model.to(device=device, dtype=torch.bfloat16)
    if "ligerKernels" in contender.speedups and not speedups.apply_liger(model):
        raise RuntimeError("liger-kernel could not be applied")
    speedups.prepare(model, contender.speedups - LIGER)
    return model


def rendered_config(batch: int, precision: str, zero_stage: int, fused: bool) -> dict:
    """The DeepSpeed config the operator renders for a one-worker TrainingJob with these settings."""
    from llmops_operator.api.v1alpha1.trainingjob import TrainingJobSpec
    from llmops_operator.builders.deepspeed import deepspeed_config
    from llmops_operator.entrypoints import speedups

    spec = TrainingJobSpec.model_validate({
        "dataset": {"uri": "file:///unused.jsonl"}, "outputUri": "file:///unused",
        "resources": {"workers": 1},
        "deepspeed": {"zeroStage": zero_stage, "precision": precision},
        "training": {"batchSize": batch, "learningRate": 1e-4, "warmupSteps": 0},
    })
    config = deepspeed_config(spec)
    return speedups.fused_adamw(config) if fused else config


def stepper(model, contender: Contender, batch: int, device: str):
    """One optimizer step of the contender's loop, as a function of a batch."""
    import torch

    precision = "bf16" if device == "cuda" else "fp32"
    if contender.runtime == "plain":
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trainable, lr=1e-4, fused="fusedOptimizer" in contender.speedups or None)
        net = torch.compile(model) if "compile" in contender.speedups else model

        def step(inputs) -> None:
            net(**inputs, use_cache=False).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return step
    from llmops_operator.entrypoints.engines import DeepSpeedEngine

    for key, value in {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29517", "RANK": "0", "LOCAL_RANK": "0",
                       "WORLD_SIZE": "1"}.items():
        os.environ.setdefault(key, value)
    engine = DeepSpeedEngine(model, rendered_config(batch, precision, contender.zero,
                                                    "fusedOptimizer" in contender.speedups),
                             compile_model="compile" in contender.speedups)

    def step(inputs) -> None:
        engine.backward(engine.forward_loss(inputs))
        engine.step()
    return step


def measure_one(contender: Contender, args: argparse.Namespace) -> dict:
    """Real tokens/s and model FLOPs per token of one contender, in this (fresh) process."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and ("ligerKernels" in contender.speedups or contender.method == "qlora"):
        raise RuntimeError("needs a GPU (Liger's kernels are Triton GPU kernels; bitsandbytes 4-bit computes on one)")
    batch = args.batch * contender.batch_scale
    model = load_model(args.checkpoint, contender, device)
    matmul, layers, hidden = flop_terms(model, contender.method)
    step = stepper(model, contender, batch, device)
    generator = torch.Generator().manual_seed(1)
    vocab = model.config.vocab_size
    shapes = [segment_lengths(contender, batch, args.seq, generator) for _ in range(args.warmup + args.steps)]
    data = [{key: value.to(device) for key, value in make_batch(rows, args.seq, vocab, generator).items()}
            for rows in shapes]
    for inputs in data[:args.warmup]:
        step(inputs)
    sync(device)
    start = time.perf_counter()
    for inputs in data[args.warmup:]:
        step(inputs)
    sync(device)
    elapsed = time.perf_counter() - start
    timed = shapes[args.warmup:]
    tokens = sum(sum(sum(row) for row in rows) for rows in timed)
    flops = sum(step_flops(rows, matmul, layers, hidden) for rows in timed)
    peak_gib = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else 0.0
    return {"tokensPerSecond": tokens / elapsed, "flopsPerToken": flops / tokens, "peakGiB": round(peak_gib, 1)}


def sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def flop_terms(model, method: str) -> tuple[float, int, int]:
    """(matmul FLOPs per token, layers, hidden size) per the module docstring's formula."""
    import torch

    from llmops_operator.entrypoints.speedups import base_model

    base = base_model(model)
    embedding = base.get_input_embeddings().weight.numel()
    weights = lambda p: 2 * p.numel() if p.dtype == torch.uint8 else p.numel()  # noqa: E731  QLoRA: 2 per byte
    adapters = sum(p.numel() for name, p in model.named_parameters() if "lora_" in name)
    frozen_or_all = sum(weights(p) for name, p in model.named_parameters() if "lora_" not in name) - embedding
    matmul = (6 if method == "full" else 4) * frozen_or_all + 6 * adapters
    return matmul, base.config.num_hidden_layers, base.config.hidden_size


def peak_flops(override: float | None) -> float | None:
    import torch

    if override:
        return override * 1e12
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    return next((tflops * 1e12 for key, tflops in PEAK_TFLOPS.items() if key in name), None)


def run_child(contender: Contender, args: argparse.Namespace) -> dict:
    """One contender in a fresh process, so none inherits another's patched modules, compiled graphs or
    allocator state; a failure or a timeout is reported, not raised."""
    command = [sys.executable, __file__, *sys.argv[1:], "--checkpoint", args.checkpoint, "--contender", contender.name]
    try:
        child = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"no result within {args.timeout} s"}
    if child.returncode != 0:
        lines = child.stderr.strip().splitlines() or [f"exit {child.returncode}"]
        raised = [line for line in lines if "Error" in line or "Exception" in line]
        return {"error": (raised or lines)[-1][:300]}
    return json.loads(child.stdout.strip().splitlines()[-1])


def report(results: list[Result], args: argparse.Namespace, header: str) -> None:
    peak = peak_flops(args.peak_tflops)
    baseline = next((r for r in results if r.name == "llmops LoRA ZeRO-2, no speed-ups" and r.rates), None)
    print(header)
    print(f"{'contender':<52} {'tokens/s':>10} {'MFU':>7} {'vs no speed-ups':>15} {'spread':>7} {'peak GiB':>9}")
    for r in results:
        if not r.rates:
            print(f"{r.name:<52} failed: {r.error}")
            continue
        mfu = f"{r.median * r.flops_per_token / peak * 100:.1f}%" if peak else "n/a"
        ratio = f"{r.median / baseline.median:.2f}x" if baseline else ""
        print(f"{r.name:<52} {r.median:>10.0f} {mfu:>7} {ratio:>15} {r.spread * 100:>6.0f}% {r.peak_gib:>9.1f}")


def main() -> int:
    import torch

    on_gpu = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="1b" if on_gpu else "toy")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16 if on_gpu else 2)
    parser.add_argument("--seq", type=int, default=2048 if on_gpu else 128)
    parser.add_argument("--rounds", type=int, default=1 if on_gpu else 2,
                        help="processes per contender, alternating; median reported")
    parser.add_argument("--only", nargs="*", help="contenders to run (substrings of their names)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds one contender's process may take")
    parser.add_argument("--json", help="append each contender's result to this file as it comes")
    parser.add_argument("--peak-tflops", type=float, help="device peak for MFU when it is not a known GPU")
    parser.add_argument("--checkpoint", help=argparse.SUPPRESS)
    parser.add_argument("--contender", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.contender:  # a child run: one contender, one line of JSON
        print(json.dumps(measure_one(next(c for c in CONTENDERS if c.name == args.contender), args)))
        return 0
    chosen = [c for c in CONTENDERS if not args.only or any(part in c.name for part in args.only)]
    with tempfile.TemporaryDirectory(prefix="llmops-bench-") as checkpoint:
        args.checkpoint = checkpoint
        build_checkpoint(args.size, checkpoint)
        results = [Result(c.name) for c in chosen]
        for _ in range(args.rounds):
            for contender, result in zip(chosen, results):
                outcome = run_child(contender, args)
                result.error = outcome.get("error", "")
                if "tokensPerSecond" in outcome:
                    result.rates.append(outcome["tokensPerSecond"])
                    result.flops_per_token, result.peak_gib = outcome["flopsPerToken"], outcome["peakGiB"]
                if args.json:
                    with open(args.json, "a") as out:
                        out.write(json.dumps({"contender": contender.name, **outcome}) + "\n")
    device = torch.cuda.get_device_name() if on_gpu else "cpu"
    report(results, args, f"model {args.size}, batch {args.batch} x seq {args.seq}, {device}, "
                          f"{'bf16' if on_gpu else 'fp32'}, {args.steps} timed steps after {args.warmup}, "
                          f"median of {args.rounds}; torch {torch.__version__}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
