"""The query encoder of a retrieval service: the index's sentence-transformers model, run through ONNX Runtime.

A query is one short text embedded per request, where sentence-transformers' per-call work (PyTorch's thread pool,
padding, tensor conversions) costs more than the six layers of MiniLM. For a model of the usual layout
(Transformer, mean or CLS Pooling, optional Normalize, a fast tokenizer) the encoder exports the model's
transformer to ONNX once, from the weights already loaded (never from a hub), into a cache keyed by the weights'
digest, and runs it with one intra-op thread: no thread pool to wake on a two-core pod. Before it is used, its
vectors are compared with the sentence-transformers model's on sample texts (cosine at least MIN_COSINE), so
queries land in the space the index was built in; a model of another layout, or a failed export or check, keeps
the sentence-transformers path.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

MIN_COSINE = 0.999
SAMPLE_TEXTS = ("How do I roll back a prompt release?", "Ünïcödé, punctuation — and numbers: 3.14 / 42%",
                "a", "retrieval " * 300)
"""Checked at load: a question, non-ASCII text, a single token, and one longer than the model's maximum."""
_TRANSFORMER = "sentence_transformers.models.Transformer"
_POOLING = "sentence_transformers.models.Pooling"
_NORMALIZE = "sentence_transformers.models.Normalize"
_EXPORT_LOCK = threading.Lock()


def cache_dir(environ: Any = os.environ) -> Path:
    """Where exported encoders are kept: LLMOPS_ONNX_CACHE, else the user's cache directory, else (a read-only
    home, as in a pod) the temporary directory."""
    if environ.get("LLMOPS_ONNX_CACHE"):
        return Path(environ["LLMOPS_ONNX_CACHE"])
    base = Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "llmops" / "onnx"
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError:
        return Path(tempfile.gettempdir()) / "llmops-onnx"
    return base if os.access(base, os.W_OK) else Path(tempfile.gettempdir()) / "llmops-onnx"


