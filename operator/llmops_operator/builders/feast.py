"""The Feast children of a FeatureView: repository ConfigMap, apply Job, materialize Job or CronJob (pure).

The ConfigMap holds two files. `feature_store.yaml` is a real Feast repository config (project,
provider local, a file registry and a SQLite online store on the shared Feast claim, the file
offline store), loadable as it is by `feast.RepoConfig`. `featureview.json` defines the objects in
Feast's own names and arguments (Entity(name, join_keys, value_type), FileSource(name, path,
timestamp_field, created_timestamp_column), FeatureView(name, entities, schema=[Field(name,
dtype)], ttl, online, source)) plus what the runtimes need: materialization window, drift
settings, where to report. The operator never imports Feast.

The apply Job is named by a hash of the ConfigMap's content (`content_hash`; never of the image, an
operator default), so a changed definition is applied once by a new Job. On delete the finalizer runs
the same runtime with --delete in a removal Job (`build_removal`), so the registry is only ever touched
from pods that mount the Feast claim. The materialize runtime waits until the view is in the registry
before it materializes (a one-shot Job may start beside the apply Job).
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from llmops_operator.api.v1alpha1.featureview import FeatureView
from llmops_operator.api.v1alpha1.units import parse_duration
from llmops_operator.builders import batchjob
from llmops_operator.builders.naming import owned_name, short_hash
from llmops_operator.builders.progress import progress_target

APPLY_MODULE = "llmops_operator.entrypoints.feast_apply"
MATERIALIZE_MODULE = "llmops_operator.entrypoints.feast_materialize"
REPO_KEY = "feature_store.yaml"
DEFINITION_KEY = "featureview.json"
FEAST_CLAIM = "llmops-feast"
"""The PersistentVolumeClaim holding every project's registry and online store (ReadWriteMany in a cluster)."""
ENTITY_KEY_SERIALIZATION_VERSION = 3
VALUE_TYPES = {"Float32": "FLOAT", "Float64": "DOUBLE", "Int32": "INT32", "Int64": "INT64", "String": "STRING",
               "Bool": "BOOL"}
"""Entity value types as feast.ValueType member names."""
NAME_LENGTH = 52
APPLY_COMPONENT = "feast-apply"
MATERIALIZE_COMPONENT = "materialize"
REMOVE_COMPONENT = "feast-remove"


def store_dir(obj: FeatureView) -> str:
    """The project's directory inside the pods (the Feast claim is mounted under /mnt/pvc)."""
    return f"{batchjob.PVC_MOUNT_ROOT}/{FEAST_CLAIM}/{obj.spec.project}"


def repo_config(obj: FeatureView) -> dict[str, Any]:
    """feature_store.yaml, in Feast's RepoConfig keys."""
    root = store_dir(obj)
    return {
        "project": obj.spec.project,
        "provider": "local",
        "registry": {"registry_type": "file", "path": f"{root}/registry.db"},
        "online_store": {"type": "sqlite", "path": f"{root}/online_store.db"},
        "offline_store": {"type": "file"},
        "entity_key_serialization_version": ENTITY_KEY_SERIALIZATION_VERSION,
    }


def source_name(obj: FeatureView) -> str:
    """The Feast data source the view reads: the referenced one, or <view>_source for a file."""
    source = obj.spec.source
    return source.data_source.name if source.data_source else f"{obj.feast_name}_source"


def data_source(obj: FeatureView) -> dict[str, Any]:
    source = obj.spec.source
    if source.data_source:
        return {"reference": source.data_source.name}
    file = source.file
    file_source = {"name": source_name(obj), "path": file.path, "timestamp_field": file.timestamp_field,
                   "created_timestamp_column": file.created_timestamp_column or "", "file_format": "parquet"}
    if file.format != "parquet":
        file_source["convert_from"] = file.format
    return {"file_source": file_source}


def definition(obj: FeatureView) -> dict[str, Any]:
    """featureview.json: the Feast objects in Feast's names, then the runtimes' own settings."""
    spec = obj.spec
    tags = {"llmops.dev/featureview": f"{obj.namespace}/{obj.name}"}
    view = {
        "name": obj.feast_name, "entities": [e.name for e in spec.entities],
        "schema": [{"name": f.name, "dtype": f.dtype} for f in spec.features],
        "ttl_seconds": int(parse_duration(spec.ttl)), "online": spec.online, "source": source_name(obj), "tags": tags,
    }
    return {
        "object": {"kind": "FeatureView", "namespace": obj.namespace, "name": obj.name},
        "repoConfig": REPO_KEY,
        "entities": [{"name": e.name, "join_keys": list(e.join_keys), "value_type": VALUE_TYPES[e.value_type],
                      "tags": tags} for e in spec.entities],
        "data_source": data_source(obj),
        "feature_view": view,
        "materialize": {"lookback_seconds": int(parse_duration(spec.materialize.lookback)), "incremental": True},
        "drift": spec.drift.model_dump(mode="json", by_alias=True) if spec.drift else None,
        "report": progress_target(obj),
    }


