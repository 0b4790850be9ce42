"""VectorIndex: the model and its CRD rules, the ingest children, and the status reduced from the Job."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from llmops_operator.api.crdgen import crd
from llmops_operator.api.v1alpha1 import VectorIndex
from llmops_operator.builders.ingest import physical_collection, vectors_hash
from llmops_operator.core.contract import Context, InvalidSpec, parse
from llmops_operator.controllers.vectorindex import VectorIndexReconciler
from llmops_operator.core.settings import Settings

from spec_options import with_

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
IMAGE = "registry.example/llmops:1.0"


def ctx() -> Context:
    settings = Settings(runtime_image=IMAGE)
    return Context(settings=settings, catalog=settings.catalog, now=NOW)


def vector_index(*options, name="docs-index") -> VectorIndex:
    spec = {"milvus": {"uri": "http://milvus.milvus:19530"},
            "embedding": {"model": "sentence-transformers/all-MiniLM-L6-v2", "dimension": 384},
            "source": {"pvc": {"claimName": "docs", "path": "guides"}}}
    for option in options:
        option(spec)
    return parse(VectorIndex, {"apiVersion": "llmops.dev/v1alpha1", "kind": "VectorIndex",
                               "metadata": {"name": name, "namespace": "ml", "generation": 1}, "spec": spec})


def children(obj: VectorIndex) -> list[dict]:
    return VectorIndexReconciler().children(obj, ctx(), {})


def by_kind(built: list[dict], kind: str) -> list[dict]:
    return [c for c in built if c["kind"] == kind]


def ingest_config(obj: VectorIndex) -> dict:
    config_map = next(c for c in children(obj) if c["metadata"]["labels"]["app.kubernetes.io/component"] == "ingest"
                      and c["kind"] == "ConfigMap")
    return json.loads(config_map["data"]["ingest.json"])


# ----- model --------------------------------------------------------------------------------------

def test_defaults_and_collection_name():
    obj = vector_index()
    assert obj.spec.embedding.metric == "COSINE"
    assert obj.spec.index.type == "HNSW"
    assert obj.spec.source.include == ["**/*.md", "**/*.txt"]
    assert (obj.spec.source.chunking.size, obj.spec.source.chunking.overlap) == (512, 64)
    assert obj.collection == "docs_index"
    assert vector_index(name="7-docs").collection == "_7_docs"
    assert vector_index(with_("milvus.collection", "kb")).collection == "kb"


@pytest.mark.parametrize("option, message", [
    (with_("source.uri", "s3://bucket/docs"),
     "spec.source: set exactly one of source.configMapRef, source.pvc and source.uri"),
    (with_("source.pvc", None), "spec.source: set exactly one of source.configMapRef, source.pvc and source.uri"),
    (with_("source.chunking", {"size": 100, "overlap": 100}),
     "spec.source.chunking: chunking.overlap must be smaller than chunking.size"),
    (with_("source.chunking", {"overlap": 600}),
     "spec.source.chunking: chunking.overlap must be smaller than chunking.size"),
    (with_("index", {"type": "IVF_FLAT", "params": {"M": 16}}),
     "spec.index: index.params: HNSW takes M and efConstruction, IVF_FLAT takes nlist, FLAT and AUTOINDEX take none"),
    (with_("index", {"params": {"nlist": 128}}),
     "spec.index: index.params: HNSW takes M and efConstruction, IVF_FLAT takes nlist, FLAT and AUTOINDEX take none"),
    (with_("embedding.dimension", 0), "spec.embedding.dimension: Input should be greater than or equal to 1"),
    (with_("embedding.dimension", 32769), "spec.embedding.dimension: Input should be less than or equal to 32768"),
    (with_("embedding.metric", "HAMMING"), "spec.embedding.metric: Input should be 'COSINE', 'L2' or 'IP'"),
    (with_("milvus.uri", "milvus.db"), "spec.milvus.uri: String should match pattern"),
    (with_("milvus.collection", "my-docs"), "spec.milvus.collection: String should match pattern"),
    (with_("reindexSchedule", "daily"), "spec.reindexSchedule: String should match pattern"),
])
def test_bad_specs_name_the_field(option, message):
    with pytest.raises(InvalidSpec) as err:
        vector_index(option)
    assert str(err.value).startswith(message)


def test_good_index_params_per_type():
    assert vector_index(with_("index", {"type": "IVF_FLAT", "params": {"nlist": 128}})).spec.index.params == {"nlist": 128}
    assert vector_index(with_("index", {"type": "FLAT"})).spec.index.params is None


def test_crd_carries_the_cel_rules_and_columns():
    version = crd(VectorIndex)["spec"]["versions"][0]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    rules = lambda node: {r["message"]: r["rule"] for r in node.get("x-kubernetes-validations", [])}  # noqa: E731
    source = spec["source"]
    assert rules(source)["set exactly one of source.configMapRef, source.pvc and source.uri"] == \
        "[has(self.configMapRef), has(self.pvc), has(self.uri)].filter(x, x).size() == 1"
    assert "self.overlap < (has(self.size) ? self.size : 512)" in \
        rules(source["properties"]["chunking"])["chunking.overlap must be smaller than chunking.size"]
    assert "index.params: HNSW takes M and efConstruction, IVF_FLAT takes nlist, FLAT and AUTOINDEX take none" in \
        rules(spec["index"])
    assert spec["index"]["properties"]["params"]["maxProperties"] == 8
    assert source["properties"]["include"]["maxItems"] == 32
    assert rules(spec["milvus"]["properties"]["collection"]) == {"milvus.collection is immutable": "self == oldSelf"}
    assert spec["embedding"]["properties"]["dimension"]["maximum"] == 32768
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Ready", "Phase", "Vectors", "Model", "CorpusDrift", "Age"]
    drift = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["drift"]["description"]
    assert drift.startswith("Corpus drift") and "not queries" in drift


# ----- builders -----------------------------------------------------------------------------------

def test_children_in_order_without_owner_references():
    built = children(vector_index())
    assert [c["kind"] for c in built] == ["ConfigMap", "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Job"]
    assert all(c["metadata"]["namespace"] == "ml" and "ownerReferences" not in c["metadata"] for c in built)
    assert all(c["metadata"]["labels"]["llmops.dev/vectorindex"] == "docs-index" for c in built)


def test_ingest_config_names_collections_and_pymilvus_index():
    obj = vector_index(with_("index", {"type": "HNSW", "params": {"M": 16, "efConstruction": 200}}),
                       with_("embedding.metric", "IP"))
    config = ingest_config(obj)
    assert config["milvus"]["alias"] == "docs_index"
    assert config["milvus"]["collection"] == f"docs_index_{vectors_hash(obj)}" == physical_collection(obj)
    assert "tokenEnv" not in config["milvus"]
    assert config["index"] == {"field_name": "vector", "index_type": "HNSW", "metric_type": "IP",
                               "params": {"M": 16, "efConstruction": 200}}
    assert config["embedding"] == {"model": "sentence-transformers/all-MiniLM-L6-v2", "dimension": 384,
                                   "metric": "IP", "batchSize": 32}
    assert config["source"] == {"uri": "pvc://docs/guides", "include": ["**/*.md", "**/*.txt"],
                                "chunking": {"size": 512, "overlap": 64}}
    assert config["report"] == {"namespace": "ml", "configMap": "docs-index-vidx-progress", "key": "progress.json"}


def test_ingest_job_runs_the_runtime_with_its_config_claims_and_token():
    obj = vector_index(with_("milvus.uri", "pvc://vectors/milvus.db"),
                       with_("milvus.secretRef", {"name": "milvus", "key": "token"}))
    built = children(obj)
    config_map, job = built[-2], built[-1]
    assert job["metadata"]["name"] == config_map["metadata"]["name"]
    assert job["metadata"]["name"].startswith("docs-index-vidx-ingest-")
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == IMAGE
    assert container["command"] == ["python", "-m", "llmops_operator.entrypoints.ingest", "--config", "/etc/llmops/ingest.json"]
    assert container["env"] == [{"name": "MILVUS_TOKEN", "valueFrom": {"secretKeyRef": {"name": "milvus", "key": "token"}}}]
    assert pod["volumes"] == [
        {"name": "config", "configMap": {"name": config_map["metadata"]["name"]}},
        {"name": "pvc-vectors", "persistentVolumeClaim": {"claimName": "vectors"}},
        {"name": "pvc-docs", "persistentVolumeClaim": {"claimName": "docs"}},
    ]
    assert [m["mountPath"] for m in container["volumeMounts"]] == ["/etc/llmops", "/mnt/pvc/vectors", "/mnt/pvc/docs"]
    assert pod["serviceAccountName"] == "docs-index-vidx-reporter"
    assert pod["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] == 3
    assert "ttlSecondsAfterFinished" not in job["spec"]
    assert "app.kubernetes.io/managed-by" not in job["spec"]["template"]["metadata"]["labels"]
    assert json.loads(config_map["data"]["ingest.json"])["milvus"]["tokenEnv"] == "MILVUS_TOKEN"


def test_config_map_source_is_mounted_outside_the_config_dir():
    obj = vector_index(with_("source.pvc", None), with_("source.configMapRef", {"name": "handbook"}))
    job = children(obj)[-1]
    pod = job["spec"]["template"]["spec"]
    assert {"name": "source", "configMap": {"name": "handbook"}} in pod["volumes"]
    assert {"name": "source", "mountPath": "/var/lib/llmops/source", "readOnly": True} in pod["containers"][0]["volumeMounts"]
    assert ingest_config(obj)["source"]["uri"] == "file:///var/lib/llmops/source"


def test_a_model_change_makes_a_new_job_and_collection_but_batch_size_only_a_new_job():
    base = vector_index()
    other_model = vector_index(with_("embedding.model", "BAAI/bge-small-en-v1.5"))
    bigger_batch = vector_index(with_("embedding.batchSize", 128))
    assert physical_collection(other_model) != physical_collection(base)
    assert children(other_model)[-1]["metadata"]["name"] != children(base)[-1]["metadata"]["name"]
    assert physical_collection(bigger_batch) == physical_collection(base)
    assert children(bigger_batch)[-1]["metadata"]["name"] != children(base)[-1]["metadata"]["name"]
    assert children(vector_index())[-1]["metadata"]["name"] == children(base)[-1]["metadata"]["name"]


def test_reindex_schedule_adds_a_forbid_cronjob():
    built = children(vector_index(with_("reindexSchedule", "0 3 * * *")))
    cronjob = built[-1]
    assert cronjob["kind"] == "CronJob" and cronjob["metadata"]["name"] == "docs-index-vidx-reindex"
    assert cronjob["spec"]["schedule"] == "0 3 * * *"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    template = cronjob["spec"]["jobTemplate"]
    assert "app.kubernetes.io/managed-by" not in template["metadata"]["labels"]
    assert template["spec"]["template"]["spec"]["volumes"][0] == built[-2]["spec"]["template"]["spec"]["volumes"][0]


# ----- status -------------------------------------------------------------------------------------

def job_status(**status):
    def option(job):
        job["status"] = status
    return option


def complete(when="2026-05-01T11:00:00Z"):
    return job_status(succeeded=1, completionTime=when,
                      conditions=[{"type": "Complete", "status": "True", "reason": "CompletionsReached"}])


def failed(reason="BackoffLimitExceeded", message="Job has reached the specified backoff limit"):
    return job_status(failed=4, conditions=[{"type": "Failed", "status": "True", "reason": reason, "message": message}])


def reported(**report):
    def option(progress):
        progress["data"] = {"progress.json": json.dumps(report)}
    return option


def observe(obj: VectorIndex, job_option=None, report_option=None):
    live = [json.loads(json.dumps(c)) for c in children(obj)]
    if job_option:
        job_option(live[-1])
    if report_option:
        report_option(live[0])
    return VectorIndexReconciler().status(obj, live, None, ctx(), {})


def conditions(observation) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in observation.conditions}


def test_pending_job_is_ingesting():
    observation = observe(vector_index())
    assert observation.phase == "Ingesting"
    assert conditions(observation) == {"Ingested": ("Unknown", "Pending"), "Ready": ("Unknown", "Pending")}
    assert observation.fields == {"collection": "docs_index"}


def test_running_job_is_ingesting():
    observation = observe(vector_index(), job_status(active=1))
    assert conditions(observation)["Ingested"] == ("Unknown", "Ingesting")
    assert observation.phase == "Ingesting"


def test_succeeded_job_is_ready_with_the_report():
    obj = vector_index()
    target = physical_collection(obj)
    observation = observe(obj, complete(), reported(physicalCollection=target, vectors=1234,
                                                     ingestedAt="2026-05-01T11:00:05Z",
                                                     embeddingModel="sentence-transformers/all-MiniLM-L6-v2"))
    assert observation.phase == "Ready"
    assert conditions(observation) == {"Ingested": ("True", "Ingested"), "Ready": ("True", "Ingested")}
    assert observation.fields == {"collection": "docs_index", "physicalCollection": target, "vectors": 1234,
                                  "lastIngested": "2026-05-01T11:00:05Z",
                                  "embeddingModel": "sentence-transformers/all-MiniLM-L6-v2"}


def test_succeeded_job_without_a_report_still_names_the_collection():
    obj = vector_index()
    observation = observe(obj, complete("2026-05-01T11:00:00Z"))
    assert observation.fields == {"collection": "docs_index", "physicalCollection": physical_collection(obj),
                                  "lastIngested": "2026-05-01T11:00:00Z",
                                  "embeddingModel": "sentence-transformers/all-MiniLM-L6-v2"}


def test_failed_job_is_failed_with_its_reason():
    observation = observe(vector_index(), failed())
    assert observation.phase == "Failed"
    assert conditions(observation) == {"Ingested": ("False", "BackoffLimitExceeded"),
                                       "Ready": ("False", "BackoffLimitExceeded")}
    assert observation.conditions[0].message == "Job has reached the specified backoff limit"


def test_reembedding_keeps_serving_the_previous_collection():
    obj = vector_index(with_("embedding.model", "BAAI/bge-small-en-v1.5"))
    observation = observe(obj, job_status(active=1),
                          reported(physicalCollection="docs_index_00000000", vectors=99, embeddingModel="old-model"))
    assert observation.phase == "Ingesting"
    assert conditions(observation) == {"Ingested": ("Unknown", "Ingesting"), "Ready": ("True", "ServingPrevious")}
    assert observation.fields["physicalCollection"] == "docs_index_00000000"
    assert observation.fields["embeddingModel"] == "old-model"


def test_drift_is_absent_until_measured_and_malformed_reports_are_ignored():
    obj = vector_index()
    assert "drift" not in observe(obj, complete()).fields
    drifted = observe(obj, complete(), reported(drift={"metric": "embedding", "score": 0.31, "threshold": 0.2,
                                                       "drifted": True}))
    assert drifted.fields["drift"] == {"metric": "embedding", "score": 0.31, "threshold": 0.2, "drifted": True}
    garbage = observe(obj, complete(), lambda cm: cm.update(data={"progress.json": "not json"}))
    assert garbage.phase == "Ready" and "vectors" not in garbage.fields


def test_example_parses_and_builds():
    document = yaml.safe_load((ROOT / "manifests" / "examples" / "vectorindex.yaml").read_text())
    obj = parse(VectorIndex, document)
    assert obj.name == "docs-index"
    assert obj.spec.embedding.model == "sentence-transformers/all-MiniLM-L6-v2" and obj.spec.embedding.dimension == 384
    assert [c["kind"] for c in children(obj)][-2:] == ["Job", "CronJob"]


# ----- tenancy and cleanup --------------------------------------------------------------------------

def test_the_same_vectorindex_in_two_namespaces_builds_two_collections():
    team_a = vector_index()
    team_b = parse(VectorIndex, {"apiVersion": "llmops.dev/v1alpha1", "kind": "VectorIndex",
                                 "metadata": {"name": "docs-index", "namespace": "other"},
                                 "spec": team_a.spec.model_dump(mode="json", by_alias=True)})
    assert team_a.collection == team_b.collection == "docs_index"
    assert physical_collection(team_a) != physical_collection(team_b)
    assert physical_collection(team_a).startswith("docs_index_")


def test_cleanup_job_drops_in_the_runtime_image_with_the_token_from_the_secret_and_the_claim():
    from llmops_operator.builders.ingest import build_cleanup, cleanup_config

    obj = vector_index(with_("milvus.secretRef", {"name": "milvus", "key": "token"}),
                       with_("milvus.uri", "pvc://vectors/milvus.db"))
    config_map, job = build_cleanup(obj, IMAGE)
    assert json.loads(config_map["data"]["ingest.json"]) == cleanup_config(obj) == {
        "object": {"kind": "VectorIndex", "namespace": "ml", "name": "docs-index"},
        "milvus": {"uri": "pvc://vectors/milvus.db", "alias": "docs_index", "tokenEnv": "MILVUS_TOKEN"}}
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == IMAGE
    assert container["command"][-1] == "--drop" and "llmops_operator.entrypoints.ingest" in container["command"]
    assert container["env"] == [{"name": "MILVUS_TOKEN",
                                 "valueFrom": {"secretKeyRef": {"name": "milvus", "key": "token"}}}]
    assert {"name": "pvc-vectors", "persistentVolumeClaim": {"claimName": "vectors"}} in pod["volumes"]
    assert job["spec"]["activeDeadlineSeconds"] > 0 and job["spec"]["backoffLimit"] >= 1
    assert job["metadata"]["name"] not in {c["metadata"]["name"] for c in children(obj)}
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "cleanup"



def test_an_ingest_job_that_never_finishes_terminating_fails_the_cleanup():
    from llmops_operator.controllers.vectorindex import STOP_TIMEOUT_SECONDS, waiting_for

    def job(deleted: str | None) -> dict:
        return {"kind": "Job", "metadata": {"name": "docs-index-ingest-1", "deletionTimestamp": deleted}}

    assert waiting_for([job("2026-05-01T11:59:00Z")], "dropping", NOW).state == "Running"
    assert waiting_for([job(None)], "dropping", NOW).state == "Running"
    stuck = waiting_for([job("2026-05-01T11:00:00Z")], "dropping", NOW)
    assert 3600 > STOP_TIMEOUT_SECONDS
    assert stuck.state == "Failed" and stuck.reason == "IngestNotStopped" and "Job docs-index-ingest-1" in stuck.message
