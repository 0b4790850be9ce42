"""InferenceService.spec.retrieval: answer from a VectorIndex (retrieval-augmented generation).

The guardrail runtime embeds the request's query variable with the index's own model, searches the index's
alias (so a re-embedding swap is served without a restart), checks the chunks with the Guardrail's
`retrieved` checks, and fills the prompt version's `{{context}}` variable with the chunks it kept, each
numbered for citation. Responses name the chunks used in the `llmops.retrieval` extension field.
"""

from __future__ import annotations

from pydantic import Field

from llmops_operator.api.v1alpha1.common import KubeModel, LocalObjectReference, StatusModel

CONTEXT_VARIABLE = "context"
"""The template variable the runtime fills with the retrieved chunks; a caller may not set it."""
MAX_TOP_K = 20
MAX_CONTEXT_CHARS = 32_768
MAX_QUERY_CHARS = 4_096
VARIABLE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


class RetrievalSpec(KubeModel):
    """Where context comes from and how much of it reaches the model."""

    vector_index_ref: LocalObjectReference
    """VectorIndex in this namespace whose alias is searched; the service waits until it is Ready."""
    top_k: int = Field(default=4, ge=1, le=MAX_TOP_K)
    """Chunks retrieved per request (at most 20). Defaults to 4."""
    score_threshold: float | None = Field(default=None, ge=-1, le=1)
    """Lowest similarity (cosine or inner product, -1..1) a chunk needs to be used; ignored for the L2 metric.
    Unset: every one of the topK chunks is used."""
    query_variable: str = Field(default="question", min_length=1, max_length=63, pattern=VARIABLE_PATTERN)
    """The request variable whose value is the search query (it is also rendered into the template as usual).
    Defaults to question."""
    max_query_chars: int = Field(default=1024, ge=16, le=MAX_QUERY_CHARS)
    """Longest query embedded; a longer one is refused with 400. Defaults to 1024."""
    max_context_chars: int = Field(default=8192, ge=256, le=MAX_CONTEXT_CHARS)
    """Most characters of chunk text put into {{context}}, best chunks first: the first chunk that does not fit is
    cut to the room left, and the rest are left out. Defaults to 8192."""


class RetrievalStatus(StatusModel):
    """Retrieval as the guardrail runtime measured it over the metrics window."""

    vector_index: str | None = None
    """The VectorIndex searched, and the alias, as namespace-local name/alias."""
    p50_ms: float | None = None
    """Median time to embed the query and search, in milliseconds."""
    p99_ms: float | None = None
    """99th percentile of the same."""
    retrievals: int = 0
    """Retrievals the figures were computed from."""
    empty_rate: float | None = None
    """Share of retrievals that left no chunk for the context (none found, all under the threshold or dropped)."""
    mean_top_score: float | None = None
    """Mean similarity of the best chunk per retrieval (cosine or inner product)."""
    dropped_chunks: int | None = None
    """Chunks the Guardrail's retrieved checks left out of the context."""
    embedding_calls: int | None = None
    """Query embeddings computed (their CPU is part of the transformer pod's cost in status.cost)."""
