"""What the guardrail transformer needs to retrieve from a VectorIndex (pure).

`retrieval_config` is the JSON the runtime reads from LLMOPS_RETRIEVAL: the index's Milvus URI and alias (never
a physical collection, so a re-embedding swap is served without a restart), its embedding model, dimension and
metric, and the service's search bounds. `attach_retrieval` adds it to the KServe InferenceService's transformer:
the config in env, the Milvus token as a secretKeyRef (never its value), a pvc:// Milvus Lite database's claim
as a volume, and a hash annotation so a change rolls the transformer.
"""

from __future__ import annotations

import json
from typing import Any

from llmops_operator.api.v1alpha1.common import GROUP
from llmops_operator.api.v1alpha1.inferenceservice import InferenceService
from llmops_operator.api.v1alpha1.vectorindex import VectorIndex
from llmops_operator.builders.batchjob import PVC_MOUNT_ROOT, pvc_claims
from llmops_operator.builders.ingest import FIELDS
from llmops_operator.builders.kserve import KSERVE_API_VERSION
from llmops_operator.builders.naming import child_name, short_hash

RETRIEVAL_ENV = "LLMOPS_RETRIEVAL"
TOKEN_ENV = "LLMOPS_MILVUS_TOKEN"
RETRIEVAL_HASH = f"{GROUP}/retrieval-hash"
"""Annotation: hash of the retrieval config; a new value rolls the transformer."""
QUERY_REFERENCE_ENV = "LLMOPS_QUERY_REFERENCE"
QUERY_REFERENCE_DIR = "/etc/llmops/query-reference"
SEARCH_EF_FLOOR = 64
"""HNSW search breadth: at least this, and never below topK."""


def retrieval_config(obj: InferenceService, index: VectorIndex) -> dict[str, Any]:
    spec = obj.spec.retrieval
    milvus: dict[str, Any] = {"uri": index.spec.milvus.uri, "alias": index.collection, "fields": dict(FIELDS)}
    if index.spec.milvus.secret_ref:
        milvus["tokenEnv"] = TOKEN_ENV
    search: dict[str, Any] = {"topK": spec.top_k, "queryVariable": spec.query_variable,
                              "maxQueryChars": spec.max_query_chars, "maxContextChars": spec.max_context_chars}
    if spec.score_threshold is not None:
        search["scoreThreshold"] = spec.score_threshold
    if index.spec.index.type == "HNSW":
        search["params"] = {"ef": max(SEARCH_EF_FLOOR, spec.top_k)}
    return {"index": f"{index.namespace}/{index.name}", "milvus": milvus,
            "embedding": {"model": index.spec.embedding.model, "dimension": index.spec.embedding.dimension,
                          "metric": index.spec.embedding.metric},
            "search": search}


def attach_to_children(children: list[dict[str, Any]], obj: InferenceService, index: VectorIndex) -> None:
    """Wire retrieval into the KServe InferenceService among a service's children."""
    isvc = next(c for c in children if c.get("apiVersion") == KSERVE_API_VERSION and c.get("kind") == "InferenceService")
    attach_retrieval(isvc, obj, index)


def attach_retrieval(isvc: dict[str, Any], obj: InferenceService, index: VectorIndex) -> dict[str, Any]:
    """The KServe InferenceService with retrieval wired into its transformer (which spec.retrieval's
    promptReleaseRef guarantees)."""
    transformer = isvc["spec"]["transformer"]
    container = transformer["containers"][0]
    config = retrieval_config(obj, index)
    env = [{"name": RETRIEVAL_ENV, "value": json.dumps(config, sort_keys=True)}]
    if index.spec.milvus.secret_ref:
        env.append({"name": TOKEN_ENV, "valueFrom": {"secretKeyRef": index.spec.milvus.secret_ref.wire()}})
    container["env"] = [*container.get("env", []), *env]
    for claim in pvc_claims([index.spec.milvus.uri]):
        volume = child_name("pvc", claim)
        transformer.setdefault("volumes", []).append({"name": volume, "persistentVolumeClaim": {"claimName": claim}})
        container.setdefault("volumeMounts", []).append({"name": volume, "mountPath": f"{PVC_MOUNT_ROOT}/{claim}"})
    _mount_query_reference(obj, transformer, container)
    digest = short_hash({"config": config, "secret": env[1:], "drift": query_reference(obj)})
    transformer.setdefault("annotations", {})[RETRIEVAL_HASH] = digest
    return isvc


def query_reference(obj: InferenceService) -> dict[str, str] | None:
    """The drift reference the transformer embeds for query drift: with spec.drift.metric embedding only."""
    drift = obj.spec.drift
    if drift is None or drift.metric != "embedding":
        return None
    return {"name": drift.reference.config_map.name, "key": drift.reference.config_map.key}


def _mount_query_reference(obj: InferenceService, transformer: dict[str, Any], container: dict[str, Any]) -> None:
    reference = query_reference(obj)
    if reference is None:
        return
    transformer.setdefault("volumes", []).append({"name": "query-reference", "configMap": {
        "name": reference["name"], "items": [{"key": reference["key"], "path": "reference.jsonl"}]}})
    container.setdefault("volumeMounts", []).append(
        {"name": "query-reference", "mountPath": QUERY_REFERENCE_DIR, "readOnly": True})
    container["env"].append({"name": QUERY_REFERENCE_ENV, "value": f"{QUERY_REFERENCE_DIR}/reference.jsonl"})
