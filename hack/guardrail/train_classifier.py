"""Train the guardrail's learned stage on the corpus's train split and export it to ONNX with its card.

    python hack/guardrail/train_classifier.py [--seed 7] [--epochs 200] [--cross-validate 5]

Needs torch (the `train` extra) and `onnx` for the export; the runtime needs only onnxruntime.

Reads `operator/llmops_operator/guardrails/corpus/{injection,jailbreak,toxicity}.jsonl` (split `train` only),
turns each text into the input the runtime computes (`Guardrail.learned_input`: the rules' classifier signals
and the hashed n-grams of the normalised text and its deobfuscated views), trains a one-hidden-layer network
with a sigmoid per family in torch (CPU, fixed seed, deterministic), exports `guardrails/model/guardrail-classifier.onnx`, and writes the card
`guardrail-classifier.json` with the settings and the model's own metrics on the validation split. The
held-out split is never read here.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "operator"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from llmops_operator.guardrails import learned  # noqa: E402
from llmops_operator.guardrails.engine import Guardrail  # noqa: E402

CORPUS = ROOT / "operator/llmops_operator/guardrails/corpus"
CORPUS_FAMILIES = {"injection": 0, "jailbreak": 1, "toxicity": 2}
HIDDEN = 24
RULES = {"format": "llmops.dev/guardrail-policy/v1", "mode": "enforce", "checks": [
    {"name": name, "type": type_, "scope": "both"} for name, type_ in
    (("injection", "promptInjection"), ("jailbreak", "jailbreak"), ("toxicity", "toxicity"))]}
"""A policy with every classifier check, run without the learned stage: it computes the training input."""


def load(split: str) -> list[dict]:
    cases = []
    for name in CORPUS_FAMILIES:
        for line in (CORPUS / f"{name}.jsonl").read_text().splitlines():
            case = json.loads(line)
            if case["split"] == split:
                cases.append(case)
    return cases


def matrix(cases: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    rules = Guardrail.from_document(RULES, learned=False)
    rows, targets = [], np.zeros((len(cases), len(CORPUS_FAMILIES)), dtype=np.float32)
    for i, case in enumerate(cases):
        rows.append(rules.learned_input(case["text"]))
        if case["label"] == "attack":
            targets[i, CORPUS_FAMILIES[case["family"]]] = 1.0
    return np.stack(rows), targets


def build(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(learned.INPUT_SIZE, HIDDEN), torch.nn.ReLU(),
                               torch.nn.Linear(HIDDEN, len(CORPUS_FAMILIES)), torch.nn.Sigmoid())


def train(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, epochs: int) -> None:
    """Full-batch AdamW on binary cross-entropy, positives weighted by the benign/attack ratio of their family."""
    inputs, targets = torch.from_numpy(x), torch.from_numpy(y)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-2)
    positive_weight = torch.from_numpy((len(y) - y.sum(axis=0)) / y.sum(axis=0)).float()
    for _ in range(epochs):
        optimiser.zero_grad()
        p = model(inputs).clamp(1e-6, 1 - 1e-6)
        loss = -(positive_weight * targets * torch.log(p) + (1 - targets) * torch.log(1 - p)).mean()
        loss.backward()
        optimiser.step()


def metrics(probabilities: np.ndarray, cases: list[dict], threshold: float = 0.5) -> dict:
    out = {}
    for name, index in CORPUS_FAMILIES.items():
        rows = [i for i, c in enumerate(cases) if c["family"] == name]
        attacks = [i for i in rows if cases[i]["label"] == "attack"]
        benign = [i for i in rows if cases[i]["label"] == "benign"]
        out[name] = {"attacks": len(attacks), "benign": len(benign),
                     "detection": round(float(np.mean(probabilities[attacks, index] >= threshold)), 4),
                     "falsePositives": round(float(np.mean(probabilities[benign].max(axis=1) >= threshold)), 4)}
    return out


def export(model: torch.nn.Module, path: Path) -> None:
    model.eval()
    dummy = torch.zeros(1, learned.INPUT_SIZE)
    torch.onnx.export(model, (dummy,), str(path), input_names=["features"], output_names=["probabilities"],
                      dynamic_axes={"features": {0: "batch"}, "probabilities": {0: "batch"}}, opset_version=17,
                      dynamo=False)


EXAMPLE_THRESHOLDS = np.array([0.8, 0.85, 0.7])
"""The example policy's thresholds for promptInjection, jailbreak and toxicity (manifests/examples/guardrail.yaml)."""


