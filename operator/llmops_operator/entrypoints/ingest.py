"""The ingest Job of a VectorIndex: `python -m llmops_operator.entrypoints.ingest --config ingest.json`.

Reads the config builders/ingest.py writes, then:
1. reads the source documents and splits them into chunks with content-hash ids;
2. loads the embedding model and checks it produces embedding.dimension vectors (before touching Milvus);
3. creates the physical collection with its index when missing (a Milvus that cannot build the
   index type fails the run with a message naming it);
4. embeds and upserts only the chunks the collection lacks, deletes the chunks whose document
   changed or went away;
5. points the alias at the collection (create or alter), only now that it is complete;
6. reports rows, source digest, model, index state and the corpus drift (the new collection's
   embeddings against those of the collection the alias served before) into the object's progress ConfigMap.
An alias or collection another VectorIndex (or something outside llmops) owns fails the run before anything is
written. The Milvus client is closed on every path, so the next Job can open a Milvus Lite file.

With `--drop` it removes what this object built instead (the cleanup Job of a VectorIndex deleted with
deletionPolicy Delete): the alias, when it serves one of the object's collections, and every collection
whose llmops.owner property names the object. A Milvus Lite database that no longer exists holds nothing
to drop.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from llmops_operator.backends import milvus
from llmops_operator.entrypoints.chunking import Chunk, SourceError, chunk_documents, read_documents, source_digest
from llmops_operator.backends.embedding import EmbeddingError, embed, load_model
from llmops_operator.entrypoints.report import Reporter, finish
from llmops_operator.scoring.embedding_drift import embedding_drift

UPSERT_BATCH = 512
"""Chunks embedded and upserted per round (each round reports progress)."""
DRIFT_SAMPLE = 512
"""Vectors sampled from the previous and the new collection to measure drift."""
DRIFT_THRESHOLD = 0.1
"""Centroid cosine distance above which the corpus counts as drifted."""
INGEST_ERRORS = (SourceError, EmbeddingError, milvus.MilvusError)


@dataclass(frozen=True)
class Changes:
    documents: int
    chunks: int
    embedded: int
    deleted: int

    def wire(self) -> dict[str, int]:
        return {"documents": self.documents, "chunks": self.chunks, "embedded": self.embedded,
                "deleted": self.deleted, "unchanged": self.chunks - self.embedded}


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def owner(config: dict[str, Any]) -> str:
    return f"{config['object']['namespace']}/{config['object']['name']}"


def _rows(chunks: list[Chunk], vectors: np.ndarray, fields: dict[str, str]) -> list[dict[str, Any]]:
    return [{fields["primary"]: c.id, fields["vector"]: v.tolist(), fields["text"]: c.text,
             fields["source"]: c.source[:milvus.SOURCE_MAX_LENGTH]} for c, v in zip(chunks, vectors)]


def sample_vectors(client: Any, collection: str, fields: dict[str, str], encoder: Any, model: str,
                   batch_size: int, normalize: bool) -> np.ndarray | None:
    """Up to DRIFT_SAMPLE vectors of `collection` in the current model's space (texts re-embedded if another model made it)."""
    rows = list(milvus.iterate(client, collection, [fields["vector"], fields["text"]], limit=DRIFT_SAMPLE))
    if not rows:
        return None
    made_by = milvus.properties(client, collection).get(f"{milvus.PROPERTY_PREFIX}embeddingModel")
    if made_by == model and len(rows[0][fields["vector"]]) == encoder.get_embedding_dimension():
        return np.asarray([r[fields["vector"]] for r in rows], dtype=np.float32)
    return embed(encoder, [r[fields["text"]] for r in rows], batch_size, normalize)


def drift_report(reference: np.ndarray | None, current: np.ndarray | None) -> dict[str, Any]:
    """The `drift` block (DriftStatus) and `driftDetail`; empty when there is nothing to compare with."""
    if reference is None or current is None:
        return {}
    drift = embedding_drift(reference, current)
    score = round(drift.centroid_distance, 6)
    return {"drift": {"metric": "embedding", "score": score, "threshold": DRIFT_THRESHOLD,
                      "drifted": score > DRIFT_THRESHOLD, "feature": "centroid", "evaluatedAt": now_rfc3339()},
            "driftDetail": {"centroidCosineDistance": score, "maxDimensionPsi": round(drift.max_psi, 6),
                            "maxPsiDimension": drift.max_psi_dimension, "referenceSamples": drift.reference_size,
                            "currentSamples": drift.current_size}}


def serving_report(client: Any, collection: str | None, fields: dict[str, str]) -> dict[str, Any]:
    """What the alias serves now, as the status reads it (kept while a new collection is built)."""
    if collection is None:
        return {}
    props = milvus.properties(client, collection)
    served = {"physicalCollection": collection, "vectors": milvus.row_count(client, collection),
              "embeddingModel": props.get(f"{milvus.PROPERTY_PREFIX}embeddingModel"),
              "ingestedAt": props.get(f"{milvus.PROPERTY_PREFIX}ingestedAt"),
              "sourceDigest": props.get(f"{milvus.PROPERTY_PREFIX}sourceDigest")}
    return {k: v for k, v in served.items() if v is not None}


def _publish(reporter: Reporter, values: dict[str, Any]) -> None:
    reporter.state.update(values)
    reporter.flush()


