"""The learned second stage: a small network over the rules' evidence and hashed character n-grams, run with
ONNX Runtime on CPU.

The rules score a text by the noisy-or of fixed weights; the network learns how their signals combine (a
persona name with "stay in character" and "without filters" is a jailbreak even where each alone is weak) and
reads the text itself. Its input is, per classifier signal of the rules (`SIGNAL_KEYS`), the weight of that
signal when it matched the text or one of its deobfuscated views, followed by the normalised text and its views
cut into character n-grams of 2 to 4 characters, hashed into `BUCKETS` counts (log-scaled, L2-normalised, then
scaled by `NGRAM_SCALE`): no tokenizer, any script, and the same input at training
(`hack/guardrail/train_classifier.py`) and at run time. The network is one hidden layer with a sigmoid per
family (injection, jailbreak, toxicity); it ships as package data next to a card with its seed and validation
metrics, and nothing is fetched at run time.

Feature extraction is a few vectorised numpy passes and the model one matrix product, so a 1 KB text costs
well under a millisecond on one core; ONNX Runtime is held to one thread, since scans already run in a
worker pool.
"""

from __future__ import annotations

import json
import threading
from functools import lru_cache
from pathlib import Path
from typing import Mapping

import numpy as np

from llmops_operator.guardrails.injection import INJECTION_SIGNALS, JAILBREAK_SIGNALS
from llmops_operator.guardrails.multilingual import (MULTILINGUAL_INJECTION, MULTILINGUAL_JAILBREAK,
                                                     MULTILINGUAL_TOXICITY)
from llmops_operator.guardrails.personas import PERSONA_JAILBREAK
from llmops_operator.guardrails.signals import INJECTION, JAILBREAK, TOXICITY
from llmops_operator.guardrails.toxicity import TOXICITY_SIGNALS

FAMILIES = (INJECTION, JAILBREAK, TOXICITY)
"""The model's outputs, in order."""
BUCKETS = 1 << 14
NGRAMS = (2, 3, 4)
NGRAM_SCALE = 0.1
"""The n-gram block's weight next to the signal block: on a few hundred training texts n-grams alone overfit
(validation detection under 50%), while at a tenth of the signals' scale they refine without dominating."""
SIGNAL_KEYS = tuple(sorted(s.key for s in INJECTION_SIGNALS + JAILBREAK_SIGNALS + TOXICITY_SIGNALS
                           + MULTILINGUAL_INJECTION + MULTILINGUAL_JAILBREAK + MULTILINGUAL_TOXICITY
                           + PERSONA_JAILBREAK))
_SIGNAL_INDEX = {key: i for i, key in enumerate(SIGNAL_KEYS)}
INPUT_SIZE = len(SIGNAL_KEYS) + BUCKETS
LEARNED_FLOOR = 0.5
"""Below this probability the model's opinion is not added to a check's score."""
MAX_FEATURE_CHARS = 64_000
"""Only the first this many characters of the joined text feed the features: beyond, the cost grows and the
rules (linear over the whole text) carry the detection."""
MODEL_DIR = Path(__file__).resolve().parent / "model"
MODEL_FILE = MODEL_DIR / "guardrail-classifier.onnx"
CARD_FILE = MODEL_DIR / "guardrail-classifier.json"
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
_BASE = np.uint64(1_000_003)


def features(text: str) -> np.ndarray:
    """The hashed n-gram vector (float32, length BUCKETS) of a text; deterministic across processes."""
    padded = f" {text[:MAX_FEATURE_CHARS].lower()} "
    codes = np.frombuffer(padded.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.uint64)
    counts = np.zeros(BUCKETS, dtype=np.float32)
    for n in NGRAMS:
        if len(codes) < n:
            continue
        span = len(codes) - n + 1
        hashed = np.full(span, np.uint64(n), dtype=np.uint64)
        for k in range(n):
            hashed = hashed * _BASE + codes[k:k + span]
        buckets = ((hashed * _MULTIPLIER) >> np.uint64(50)) % np.uint64(BUCKETS)
        counts += np.bincount(buckets.astype(np.int64), minlength=BUCKETS).astype(np.float32)
    counts = np.log1p(counts)
    norm = float(np.linalg.norm(counts))
    return counts / norm if norm else counts


def model_text(normalized: str, views: list[str]) -> str:
    """What the model reads: the normalised text and its deobfuscated views, one per line."""
    return "\n".join([normalized, *views])


def model_input(text: str, signal_weights: Mapping[str, float]) -> np.ndarray:
    """The network's input: the weight of each matched classifier signal, then the scaled n-gram vector."""
    signals = np.zeros(len(SIGNAL_KEYS), dtype=np.float32)
    for key, weight in signal_weights.items():
        index = _SIGNAL_INDEX.get(key)
        if index is not None:
            signals[index] = weight
    return np.concatenate([signals, features(text) * np.float32(NGRAM_SCALE)])


class LearnedStage:
    """The ONNX model, loaded once per process; `scores` is thread-safe (ONNX Runtime sessions are)."""

    def __init__(self, path: Path = MODEL_FILE) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        model_input_spec = self.session.get_inputs()[0]
        self.input_name = model_input_spec.name
        if model_input_spec.shape[-1] != INPUT_SIZE:
            raise RuntimeError(f"{path.name} takes {model_input_spec.shape[-1]} inputs but the rules now give "
                               f"{INPUT_SIZE}: retrain it with hack/guardrail/train_classifier.py")

    def scores(self, inputs: np.ndarray) -> Mapping[str, float]:
        """The probability per family that the text behind `inputs` (see `model_input`) is such an attack."""
        [probabilities] = self.session.run(None, {self.input_name: inputs[None, :]})
        return {family: round(float(p), 4) for family, p in zip(FAMILIES, probabilities[0])}


_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _load() -> LearnedStage:
    with _LOCK:
        return LearnedStage()


def learned_stage() -> LearnedStage:
    """The process's shared model (loaded on first use: a guardrail without classifier checks never loads it)."""
    return _load()


def model_card() -> dict:
    """The model's card: seed, data, and its metrics on the validation split."""
    return json.loads(CARD_FILE.read_text())
