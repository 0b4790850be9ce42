"""Retrieval for the guardrail transformer: embed the query, search the VectorIndex's alias, guard the chunks.

Configured by LLMOPS_RETRIEVAL (builders/retrieval.py writes it) and, for a remote Milvus, the token in the
environment variable it names. `Retriever.retrieve` runs the embedding and the search in one worker thread, never
on the event loop, and searches the alias on every request, so a VectorIndex's re-embedding swap is served as
soon as the alias moves. A server is connected once. A Milvus Lite database is a file one process at a time may
hold: the transformer holds it while requests come and lets it go after LITE_IDLE_SECONDS (10, or
$LLMOPS_LITE_IDLE_SECONDS) without one, so the
VectorIndex's ingest Job can write it in a pause (opening it costs seconds: the index is loaded again). While held,
its vectors are searched in memory (backends/vector_snapshot.py): no other process can change them.

Each chunk found goes through the Guardrail's `retrieved` checks before it may reach the model: a chunk whose
verdict is dropped is left out, a redacted one is used redacted, and a blocked one refuses the whole request.
The kept chunks, best first and within the context budget, are numbered [1], [2], ... in `{{context}}`;
responses name them (id, source, score) in the `llmops.retrieval` extension field.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Mapping

from llmops_operator.api.v1alpha1.retrieval import CONTEXT_VARIABLE
from llmops_operator.guardrails.verdict import BLOCKED, DROPPED, REDACTED
from llmops_operator.servers import request_metrics as metrics
from llmops_operator.servers.prompt_routing import PromptError

RETRIEVAL_ENV = "LLMOPS_RETRIEVAL"
LITE_IDLE_ENV = "LLMOPS_LITE_IDLE_SECONDS"
LITE_IDLE_SECONDS = float(os.environ.get(LITE_IDLE_ENV, "10"))
SIMILARITY_METRICS = ("COSINE", "IP")
"""Metrics whose Milvus distance is a similarity (higher is closer); L2 is a distance and has no threshold."""


class RetrievalError(RuntimeError):
    """Retrieval could not run; `status` is what the client gets (400: the request is at fault)."""

    def __init__(self, message: str, status: int = 503, param: str | None = None):
        super().__init__(message)
        self.status = status
        self.param = param


@dataclass(frozen=True)
class RetrievalConfig:
    index: str
    uri: str
    alias: str
    fields: Mapping[str, str]
    model: str
    dimension: int
    metric: str
    top_k: int
    query_variable: str
    max_query_chars: int
    max_context_chars: int
    threshold: float | None = None
    search_params: Mapping[str, Any] = field(default_factory=dict)
    token: str | None = None


def load_config(raw: str, environ: Mapping[str, str] = os.environ) -> RetrievalConfig:
    """The config from LLMOPS_RETRIEVAL's JSON; ValueError naming the field when it is unusable."""
    try:
        document = json.loads(raw)
        milvus, embedding, search = document["milvus"], document["embedding"], document["search"]
        token_env = milvus.get("tokenEnv")
        return RetrievalConfig(
            index=str(document["index"]), uri=str(milvus["uri"]), alias=str(milvus["alias"]),
            fields=dict(milvus["fields"]), model=str(embedding["model"]), dimension=int(embedding["dimension"]),
            metric=str(embedding["metric"]), top_k=int(search["topK"]), query_variable=str(search["queryVariable"]),
            max_query_chars=int(search["maxQueryChars"]), max_context_chars=int(search["maxContextChars"]),
            threshold=search.get("scoreThreshold"), search_params=dict(search.get("params") or {}),
            token=environ.get(token_env) if token_env else None)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{RETRIEVAL_ENV}: not a retrieval config: {type(err).__name__}: {err}") from None


@dataclass(frozen=True)
class Chunk:
    id: str
    source: str
    text: str
    score: float