def upsert_missing(client: Any, target: str, chunks: list[Chunk], stored: set[str], config: dict[str, Any],
                   encoder: Any, reporter: Reporter) -> int:
    """Embed and upsert the chunks `stored` lacks, UPSERT_BATCH at a time; how many."""
    fields, embedding = config["milvus"]["fields"], config["embedding"]
    missing = [c for c in chunks if c.id not in stored]
    normalize = embedding.get("metric", "COSINE") == "COSINE"
    for start in range(0, len(missing), UPSERT_BATCH):
        batch = missing[start:start + UPSERT_BATCH]
        vectors = embed(encoder, [c.text for c in batch], embedding.get("batchSize", 32), normalize)
        milvus.upsert(client, target, _rows(batch, vectors, fields))
        reporter.update("progress", {"stage": "Embedding", "embedded": start + len(batch), "toEmbed": len(missing)})
    return len(missing)


def ingest(config: dict[str, Any], reporter: Reporter, token: str | None = None) -> dict[str, Any]:
    """Run the whole ingest; returns the final report (also sent through `reporter`)."""
    spec_milvus, embedding, source = config["milvus"], config["embedding"], config["source"]
    fields, alias, target = spec_milvus["fields"], spec_milvus["alias"], spec_milvus["collection"]
    documents = read_documents(source["uri"], source.get("include") or ["**/*"])
    chunking = source.get("chunking") or {}
    chunks = chunk_documents(documents, chunking.get("size", 512), chunking.get("overlap", 64))
    digest = source_digest(documents)
    # Not sent yet: the first report also says what the alias serves, so status never loses it mid-run.
    reporter.state["progress"] = {"stage": "Loading", "documents": len(documents), "chunks": len(chunks)}
    encoder = load_model(embedding["model"], embedding["dimension"])
    normalize = embedding.get("metric", "COSINE") == "COSINE"
    batch_size = embedding.get("batchSize", 32)

    if milvus.is_lite(spec_milvus["uri"]):
        milvus.check_lite_index(config["index"]["index_type"])
    with milvus.connect(spec_milvus["uri"], token) as client:
        previous = milvus.check_alias_owner(client, alias, owner(config))
        if previous:
            milvus.load(client, previous)
        _publish(reporter, serving_report(client, previous, fields))
        reference = sample_vectors(client, previous, fields, encoder, embedding["model"], batch_size, normalize) \
            if previous else None
        milvus.ensure_collection(client, target, fields, embedding["dimension"], config["index"],
                                 {milvus.OWNER_PROPERTY: owner(config),
                                  f"{milvus.PROPERTY_PREFIX}embeddingModel": embedding["model"]})
        stored = milvus.all_ids(client, target, fields["primary"])
        embedded = upsert_missing(client, target, chunks, stored, config, encoder, reporter)
        stale = sorted(stored - {c.id for c in chunks})
        milvus.delete_ids(client, target, stale)
        ingested_at = now_rfc3339()
        milvus.set_properties(client, target, {f"{milvus.PROPERTY_PREFIX}sourceDigest": digest,
                                               f"{milvus.PROPERTY_PREFIX}ingestedAt": ingested_at})
        milvus.point_alias(client, alias, target, owner(config))
        current = sample_vectors(client, target, fields, encoder, embedding["model"], batch_size, normalize)
        final = {
            "physicalCollection": target, "previousCollection": previous, "vectors": milvus.row_count(client, target),
            "ingestedAt": ingested_at, "embeddingModel": embedding["model"], "sourceDigest": digest,
            "index": milvus.index_state(client, target, fields["vector"]),
            "changes": Changes(len(documents), len(chunks), embedded, len(stale)).wire(),
            **drift_report(reference, current),
        }
    final = {k: v for k, v in final.items() if v is not None}
    reporter.update("progress", {"stage": "Done"})
    _publish(reporter, final)
    return final


def drop(config: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    """Drop the alias and the collections this config's object owns; what was dropped."""
    uri = config["milvus"]["uri"]
    database = milvus.lite_path(uri)
    if database is not None and not database.exists():
        return {"dropped": [], "reason": f"the Milvus Lite database {uri} does not exist"}
    with milvus.connect(uri, token) as client:
        return {"dropped": milvus.drop_index(client, config["milvus"]["alias"], owner(config))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llmops-ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the ingest.json the operator wrote")
    parser.add_argument("--drop", action="store_true", help="drop what the object built instead of ingesting")
    args = parser.parse_args(argv)
    config_path = Path(args.config)
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as err:
        print(f"llmops ingest: cannot read the config {config_path}: {err}", file=sys.stderr)
        return 2
    # query_iterator warns on every page that Milvus Lite has no MVCC timestamp; that is expected.
    logging.getLogger("pymilvus").setLevel(logging.ERROR)
    token_env = config["milvus"].get("tokenEnv")
    token = os.environ.get(token_env) if token_env else None
    if args.drop:
        return finish("llmops ingest --drop", lambda: drop(config, token), Reporter(None), (milvus.MilvusError,))
    reporter = Reporter(config.get("report"))
    return finish("llmops ingest", lambda: ingest(config, reporter, token), reporter, INGEST_ERRORS)


if __name__ == "__main__":
    sys.exit(main())
