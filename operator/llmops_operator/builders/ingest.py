"""The ingest children of a VectorIndex: its config ConfigMap, the ingest Job and the reindex CronJob (pure).

The ingest runtime reads one JSON file (`ingest_config`): it embeds the source's chunks into the
physical collection `<alias>_<vectors hash>` (created with the index when missing; chunks upserted
by content id, chunks whose document went away deleted), then points the alias at it, and reports
what it did to the object's progress ConfigMap. The vectors hash covers everything that changes the
vectors or their index, so a new model, dimension, metric, index, source or chunking builds a new
collection while the alias keeps serving the old one until the swap. The hash also covers the
object's namespace and name: one Milvus serves many namespaces, and the same VectorIndex in two of
them must never write into (or delete chunks from) one collection. Index keys are pymilvus's own
(`IndexParams.add_index(field_name, index_type, metric_type, params)`).

The Job and its ConfigMap are named by a hash of what the Job will do (its config, the Secret and source
it reads: `run_hash`), never of the image that does it: a new default runtime image does not ingest again.
A Job is created once (its pod template is immutable); a new config makes a new one and the glue prunes
the old.

`build_cleanup` is what the finalizer runs when the object goes with deletionPolicy Delete: the same
runtime with `--drop`, in the runtime image (which has pymilvus), with the Milvus token from the
Secret as an environment variable (the kubelet reads it, not the operator) and the claims mounted.
"""

from __future__ import annotations

import json
from typing import Any

from llmops_operator.api.v1alpha1.vectorindex import VectorIndex
from llmops_operator.builders import batchjob
from llmops_operator.builders.naming import owned_name, short_hash
from llmops_operator.builders.progress import progress_target

MODULE = "llmops_operator.entrypoints.ingest"
CONFIG_KEY = "ingest.json"
COMPONENT = "ingest"
TOKEN_ENV = "MILVUS_TOKEN"
SOURCE_DIR = "/var/lib/llmops/source"
"""Where a source ConfigMap is mounted (outside CONFIG_DIR: a volume cannot nest in a ConfigMap mount)."""
FIELDS = {"primary": "id", "vector": "vector", "text": "text", "source": "source"}
"""Field names of the collection schema the runtime creates."""
NAME_LENGTH = 52
"""Job pods are named <job>-<5 chars>; leave them room under 63."""


CLEANUP_COMPONENT = "cleanup"
CLEANUP_DEADLINE_SECONDS = 600
"""How long the cleanup Job may run, retries included, before the Job controller fails it."""


def vectors_hash(obj: VectorIndex) -> str:
    """Hash of whose vectors these are and what defines them and their index (not batchSize, only throughput)."""
    spec = obj.spec
    embedding = spec.embedding.model_dump(mode="json", exclude={"batch_size"})
    return short_hash({"owner": owner(obj), "embedding": embedding, "index": spec.index.model_dump(mode="json"),
                       "source": spec.source.model_dump(mode="json")})


def owner(obj: VectorIndex) -> str:
    """namespace/name: the llmops.owner property of every collection the object builds."""
    return f"{obj.namespace}/{obj.name}"


def physical_collection(obj: VectorIndex) -> str:
    return f"{obj.collection}_{vectors_hash(obj)}"


def source_uri(obj: VectorIndex) -> str:
    """Where the documents are, as the runtime reads them (pvc:// resolves under /mnt/pvc)."""
    source = obj.spec.source
    if source.config_map_ref:
        return f"file://{SOURCE_DIR}"
    if source.pvc:
        return f"pvc://{source.pvc.claim_name}/{source.pvc.path.strip('/')}".rstrip("/")
    return source.uri


def ingest_config(obj: VectorIndex) -> dict[str, Any]:
    spec = obj.spec
    index_params = {"field_name": FIELDS["vector"], "index_type": spec.index.type, "metric_type": spec.embedding.metric,
                    "params": dict(spec.index.params or {})}
    milvus = {"uri": spec.milvus.uri, "alias": obj.collection, "collection": physical_collection(obj), "fields": FIELDS}
    if spec.milvus.secret_ref:
        milvus["tokenEnv"] = TOKEN_ENV
    return {
        "object": {"kind": "VectorIndex", "namespace": obj.namespace, "name": obj.name},
        "milvus": milvus,
        "embedding": spec.embedding.model_dump(mode="json", by_alias=True),
        "index": index_params,
        "source": {"uri": source_uri(obj), "include": list(spec.source.include),
                   "chunking": spec.source.chunking.model_dump(mode="json", by_alias=True)},
        "report": progress_target(obj),
    }