def repo_files(obj: FeatureView) -> dict[str, str]:
    return {REPO_KEY: yaml.safe_dump(repo_config(obj), sort_keys=False),
            DEFINITION_KEY: json.dumps(definition(obj), indent=2, sort_keys=True)}


def reader_files(obj: FeatureView) -> dict[str, str]:
    """What a reader of the view's store needs (a TrainingJob's run config): the repository config and the
    Feast objects, without the Jobs' materialization, drift and report settings, so editing those does
    not change the reader's run."""
    reader = {k: v for k, v in definition(obj).items() if k not in ("materialize", "drift", "report")}
    return {REPO_KEY: yaml.safe_dump(repo_config(obj), sort_keys=False),
            DEFINITION_KEY: json.dumps(reader, indent=2, sort_keys=True)}


def store_claims(obj: FeatureView) -> list[str]:
    """The claims a pod reading the view's store mounts: the Feast claim and the source file's claim."""
    return batchjob.pvc_claims([f"pvc://{FEAST_CLAIM}/{obj.spec.project}",
                                obj.spec.source.file.path if obj.spec.source.file else None])


def content_hash(files: dict[str, str]) -> str:
    return short_hash({"files": files})


def config_map_name(obj: FeatureView, digest: str) -> str:
    return owned_name(obj, "feast", digest)


def apply_job_name(obj: FeatureView, digest: str) -> str:
    return owned_name(obj, "apply", digest, max_length=NAME_LENGTH)


def materialize_name(obj: FeatureView, digest: str | None) -> str:
    """The one-shot Job is named by content; the CronJob is stable (52 characters at most)."""
    return owned_name(obj, "materialize", digest or "", max_length=NAME_LENGTH)


def removal_job_name(obj: FeatureView, digest: str) -> str:
    return owned_name(obj, "feast-remove", digest, max_length=NAME_LENGTH)


def _pod(obj: FeatureView, image: str, config_map: str, component: str, module: str) -> dict[str, Any]:
    return batchjob.pod_template(obj, component, image=image, module=module, config_map=config_map,
                                 config_key=DEFINITION_KEY, claims=store_claims(obj))


def build_feast(obj: FeatureView, image: str) -> list[dict[str, Any]]:
    """The repository ConfigMap, the apply Job and, for an online view, the materialize Job (and CronJob)."""
    files = repo_files(obj)
    digest = content_hash(files)
    cm_name = config_map_name(obj, digest)
    children = [
        batchjob.config_map(obj, cm_name, "feast-repo", files, digest),
        batchjob.build_job(obj, apply_job_name(obj, digest), APPLY_COMPONENT,
                           _pod(obj, image, cm_name, APPLY_COMPONENT, APPLY_MODULE)),
    ]
    if not obj.spec.online:
        return children
    pod = _pod(obj, image, cm_name, MATERIALIZE_COMPONENT, MATERIALIZE_MODULE)
    # Each definition is materialized once right away; a schedule then keeps the online store fresh.
    children.append(batchjob.build_job(obj, materialize_name(obj, digest), MATERIALIZE_COMPONENT, pod))
    schedule = obj.spec.materialize.schedule
    if schedule:
        children.append(batchjob.build_cronjob(obj, materialize_name(obj, None), MATERIALIZE_COMPONENT, schedule, pod))
    return children


def build_removal(obj: FeatureView, image: str) -> list[dict[str, Any]]:
    """The repository ConfigMap and a Job that removes what this object registered (apply runtime, --delete)."""
    files = repo_files(obj)
    digest = content_hash(files)
    cm_name = config_map_name(obj, digest)
    pod = _pod(obj, image, cm_name, REMOVE_COMPONENT, APPLY_MODULE)
    pod["spec"]["containers"][0]["command"].append("--delete")
    return [batchjob.config_map(obj, cm_name, "feast-repo", files, digest),
            batchjob.build_job(obj, removal_job_name(obj, digest), REMOVE_COMPONENT, pod)]