@dataclass
class Retrieved:
    """What one request's retrieval found and kept."""

    index: str
    chunks: list[Chunk] = field(default_factory=list)
    """The chunks the context holds, best first."""
    found: int = 0
    dropped: int = 0
    blocked: Any = None
    """The verdict that refused the request, when a retrieved check blocks."""
    seconds: float = 0.0
    shows_context: bool = False
    """Whether the response carries the context text: for the operator's evaluation requests only (they carry
    the routing's evaluation token), whose faithfulness score compares the answer with it."""

    def context(self) -> str:
        return "\n\n".join(f"[{n}] (source: {c.source})\n{c.text}" for n, c in enumerate(self.chunks, 1))

    def extension(self) -> dict[str, Any]:
        """The `llmops.retrieval` field of a response: the chunks used, numbered as the context cites them."""
        extension = {"index": self.index, "found": self.found, "dropped": self.dropped,
                     "citations": [{"ref": n, "id": c.id, "source": c.source, "score": round(c.score, 4)}
                                   for n, c in enumerate(self.chunks, 1)]}
        return {**extension, "context": self.context()} if self.shows_context else extension


class Searcher:
    """Embedding and search, blocking: run only in the retriever's worker thread."""

    def __init__(self, config: RetrievalConfig):
        self.config = config
        self._encoder: Any = None
        self._client: Any = None
        self._held: Any = None
        """The open connect() of a Milvus Lite database, while held."""
        self.drift: Any = None
        """servers/query_drift.QueryDrift, with a query reference mounted."""
        self._snapshot: Any = None
        """backends/vector_snapshot.VectorSnapshot of a held Milvus Lite database, searched in memory."""

    def load(self) -> None:
        from llmops_operator.backends.embedding import load_query_encoder
        from llmops_operator.servers.query_drift import load_query_drift

        self._encoder = load_query_encoder(self.config.model, self.config.dimension)
        self.drift = load_query_drift(self._encoder, self.config.metric in SIMILARITY_METRICS)

    def search(self, query: str) -> list[Chunk]:
        from llmops_operator.backends import embedding

        if self._encoder is None:
            self.load()
        vector = embedding.embed(self._encoder, [query], 1, self.config.metric in SIMILARITY_METRICS)
        metrics.EMBEDDING_CALLS.inc()
        if self.drift is not None:
            self.drift.observe(vector)
        return self._search(vector)

    def _lite(self) -> Any:
        """The held Milvus Lite client, opened (collection loaded, vectors read into the snapshot) if need be."""
        from llmops_operator.backends import milvus, vector_snapshot

        if self._held is None:
            held = milvus.connect(self.config.uri, self.config.token)
            try:
                self._client = held.__enter__()
            except milvus.MilvusError as err:  # the database is held by an ingest Job, or missing
                raise RetrievalError(f"VectorIndex {self.config.index}: {err}") from None
            self._held = held
            milvus.load(self._client, self.config.alias)
            self._snapshot = vector_snapshot.read_snapshot(self._client, self.config.alias, self.config.fields,
                                                           self.config.metric, self._snapshot)
        return self._client

    def release(self) -> None:
        """Let a held Milvus Lite database go (the ingest Job may write it now); the next search opens it again."""
        if self._held is not None:
            held, self._held, self._client = self._held, None, None
            held.__exit__(None, None, None)

    def _remote(self) -> Any:
        from pymilvus import MilvusClient

        from llmops_operator.backends import milvus

        if self._client is None:
            self._client = MilvusClient(uri=milvus.client_uri(self.config.uri), token=self.config.token or "")
        milvus.load(self._client, self.config.alias)  # the alias may have moved to another collection
        return self._client

    def _search(self, vector: Any) -> list[Chunk]:
        from pymilvus.exceptions import MilvusException

        from llmops_operator.backends import milvus, vector_snapshot

        config = self.config
        try:
            client = self._lite() if milvus.is_lite(config.uri) else self._remote()
            if self._snapshot is not None:
                nearest = self._snapshot.nearest(vector[0], config.top_k)
                hits = vector_snapshot.hits(client, config.alias, config.fields, nearest)
            else:
                [hits] = milvus.search(client, config.alias, vector.tolist(), config.top_k, dict(config.fields),
                                       params=config.search_params)
        except (MilvusException, milvus.MilvusError, OSError) as err:
            self.release()
            self._client = self._snapshot = None  # connected and read again on the next request
            raise RetrievalError(f"VectorIndex {config.index}: search of {config.alias} failed: "
                                 f"{type(err).__name__}: {str(err)[:200]}") from None
        return [Chunk(str(h["id"]), str(h["source"]), str(h["text"]), float(h["distance"])) for h in hits]


