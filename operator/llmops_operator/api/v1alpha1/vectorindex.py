"""VectorIndex: keep a Milvus collection of documents embedded with one model, behind an alias.

Every change to what the vectors are (model, dimension, metric, index, source, chunking) builds a
new physical collection `<collection>_<hash>` (the hash also covers namespace and name, so objects
never share one); the alias `<collection>` is swapped to it only once
ingestion succeeded, so searches never see a half-built or mixed-model collection.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from llmops_operator.api.v1alpha1.common import (
    DriftStatus, KindInfo, KubeModel, LocalObjectReference, PrinterColumn, Resource, ResourceStatus,
    SecretKeyRef, age_column, cel, exactly_one_of, ready_columns,
)

MILVUS_URI_PATTERN = r"^(https?://|tcp://|pvc://|file://|/).+"
COLLECTION_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
INDEX_PARAMS: dict[str, tuple[str, ...]] = {"HNSW": ("M", "efConstruction"), "IVF_FLAT": ("nlist",),
                                             "FLAT": (), "AUTOINDEX": ()}
"""The build parameters pymilvus accepts per index type (IndexParams.add_index(params=...))."""
INDEX_PARAMS_MESSAGE = "index.params: HNSW takes M and efConstruction, IVF_FLAT takes nlist, FLAT and AUTOINDEX take none"
OVERLAP_MESSAGE = "chunking.overlap must be smaller than chunking.size"
DEFAULT_CHUNK_SIZE = 512


class MilvusSpec(KubeModel):
    """The Milvus server (or Milvus Lite database) that holds the collection."""

    uri: str = Field(min_length=1, max_length=1024, pattern=MILVUS_URI_PATTERN)
    """A Milvus server (http://milvus.milvus:19530) or a Milvus Lite database path (pvc://claim/path/milvus.db, file:///path or /path)."""
    secret_ref: SecretKeyRef | None = None
    """Secret key holding the Milvus token (user:password or an API key). Unset: no authentication."""
    collection: str | None = Field(default=None, min_length=1, max_length=200, pattern=COLLECTION_PATTERN,
                                   json_schema_extra={"x-kubernetes-validations": [
                                       cel("self == oldSelf", "milvus.collection is immutable"),
                                   ]})
    """Alias searches use; physical collections are named <collection>_<hash>. Defaults to the object name with - replaced by _. Immutable."""


class EmbeddingSpec(KubeModel):
    """The sentence-embedding model and the vectors it produces."""

    model: str = Field(min_length=1, max_length=512)
    """Sentence-transformers model: a Hugging Face id (sentence-transformers/all-MiniLM-L6-v2) or a directory URI."""
    dimension: int = Field(ge=1, le=32768)
    """Vector dimension the model produces (384 for all-MiniLM-L6-v2); the ingest fails if the model disagrees."""
    metric: Literal["COSINE", "L2", "IP"] = "COSINE"
    """Milvus metric_type: cosine similarity, Euclidean distance or inner product. Defaults to COSINE."""
    batch_size: int = Field(default=32, ge=1, le=4096)
    """Chunks embedded per model call. Does not change the vectors, so it does not trigger re-embedding. Defaults to 32."""


class IndexSpec(KubeModel):
    """The Milvus vector index built on the collection."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel("!has(self.params) || self.params.all(k, "
            "((has(self.type) ? self.type : 'HNSW') == 'HNSW' && k in ['M', 'efConstruction']) || "
            "((has(self.type) ? self.type : 'HNSW') == 'IVF_FLAT' && k == 'nlist'))",
            INDEX_PARAMS_MESSAGE, ".params"),
    ]}}

    type: Literal["HNSW", "IVF_FLAT", "FLAT", "AUTOINDEX"] = "HNSW"
    """Milvus index_type. Defaults to HNSW."""
    params: dict[str, Annotated[int, Field(ge=1, le=1_000_000)]] | None = Field(default=None, max_length=8)
    """Index build parameters: M and efConstruction for HNSW, nlist for IVF_FLAT. Unset: Milvus's defaults."""

    @model_validator(mode="after")
    def _params_fit_type(self) -> "IndexSpec":
        if any(key not in INDEX_PARAMS[self.type] for key in self.params or {}):
            raise ValueError(INDEX_PARAMS_MESSAGE)
        return self


class PvcSource(KubeModel):
    """Documents on a PersistentVolumeClaim, mounted into the ingest Job."""

    claim_name: str = Field(min_length=1, max_length=253)
    """Name of the PersistentVolumeClaim."""
    path: str = Field(default="", max_length=1024)
    """Directory inside the claim. Defaults to the claim's root."""


class ChunkingSpec(KubeModel):
    """How documents are split before embedding."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel(f"!has(self.overlap) || self.overlap < (has(self.size) ? self.size : {DEFAULT_CHUNK_SIZE})",
            OVERLAP_MESSAGE, ".overlap"),
    ]}}

    size: int = Field(default=DEFAULT_CHUNK_SIZE, ge=16, le=65536)
    """Chunk length in characters. Defaults to 512."""
    overlap: int = Field(default=64, ge=0, le=65535)
    """Characters shared by consecutive chunks; must be smaller than size. Defaults to 64."""

    @model_validator(mode="after")
    def _overlap_below_size(self) -> "ChunkingSpec":
        if self.overlap >= self.size:
            raise ValueError(OVERLAP_MESSAGE)
        return self


class SourceSpec(KubeModel):
    """The documents to index. Exactly one of configMapRef, pvc and uri."""

    exactly_one = (exactly_one_of("config_map_ref", "pvc", "uri", where="source"),)

    config_map_ref: LocalObjectReference | None = None
    """A ConfigMap whose keys are file names and values document text (small corpora)."""
    pvc: PvcSource | None = None
    """A directory on a PersistentVolumeClaim."""
    uri: str | None = Field(default=None, min_length=1, max_length=1024)
    """A directory or object prefix read with fsspec (s3://bucket/docs, gs://..., https://...)."""
    include: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(
        default_factory=lambda: ["**/*.md", "**/*.txt"], max_length=32)
    """Glob patterns of files to index, relative to the source root. Defaults to **/*.md and **/*.txt."""
    chunking: ChunkingSpec = Field(default_factory=ChunkingSpec)
    """How documents are split into chunks."""


class VectorIndexSpec(KubeModel):
    """Which documents to embed with which model into which Milvus collection and index."""

    milvus: MilvusSpec
    """Where the collection lives."""
    embedding: EmbeddingSpec
    """The embedding model and its vectors."""
    index: IndexSpec = Field(default_factory=IndexSpec)
    """The vector index. Defaults to HNSW with Milvus's default parameters."""
    source: SourceSpec
    """The documents to index."""
    reindex_schedule: str | None = Field(default=None, max_length=64, pattern=r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|(\S+\s+){4}\S+)$")
    """Cron schedule (CronJob syntax) on which the source is re-read and changed documents re-embedded into the current collection. Unset: ingest once per spec change."""
    image: str | None = Field(default=None, max_length=512)
    """Container image of the ingest Job. Defaults to the operator's runtime image."""
    deletion_policy: Literal["Retain", "Delete"] = "Retain"
    """What happens to the Milvus collections when the VectorIndex is deleted: Retain keeps them and the alias, Delete drops the alias and every physical collection this object built, in a cleanup Job. A cleanup that cannot finish sets CleanupFailed and keeps the object until it succeeds or the object is annotated llmops.dev/skip-cleanup=true. Defaults to Retain."""


class VectorIndexStatus(ResourceStatus):
    """Observed state of a VectorIndex."""

    collection: str | None = None
    """The alias searches use."""
    physical_collection: str | None = None
    """The physical collection the alias points to (as the last successful ingest reported)."""
    vectors: int | None = None
    """Vectors (chunks) in the physical collection."""
    last_ingested: str | None = None
    """When the last successful ingest finished (RFC 3339)."""
    embedding_model: str | None = None
    """The model the served vectors were embedded with."""
    source_digest: str | None = None
    """sha256 over the served documents' paths and contents: it changes when, and only when, the source did."""
    index_state: str | None = None
    """State of the vector index on the served collection as Milvus reports it (Finished, InProgress, Failed)."""
    drift: DriftStatus | None = None
    """Corpus drift: how far the documents the last ingest embedded moved from those the alias served before it
    (cosine distance between the mean vectors of a sample of each, metric embedding, feature centroid). It compares
    two collections, not queries with documents; absent until a second ingest has something to compare with."""


class VectorIndex(Resource):
    """VectorIndex embeds documents into a Milvus collection behind an alias, and re-embeds them into a new collection when the model or index changes."""

    info: ClassVar[KindInfo] = KindInfo(
        kind="VectorIndex", plural="vectorindexes", short_names=["vidx"], requires="vector",
        columns=[
            *ready_columns(),
            PrinterColumn(name="Vectors", json_path=".status.vectors", type="integer"),
            PrinterColumn(name="Model", json_path=".status.embeddingModel"),
            PrinterColumn(name="CorpusDrift", json_path=".status.drift.score", type="number",
                          description="How far the last ingest moved the corpus from the one served before it"),
            age_column(),
        ],
    )

    kind: Literal["VectorIndex"] = "VectorIndex"
    spec: VectorIndexSpec
    status: VectorIndexStatus | None = None

    @property
    def collection(self) -> str:
        """The alias: spec.milvus.collection, or the object name made a valid Milvus name."""
        if self.spec.milvus.collection:
            return self.spec.milvus.collection
        name = self.name.replace("-", "_").replace(".", "_")
        return name if not name[0].isdigit() else f"_{name}"