def pooling_of(location: Path) -> tuple[str, bool] | None:
    """("mean" or "cls", normalize) for a model of the layout the ONNX path reproduces; None for any other."""
    try:
        modules = json.loads((location / "modules.json").read_text())
        types = [m["type"] for m in modules]
        if types[:2] != [_TRANSFORMER, _POOLING] or types[2:] not in ([], [_NORMALIZE]):
            return None
        if not (location / "tokenizer.json").is_file():
            return None
        pooling = json.loads((location / modules[1]["path"] / "config.json").read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None
    modes = {key for key, value in pooling.items() if key.startswith("pooling_mode") and value is True}
    mode = {frozenset({"pooling_mode_mean_tokens"}): "mean", frozenset({"pooling_mode_cls_token"}): "cls"}
    chosen = mode.get(frozenset(modes))
    return (chosen, len(types) == 3) if chosen else None


def weights_digest(location: Path) -> str:
    """sha256 over the model's config and weights files: the export's cache key."""
    digest = hashlib.sha256()
    names = sorted(p.name for p in location.iterdir() if p.suffix in (".safetensors", ".bin", ".json") and p.is_file())
    for name in names:
        digest.update(name.encode())
        with open(location / name, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()[:32]


def export(model: Any, target: Path) -> None:
    """Write the transformer of a SentenceTransformer as ONNX (token states out, dynamic batch and length)."""
    import torch

    class TokenStates(torch.nn.Module):
        def __init__(self, transformer: Any) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.transformer(input_ids=input_ids, attention_mask=attention_mask,
                                    token_type_ids=token_type_ids).last_hidden_state

    sample = torch.ones((1, 4), dtype=torch.int64)
    axes = {"batch": 0, "tokens": 1}
    dynamic = {name: {axes["batch"]: "batch", axes["tokens"]: "tokens"}
               for name in ("input_ids", "attention_mask", "token_type_ids", "states")}
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkstemp(dir=target.parent, suffix=".partial")[1])
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")
            torch.onnx.export(TokenStates(model[0].auto_model.eval()), (sample, sample, torch.zeros_like(sample)),
                              str(partial), input_names=["input_ids", "attention_mask", "token_type_ids"],
                              output_names=["states"], dynamic_axes=dynamic, opset_version=17, dynamo=False)
        partial.chmod(0o644)  # a shared cache: other users of the directory read it
        partial.replace(target)  # atomic: a concurrent process sees no half-written file
    finally:
        partial.unlink(missing_ok=True)


class OnnxQueryEncoder:
    """One ONNX Runtime session and a fast tokenizer; `encode` is thread-safe and matches the model's vectors."""

    def __init__(self, onnx_file: Path, location: Path, max_tokens: int, pooling: str, normalize: bool,
                 dimension: int) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(location / "tokenizer.json"))
        self.tokenizer.no_padding()  # tokenizer.json may pad every text to the maximum: 10x the work for a query
        self.tokenizer.enable_truncation(max_tokens)
        self.pooling, self.normalize, self.dimension = pooling, normalize, dimension

    def get_embedding_dimension(self) -> int:
        return self.dimension

    def encode(self, texts: list[str], batch_size: int = 32, normalize: bool = False) -> np.ndarray:
        """float32 vectors, one row per text, as the sentence-transformers model computes them; unit length when
        the model normalizes or `normalize` asks."""
        out = [self._batch(texts[start:start + batch_size], normalize) for start in range(0, len(texts), batch_size)]
        return np.vstack(out) if out else np.zeros((0, self.dimension), dtype=np.float32)

    def _batch(self, texts: list[str], normalize: bool) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(list(texts))
        width = max(len(e.ids) for e in encodings)
        ids, mask, types = (np.zeros((len(texts), width), dtype=np.int64) for _ in range(3))
        for row, encoding in enumerate(encodings):
            ids[row, :len(encoding.ids)] = encoding.ids
            mask[row, :len(encoding.ids)] = encoding.attention_mask
            types[row, :len(encoding.ids)] = encoding.type_ids
        [states] = self.session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
        if self.pooling == "cls":
            vectors = states[:, 0]
        else:
            weights = mask[..., None].astype(np.float32)
            vectors = (states * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        if self.normalize or normalize:
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors.astype(np.float32)


def agreement(model: Any, encoder: OnnxQueryEncoder) -> float:
    """The lowest cosine between the model's and the encoder's vectors over SAMPLE_TEXTS."""
    expected = np.asarray(model.encode(list(SAMPLE_TEXTS), convert_to_numpy=True, show_progress_bar=False))
    got = encoder.encode(list(SAMPLE_TEXTS))
    norms = np.linalg.norm(expected, axis=1) * np.linalg.norm(got, axis=1)
    return float(np.min((expected * got).sum(axis=1) / np.maximum(norms, 1e-12)))


def onnx_encoder(model: Any, location: str, environ: Any = os.environ) -> OnnxQueryEncoder | None:
    """The ONNX encoder of a loaded SentenceTransformer, exported once into the cache; None where it cannot serve."""
    path = Path(location)
    layout = pooling_of(path) if path.is_dir() else None
    if layout is None:
        return None
    try:
        target = cache_dir(environ) / f"{weights_digest(path)}.onnx"
        with _EXPORT_LOCK:
            if not target.is_file():
                export(model, target)
        encoder = OnnxQueryEncoder(target, path, int(model.max_seq_length), layout[0], layout[1],
                                   int(model.get_embedding_dimension()))
        cosine = agreement(model, encoder)
    except Exception as err:  # noqa: BLE001 - any export or runtime failure keeps the model's own path
        log.warning("query encoder for %s stays on sentence-transformers: ONNX export failed: %s", location, err)
        return None
    if cosine < MIN_COSINE:
        log.warning("query encoder for %s stays on sentence-transformers: ONNX vectors differ (cosine %.5f)",
                    location, cosine)
        return None
    return encoder