def query_of(variables: Mapping[str, Any] | None, config: RetrievalConfig) -> str:
    """The search query from the request's variables; RetrievalError(400) naming the variable when unusable."""
    variables = variables or {}
    if CONTEXT_VARIABLE in variables:
        raise RetrievalError(f"variables.{CONTEXT_VARIABLE}: filled from the VectorIndex; do not send it", 400,
                             "variables")
    query = variables.get(config.query_variable)
    if not isinstance(query, str) or not query.strip():
        raise RetrievalError(f"variables.{config.query_variable}: the retrieval query; expected a non-empty string",
                             400, "variables")
    if len(query) > config.max_query_chars:
        raise RetrievalError(f"variables.{config.query_variable}: {len(query)} characters, over the "
                             f"{config.max_query_chars} this service embeds", 400, "variables")
    return query


def ranked(chunks: list[Chunk], config: RetrievalConfig) -> list[Chunk]:
    """Chunks over the score threshold (similarity metrics only), best first."""
    similar = config.metric in SIMILARITY_METRICS
    if similar and config.threshold is not None:
        chunks = [c for c in chunks if c.score >= config.threshold]
    return sorted(chunks, key=lambda c: -c.score if similar else c.score)


MIN_CUT_CHARS = 64
"""A chunk cut to fit the context budget keeps at least this much, or is left out."""


def within_budget(chunks: list[Chunk], budget: int) -> list[Chunk]:
    """The best chunks whose text fits `budget` characters; the first that does not fit is cut to the room left
    (when that is at least MIN_CUT_CHARS) and ends the list."""
    kept, used = [], 0
    for chunk in chunks:
        room = budget - used
        if len(chunk.text) > room:
            if room >= MIN_CUT_CHARS:
                kept.append(Chunk(chunk.id, chunk.source, chunk.text[:room], chunk.score))
            break
        kept.append(chunk)
        used += len(chunk.text)
    return kept


class Retriever:
    def __init__(self, config: RetrievalConfig, searcher: Searcher | None = None):
        self.config = config
        self.searcher = searcher or Searcher(config)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="retrieval")
        self._release: asyncio.TimerHandle | None = None

    def load(self) -> None:
        """Load the embedding model before the server takes requests (not in the first request's time)."""
        self.searcher.load()

    async def retrieve(self, variables: Mapping[str, Any] | None, check: Any, request_id: str) -> Retrieved:
        """The chunks for this request's query, guarded by `check(text, "retrieved", request_id)` (None: no
        policy). Counted in the retrieval metrics."""
        query = query_of(variables, self.config)
        started = time.perf_counter()
        try:
            found = await asyncio.get_running_loop().run_in_executor(self._pool, self.searcher.search, query)
        except RetrievalError:
            metrics.RETRIEVALS.labels(outcome="error").inc()
            raise
        finally:
            self._release_when_idle()
        result = Retrieved(self.config.index, found=len(found), seconds=time.perf_counter() - started)
        metrics.RETRIEVAL_LATENCY.observe(result.seconds)
        if found and self.config.metric in SIMILARITY_METRICS:
            metrics.TOP_SCORE.inc(max(0.0, max(c.score for c in found)))
            metrics.SCORED.inc()
        await self._guard(ranked(found, self.config), check, request_id, result)
        metrics.RETRIEVALS.labels(outcome="blocked" if result.blocked else "used" if result.chunks else "empty").inc()
        return result

    def _release_when_idle(self) -> None:
        """Release a held Milvus Lite database LITE_IDLE_SECONDS after the last search (in the search thread)."""
        if self._release is not None:
            self._release.cancel()
        loop = asyncio.get_running_loop()
        self._release = loop.call_later(LITE_IDLE_SECONDS, loop.run_in_executor, self._pool, self.searcher.release)

    async def _guard(self, chunks: list[Chunk], check: Any, request_id: str, result: Retrieved) -> None:
        verdicts = await asyncio.gather(*(check(c.text, "retrieved", request_id) for c in chunks)) if check else []
        kept = []
        for chunk, verdict in zip(chunks, verdicts or [None] * len(chunks)):
            outcome = verdict.outcome if verdict is not None else None
            if outcome == BLOCKED:
                result.blocked = verdict
            elif outcome == DROPPED:
                result.dropped += 1
            else:
                kept.append(Chunk(chunk.id, chunk.source, verdict.text, chunk.score) if outcome == REDACTED
                            else chunk)
        metrics.RETRIEVED_CHUNKS.labels(fate="dropped").inc(result.dropped)
        result.chunks = [] if result.blocked else within_budget(kept, self.config.max_context_chars)
        metrics.RETRIEVED_CHUNKS.labels(fate="used").inc(len(result.chunks))