def _secret(obj: VectorIndex) -> dict[str, Any] | None:
    return obj.spec.milvus.secret_ref.model_dump(mode="json") if obj.spec.milvus.secret_ref else None


def run_hash(obj: VectorIndex, config: dict[str, Any]) -> str:
    """The ingest run's identity: its config and what it reads besides (not the image, an operator default)."""
    return short_hash({"config": config, "secret": _secret(obj),
                       "configMap": obj.spec.source.config_map_ref.name if obj.spec.source.config_map_ref else None})


def config_map_name(obj: VectorIndex, digest: str) -> str:
    return owned_name(obj, "ingest", digest)


def job_name(obj: VectorIndex, digest: str) -> str:
    return owned_name(obj, "ingest", digest, max_length=NAME_LENGTH)


def cronjob_name(obj: VectorIndex) -> str:
    """CronJob names are limited to 52 characters (its Jobs add an 11-character suffix)."""
    return owned_name(obj, "reindex", max_length=52)


def _token_env(obj: VectorIndex) -> list[dict[str, Any]]:
    ref = obj.spec.milvus.secret_ref
    return [{"name": TOKEN_ENV, "valueFrom": {"secretKeyRef": ref.wire()}}] if ref else []


def _pod(obj: VectorIndex, image: str, config_map: str, component: str) -> dict[str, Any]:
    spec = obj.spec
    env = _token_env(obj)
    extra = []
    if spec.source.config_map_ref:
        extra.append(({"name": "source", "configMap": {"name": spec.source.config_map_ref.name}},
                      {"name": "source", "mountPath": SOURCE_DIR, "readOnly": True}))
    claims = batchjob.pvc_claims([spec.milvus.uri, source_uri(obj)])
    return batchjob.pod_template(obj, component, image=image, module=MODULE, config_map=config_map,
                                 config_key=CONFIG_KEY, claims=claims, env=env, extra_volumes=extra)


def build_ingest(obj: VectorIndex, image: str) -> list[dict[str, Any]]:
    """The config ConfigMap, the one-shot ingest Job and, with spec.reindexSchedule, the reindex CronJob."""
    config = ingest_config(obj)
    digest = run_hash(obj, config)
    cm_name = config_map_name(obj, digest)
    children = [
        batchjob.config_map(obj, cm_name, COMPONENT, {CONFIG_KEY: json.dumps(config, indent=2, sort_keys=True)}, digest),
        batchjob.build_job(obj, job_name(obj, digest), COMPONENT, _pod(obj, image, cm_name, COMPONENT)),
    ]
    if obj.spec.reindex_schedule:
        children.append(batchjob.build_cronjob(obj, cronjob_name(obj), "reindex", obj.spec.reindex_schedule,
                                               _pod(obj, image, cm_name, "reindex")))
    return children


def cleanup_config(obj: VectorIndex) -> dict[str, Any]:
    """What `--drop` reads: whose collections, behind which alias, in which Milvus."""
    milvus = {"uri": obj.spec.milvus.uri, "alias": obj.collection}
    if obj.spec.milvus.secret_ref:
        milvus["tokenEnv"] = TOKEN_ENV
    return {"object": {"kind": "VectorIndex", "namespace": obj.namespace, "name": obj.name}, "milvus": milvus}


def cleanup_job_name(obj: VectorIndex, digest: str) -> str:
    return owned_name(obj, CLEANUP_COMPONENT, digest, max_length=NAME_LENGTH)


def build_cleanup(obj: VectorIndex, image: str) -> list[dict[str, Any]]:
    """The config ConfigMap and the Job that drops the alias and the collections the object built."""
    config = cleanup_config(obj)
    digest = short_hash({"config": config, "secret": _secret(obj)})
    cm_name = owned_name(obj, CLEANUP_COMPONENT, digest)
    pod = batchjob.pod_template(obj, CLEANUP_COMPONENT, image=image, module=MODULE, config_map=cm_name,
                                config_key=CONFIG_KEY, claims=batchjob.pvc_claims([obj.spec.milvus.uri]),
                                env=_token_env(obj))
    pod["spec"]["containers"][0]["command"].append("--drop")
    job = batchjob.build_job(obj, cleanup_job_name(obj, digest), CLEANUP_COMPONENT, pod)
    job["spec"]["activeDeadlineSeconds"] = CLEANUP_DEADLINE_SECONDS
    return [batchjob.config_map(obj, cm_name, CLEANUP_COMPONENT, {CONFIG_KEY: json.dumps(config, sort_keys=True)},
                                digest), job]
