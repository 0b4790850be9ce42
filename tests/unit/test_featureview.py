"""FeatureView: the model and its CRD rules, the Feast children, and the status reduced from the Jobs."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from llmops_operator.api.crdgen import crd
from llmops_operator.api.v1alpha1 import FeatureView
from llmops_operator.core.contract import Context, InvalidSpec, parse
from llmops_operator.controllers.featureview import FeatureViewReconciler
from llmops_operator.core.settings import Settings

from spec_options import with_

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
IMAGE = "registry.example/llmops:1.0"
SOURCE_MESSAGE = "spec.source: set exactly one of source.file and source.dataSource"


def ctx() -> Context:
    settings = Settings(runtime_image=IMAGE)
    return Context(settings=settings, catalog=settings.catalog, now=NOW)


def feature_view(*options, name="driver-stats") -> FeatureView:
    spec = {"project": "rides", "entities": [{"name": "driver", "joinKeys": ["driver_id"]}],
            "source": {"file": {"path": "pvc://data/drivers.parquet"}},
            "features": [{"name": "conv_rate", "dtype": "Float32"}, {"name": "trips", "dtype": "Int64"}]}
    for option in options:
        option(spec)
    return parse(FeatureView, {"apiVersion": "llmops.dev/v1alpha1", "kind": "FeatureView",
                               "metadata": {"name": name, "namespace": "ml", "generation": 1}, "spec": spec})


def children(obj: FeatureView) -> list[dict]:
    return FeatureViewReconciler().children(obj, ctx(), {})


def repo(obj: FeatureView) -> dict:
    return next(c for c in children(obj) if c["metadata"]["labels"]["app.kubernetes.io/component"] == "feast-repo")


# ----- model --------------------------------------------------------------------------------------

def test_defaults():
    obj = feature_view()
    assert (obj.spec.ttl, obj.spec.online, obj.spec.materialize.lookback) == ("24h", True, "24h")
    assert obj.spec.entities[0].value_type == "Int64"
    assert obj.spec.source.file.timestamp_field == "event_timestamp" and obj.spec.source.file.format == "parquet"
    assert obj.spec.drift is None
    assert obj.feast_name == "driver_stats"


@pytest.mark.parametrize("option, message", [
    (with_("source.dataSource", {"name": "rides_source"}), SOURCE_MESSAGE),
    (with_("source", {}), SOURCE_MESSAGE),
    (with_("features", [{"name": "driver_id", "dtype": "Int64"}]),
     "spec: every joinKey of an entity must differ from the feature names"),
    (with_("features", [{"name": "x", "dtype": "Float16"}]),
     "spec.features.0.dtype: Input should be 'Float32', 'Float64', 'Int32', 'Int64', 'String' or 'Bool'"),
    (with_("features", []), "spec.features: List should have at least 1 item"),
    (with_("project", "ride-hailing"), "spec.project: String should match pattern"),
    (with_("ttl", "2 days"), "spec.ttl: String should match pattern"),
    (with_("materialize.schedule", "hourly"), "spec.materialize.schedule: String should match pattern"),
    (with_("drift", {"method": "wasserstein"}), "spec.drift.method: Input should be 'psi', 'js' or 'ks'"),
    (with_("drift", {"threshold": 0}), "spec.drift.threshold: Input should be greater than 0"),
])
def test_bad_specs_name_the_field(option, message):
    with pytest.raises(InvalidSpec) as err:
        feature_view(option)
    assert str(err.value).startswith(message)


def test_an_existing_data_source_is_accepted():
    obj = feature_view(with_("source", {"dataSource": {"name": "rides_source"}}))
    assert obj.spec.source.data_source.name == "rides_source"


def test_crd_carries_the_cel_rules_list_maps_and_columns():
    version = crd(FeatureView)["spec"]["versions"][0]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    rules = lambda node: {r["message"]: r["rule"] for r in node.get("x-kubernetes-validations", [])}  # noqa: E731
    assert rules(spec["properties"]["source"]) == {
        "set exactly one of source.file and source.dataSource": "has(self.file) != has(self.dataSource)"}
    assert "every joinKey of an entity must differ from the feature names" in rules(spec)
    assert rules(spec["properties"]["project"]) == {"project is immutable": "self == oldSelf"}
    features = spec["properties"]["features"]
    assert features["x-kubernetes-list-type"] == "map" and features["x-kubernetes-list-map-keys"] == ["name"]
    assert features["maxItems"] == 128 and spec["properties"]["entities"]["maxItems"] == 4
    assert spec["properties"]["entities"]["items"]["properties"]["joinKeys"]["maxItems"] == 8
    assert features["items"]["properties"]["dtype"]["enum"] == ["Float32", "Float64", "Int32", "Int64", "String", "Bool"]
    assert [c["name"] for c in version["additionalPrinterColumns"]] == ["Ready", "Phase", "Freshness", "Drift", "Lag", "Age"]


# ----- builders -----------------------------------------------------------------------------------

def test_children_in_order():
    kinds = [c["kind"] for c in children(feature_view())]
    assert kinds == ["ConfigMap", "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Job", "Job"]
    assert [c["kind"] for c in children(feature_view(with_("materialize.schedule", "@hourly")))][-1] == "CronJob"
    assert [c["kind"] for c in children(feature_view(with_("online", False)))][-2:] == ["ConfigMap", "Job"]


def test_feature_store_yaml_is_a_local_feast_repo_config():
    config = yaml.safe_load(repo(feature_view())["data"]["feature_store.yaml"])
    assert config == {
        "project": "rides", "provider": "local",
        "registry": {"registry_type": "file", "path": "/mnt/pvc/llmops-feast/rides/registry.db"},
        "online_store": {"type": "sqlite", "path": "/mnt/pvc/llmops-feast/rides/online_store.db"},
        "offline_store": {"type": "file"}, "entity_key_serialization_version": 3,
    }


def test_definition_uses_feast_names():
    obj = feature_view(with_("ttl", "2h"), with_("source.file.format", "csv"),
                       with_("source.file.createdTimestampColumn", "created"))
    definition = json.loads(repo(obj)["data"]["featureview.json"])
    tags = {"llmops.dev/featureview": "ml/driver-stats"}
    assert definition["entities"] == [{"name": "driver", "join_keys": ["driver_id"], "value_type": "INT64", "tags": tags}]
    assert definition["data_source"] == {"file_source": {
        "name": "driver_stats_source", "path": "pvc://data/drivers.parquet", "timestamp_field": "event_timestamp",
        "created_timestamp_column": "created", "file_format": "parquet", "convert_from": "csv"}}
    assert definition["feature_view"] == {
        "name": "driver_stats", "entities": ["driver"], "source": "driver_stats_source", "online": True,
        "schema": [{"name": "conv_rate", "dtype": "Float32"}, {"name": "trips", "dtype": "Int64"}],
        "ttl_seconds": 7200, "tags": tags}
    assert definition["materialize"] == {"lookback_seconds": 86400, "incremental": True}
    assert definition["report"] == {"namespace": "ml", "configMap": "driver-stats-fv-progress", "key": "progress.json"}
    assert definition["repoConfig"] == "feature_store.yaml"


def test_a_referenced_data_source_is_named_not_defined():
    definition = json.loads(repo(feature_view(with_("source", {"dataSource": {"name": "rides_src"}})))
                            ["data"]["featureview.json"])
    assert definition["data_source"] == {"reference": "rides_src"}
    assert definition["feature_view"]["source"] == "rides_src"


def test_apply_job_runs_feast_apply_with_the_repo_and_claims():
    built = children(feature_view())
    config_map, apply_job = built[4], built[5]
    assert apply_job["metadata"]["name"].startswith("driver-stats-fv-apply-")
    pod = apply_job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["python", "-m", "llmops_operator.entrypoints.feast_apply",
                                    "--config", "/etc/llmops/featureview.json"]
    assert container["image"] == IMAGE
    assert pod["volumes"] == [
        {"name": "config", "configMap": {"name": config_map["metadata"]["name"]}},
        {"name": "pvc-llmops-feast", "persistentVolumeClaim": {"claimName": "llmops-feast"}},
        {"name": "pvc-data", "persistentVolumeClaim": {"claimName": "data"}},
    ]
    assert pod["serviceAccountName"] == "driver-stats-fv-reporter"


def test_a_definition_change_makes_a_new_apply_job():
    name = lambda obj: children(obj)[5]["metadata"]["name"]  # noqa: E731
    assert name(feature_view()) == name(feature_view())
    assert name(feature_view(with_("ttl", "48h"))) != name(feature_view())


def test_schedule_makes_a_forbid_cronjob_otherwise_a_one_shot_job():
    cronjob = children(feature_view(with_("materialize.schedule", "0 * * * *")))[-1]
    assert cronjob["metadata"]["name"] == "driver-stats-fv-materialize"
    assert cronjob["spec"]["schedule"] == "0 * * * *" and cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    container = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:3] == ["python", "-m", "llmops_operator.entrypoints.feast_materialize"]
    job = children(feature_view())[-1]
    assert job["kind"] == "Job" and job["metadata"]["name"].startswith("driver-stats-fv-materialize-")


# ----- status -------------------------------------------------------------------------------------

COMPLETE = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True", "reason": "CompletionsReached"}]}
FAILED = {"failed": 4, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                       "message": "Job has reached the specified backoff limit"}]}


def observe(obj: FeatureView, apply=None, materialize=None, report=None):
    live = [json.loads(json.dumps(c)) for c in children(obj)]
    if apply is not None:
        live[5]["status"] = apply
    if materialize is not None and len(live) > 6:
        live[6]["status"] = materialize
    if report is not None:
        live[0]["data"] = {"progress.json": json.dumps(report)}
    return FeatureViewReconciler().status(obj, live, None, ctx(), {})


def conditions(observation) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in observation.conditions}


def test_apply_pending_is_registering():
    observation = observe(feature_view())
    assert observation.phase == "Registering"
    assert conditions(observation) == {"Registered": ("Unknown", "Pending"), "Materialized": ("Unknown", "Pending"),
                                       "Ready": ("Unknown", "Pending")}
    assert observation.fields == {"registered": False}


def test_apply_running_is_registering():
    assert conditions(observe(feature_view(), apply={"active": 1}))["Registered"] == ("Unknown", "Applying")


def test_registered_then_materializing_then_ready():
    obj = feature_view()
    materializing = observe(obj, apply=COMPLETE, materialize={"active": 1})
    assert materializing.phase == "Materializing"
    assert conditions(materializing)["Registered"] == ("True", "Applied")
    assert conditions(materializing)["Materialized"] == ("Unknown", "Materializing")
    ready = observe(obj, apply=COMPLETE, materialize=COMPLETE,
                    report={"lastMaterialized": "2026-05-01T11:00:00Z", "rows": 60, "freshnessLag": "1h",
                            "drift": {"metric": "psi", "score": 0.05, "threshold": 0.2, "feature": "conv_rate"}})
    assert ready.phase == "Ready"
    assert conditions(ready) == {"Registered": ("True", "Applied"), "Materialized": ("True", "Materialized"),
                                 "Ready": ("True", "Ready")}
    assert ready.fields == {"registered": True, "lastMaterialized": "2026-05-01T11:00:00Z", "rows": 60,
                            "freshnessLag": "1h",
                            "drift": {"metric": "psi", "score": 0.05, "threshold": 0.2, "drifted": False,
                                      "feature": "conv_rate"}}


def test_children_are_picked_by_kind_and_role_not_by_position():
    """The API may list children in any order (a cache, a retried apply, a kept child): the materialize Job is
    never read as the apply Job, nor the other way round."""
    obj = feature_view()
    live = [json.loads(json.dumps(c)) for c in children(obj)]
    live[5]["status"], live[6]["status"] = {"active": 1}, COMPLETE  # apply still running, materialize done
    forward = FeatureViewReconciler().status(obj, live, None, ctx(), {})
    backward = FeatureViewReconciler().status(obj, live[::-1], None, ctx(), {})
    assert forward == backward
    assert conditions(backward)["Registered"] == ("Unknown", "Applying")


def test_failed_apply_is_failed():
    observation = observe(feature_view(), apply=FAILED)
    assert observation.phase == "Failed"
    assert conditions(observation)["Registered"] == ("False", "BackoffLimitExceeded")
    assert conditions(observation)["Ready"] == ("False", "BackoffLimitExceeded")


def test_failed_materialization_is_failed():
    observation = observe(feature_view(), apply=COMPLETE, materialize=FAILED)
    assert observation.phase == "Failed"
    assert conditions(observation)["Materialized"] == ("False", "BackoffLimitExceeded")


def observe_scheduled(obj: FeatureView, materialize=None, cronjob=None):
    live = [json.loads(json.dumps(c)) for c in children(obj)]
    assert [c["kind"] for c in live[5:]] == ["Job", "Job", "CronJob"]
    live[5]["status"] = COMPLETE
    if materialize is not None:
        live[6]["status"] = materialize
    if cronjob is not None:
        live[7]["status"] = cronjob
    return FeatureViewReconciler().status(obj, live, None, ctx(), {})


def test_a_scheduled_view_is_materialized_right_away_then_on_schedule():
    obj = feature_view(with_("materialize.schedule", "@hourly"))
    first = observe_scheduled(obj)
    assert conditions(first)["Materialized"] == ("Unknown", "Pending") and first.phase == "Materializing"
    done = observe_scheduled(obj, materialize=COMPLETE)
    materialized = {c.type: c for c in done.conditions}["Materialized"]
    assert (materialized.status, materialized.reason) == ("True", "Materialized") and done.phase == "Ready"
    assert "refreshed on schedule @hourly" in materialized.message


def test_a_failed_first_run_heals_on_schedule():
    obj = feature_view(with_("materialize.schedule", "@hourly"))
    failed = observe_scheduled(obj, materialize=FAILED)
    assert conditions(failed)["Materialized"][0] == "False"
    healed = observe_scheduled(obj, materialize=FAILED, cronjob={"lastSuccessfulTime": "2026-05-01T11:00:00Z"})
    assert conditions(healed)["Materialized"] == ("True", "Materialized") and healed.phase == "Ready"


def test_offline_view_is_ready_once_registered():
    observation = observe(feature_view(with_("online", False)), apply=COMPLETE)
    assert conditions(observation) == {"Registered": ("True", "Applied"), "Ready": ("True", "Ready")}
    assert observation.phase == "Ready"


def test_malformed_report_fields_are_dropped():
    observation = observe(feature_view(), apply=COMPLETE, materialize=COMPLETE,
                          report={"rows": "many", "freshnessLag": "an hour", "drift": {"score": "high"}})
    assert observation.fields == {"registered": True}


def test_example_parses_and_its_data_file_exists():
    document = yaml.safe_load((ROOT / "manifests" / "examples" / "featureview.yaml").read_text())
    obj = parse(FeatureView, document)
    assert obj.name == "driver-stats"
    path = obj.spec.source.file.path.removeprefix("pvc://llmops-data/")
    header = (ROOT / "manifests" / "examples" / "data" / path).read_text().splitlines()[0].split(",")
    columns = {obj.spec.source.file.timestamp_field, obj.spec.source.file.created_timestamp_column,
               *obj.spec.entities[0].join_keys, *(f.name for f in obj.spec.features)}
    assert set(header) == columns