def with_context(variables: Mapping[str, Any] | None, expected: tuple[str, ...], retrieved: Retrieved) -> dict:
    """The variables with {{context}} filled; ValueError when the prompt version has no such placeholder."""
    if CONTEXT_VARIABLE not in expected:
        raise ValueError(f"the prompt version has no {{{{{CONTEXT_VARIABLE}}}}} variable, which spec.retrieval "
                         "fills: add it to the template")
    return {**(variables or {}), CONTEXT_VARIABLE: retrieved.context()}


def from_environment(with_prompts: bool, environ: Mapping[str, str] = os.environ) -> Retriever | None:
    """The retriever LLMOPS_RETRIEVAL configures (None when unset); SystemExit when it cannot serve."""
    raw = environ.get(RETRIEVAL_ENV)
    if not raw:
        return None
    if not with_prompts:
        raise SystemExit(f"{RETRIEVAL_ENV} needs a prompt release: the retrieved chunks fill its "
                         f"{{{{{CONTEXT_VARIABLE}}}}} variable")
    try:
        return Retriever(load_config(raw, environ))
    except ValueError as err:
        raise SystemExit(str(err)) from None


def has_retrieved_checks(policy: Any) -> bool:
    return policy is not None and bool(policy.guardrail().plans["retrieved"].checks)


async def retrieve(model: Any, variables: Mapping[str, Any] | None, request_id: str) -> Retrieved | None:
    """The guarded retrieval for one request of the transformer `model`; None when it has no retriever."""
    if model.retriever is None:
        return None
    check = model._check if model.scans is not None and has_retrieved_checks(model.policy) else None
    return await model.retriever.retrieve(variables, check, request_id)


async def render_instance(model: Any, version: Any, variables: Mapping[str, Any] | None,
                          headers: Mapping[str, str]) -> tuple[str, Retrieved | None]:
    """A KServe v1 instance's prompt, with {{context}} filled when the service retrieves."""
    from llmops_operator.servers.guardrail_scans import request_id_of
    from llmops_operator.servers.prompt_routing import forced_version

    retrieved = await retrieve(model, variables, request_id_of(headers))
    if retrieved is None:
        return version.render(variables or {}), None
    retrieved.shows_context = forced_version(model.prompts.release().routing, headers) is not None
    try:
        return version.render(with_context(variables, version.expected, retrieved)), retrieved
    except ValueError as err:
        if isinstance(err, PromptError):
            raise
        raise RetrievalError(f"{err} (prompt version {version.version})", 500) from None


def blocked_by_retrieval(job: Mapping[str, Any], shown: Mapping[str, Any]) -> dict[str, Any] | None:
    """The KServe v1 prediction of an instance a retrieved check refused, else None."""
    from llmops_operator.servers.protocol import blocked_prediction

    retrieved = job.get("retrieval")
    if retrieved is None or retrieved.blocked is None:
        return None
    prediction = blocked_prediction(job["version"], retrieved.blocked, **shown)
    prediction["verdict"] = {"retrieved": prediction["verdict"]["input"]}
    return prediction


def annotate(prediction: dict[str, Any], job: Mapping[str, Any]) -> dict[str, Any]:
    """A KServe v1 prediction with the chunks its answer used, under `retrieval`."""
    if job.get("retrieval") is not None:
        prediction["retrieval"] = job["retrieval"].extension()
    return prediction


async def error_handler(_: Any, exc: RetrievalError) -> Any:
    from fastapi.responses import JSONResponse

    return JSONResponse(status_code=exc.status, content={"error": str(exc)})