def rule_decisions(signals: np.ndarray, learned_p: np.ndarray | None) -> np.ndarray:
    """Per family, whether the example policy's check would hit: the noisy-or of the family's matched signal
    weights, with the model's probability added as the runtime adds it (at least the floor, and some rule
    signal of the family matched)."""
    family = np.array([CORPUS_FAMILIES[key.split(".")[0]] for key in learned.SIGNAL_KEYS])
    hits = np.zeros(len(CORPUS_FAMILIES), dtype=bool)
    for index in range(len(CORPUS_FAMILIES)):
        weights = signals[(family == index) & (signals > 0)]
        if not len(weights):
            continue
        if learned_p is not None and learned_p[index] >= learned.LEARNED_FLOOR:
            weights = np.append(weights, learned_p[index])
        hits[index] = 1 - np.prod(1 - weights) >= EXAMPLE_THRESHOLDS[index]
    return hits


def cross_validate(folds: int, seed: int, epochs: int) -> dict:
    """Out-of-fold results over the train and validation splits (never held-out): each text scored by a model
    that did not see it, alone and added to the rules, against the rules alone."""
    cases = load("train") + load("validation")
    x, y = matrix(cases)
    fold = np.random.default_rng(seed).integers(0, folds, len(cases))
    probabilities = np.zeros_like(y)
    for k in range(folds):
        model = build(seed)
        train(model, x[fold != k], y[fold != k], epochs)
        with torch.no_grad():
            probabilities[fold == k] = model(torch.from_numpy(x[fold == k])).numpy()
    tally = {name: [0, 0] for name in ("modelAlone", "rulesAlone", "rulesAndModel")}
    for i, case in enumerate(cases):
        index = CORPUS_FAMILIES[case["family"]]
        signals = x[i, :len(learned.SIGNAL_KEYS)]
        flagged = {"modelAlone": probabilities[i] >= learned.LEARNED_FLOOR,
                   "rulesAlone": rule_decisions(signals, None), "rulesAndModel": rule_decisions(signals, probabilities[i])}
        for name, hits in flagged.items():
            tally[name][case["label"] == "attack"] += bool(hits[index] if case["label"] == "attack" else hits.any())
    attacks = sum(c["label"] == "attack" for c in cases)
    return {name: {"detected": f"{hit}/{attacks}", "falsePositives": f"{fp}/{len(cases) - attacks}"}
            for name, (fp, hit) in tally.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--cross-validate", type=int, metavar="K", help="print K-fold out-of-fold results over "
                        "train and validation (the shipped model is not touched) and exit")
    args = parser.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    if args.cross_validate:
        print(json.dumps(cross_validate(args.cross_validate, args.seed, args.epochs), indent=2))
        return
    train_cases, validation_cases = load("train"), load("validation")
    x, y = matrix(train_cases)
    model = build(args.seed)
    train(model, x, y, args.epochs)
    learned.MODEL_DIR.mkdir(exist_ok=True)
    export(model, learned.MODEL_FILE)
    stage = learned.LearnedStage(learned.MODEL_FILE)
    vx, _ = matrix(validation_cases)
    probabilities = stage.session.run(None, {stage.input_name: vx})[0]
    card = {"model": learned.MODEL_FILE.name, "architecture": f"{len(learned.SIGNAL_KEYS)} rule-signal weights + "
            f"hashed char {learned.NGRAMS}-grams x {learned.BUCKETS} (scaled {learned.NGRAM_SCALE}) -> dense {HIDDEN} "
            f"relu -> {len(CORPUS_FAMILIES)} sigmoid", "signalKeys": list(learned.SIGNAL_KEYS),
            "outputs": list(learned.FAMILIES), "seed": args.seed, "epochs": args.epochs,
            "trainCases": len(train_cases), "validationCases": len(validation_cases),
            "sha256": hashlib.sha256(learned.MODEL_FILE.read_bytes()).hexdigest(),
            "validationModelAlone": metrics(probabilities, validation_cases),
            "data": "corpus/*.jsonl split=train (project-written, Apache-2.0); see corpus/SOURCES.md"}
    learned.CARD_FILE.write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(card["validationModelAlone"], indent=2))


if __name__ == "__main__":
    main()
