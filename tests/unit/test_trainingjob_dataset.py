"""TrainingJob with a feature service dataset: when it waits for its FeatureView, and what it renders then."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import yaml

from llmops_operator.api.v1alpha1 import TrainingJob
from llmops_operator.builders.runconfig import RUN_CONFIG_ENV
from llmops_operator.core.contract import Context, parse
from llmops_operator.controllers.trainingjob import TrainingJobReconciler, feature_view
from llmops_operator.cli.render import render_paths
from llmops_operator.core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
DATASET = {"featureService": {"featureView": {"name": "driver-stats"}, "service": "driver_stats",
                              "entitiesUri": "pvc://llmops-data/features/trips.parquet"}}


def ctx() -> Context:
    settings = Settings(runtime_image="registry.example/llmops:1.0", ray_version="2.60.0")
    return Context(settings=settings, catalog=settings.catalog, now=NOW)


def example(kind: str) -> dict:
    body = yaml.safe_load((ROOT / "manifests" / "examples" / f"{kind.lower()}.yaml").read_text())
    body["metadata"]["namespace"] = "ml"
    return body


def job(status: dict | None = None) -> TrainingJob:
    body = example("TrainingJob")
    body["spec"]["dataset"] = DATASET
    if status:
        body["status"] = status
    return parse(TrainingJob, body)


def view(phase: str) -> dict:
    body = example("FeatureView")
    ready = "True" if phase == "Ready" else "False"
    body["status"] = {"phase": phase, "conditions": [
        {"type": "Ready", "status": ready, "reason": phase, "message": f"the view is {phase}"}]}
    return body


def test_a_file_dataset_references_nothing_and_reports_no_dataset_condition():
    body = example("TrainingJob")
    plain = parse(TrainingJob, body)
    assert TrainingJobReconciler().references(plain) == []
    assert feature_view(plain, {}) == (None, None)


def test_a_job_that_has_not_started_waits_and_builds_nothing():
    refs = {("FeatureView", "driver-stats"): view("Failed")}
    assert TrainingJobReconciler().references(job()) == [("FeatureView", "driver-stats")]
    assert TrainingJobReconciler().children(job(), ctx(), refs) is None
    observation = TrainingJobReconciler().status(job(), [], None, ctx(), refs)
    waiting = observation.conditions[0]
    assert (waiting.type, waiting.status, waiting.reason) == ("DatasetReady", "False", "FeatureViewNotReady")
    assert waiting.message == ("waiting for FeatureView 'driver-stats' to be Ready (phase Failed): "
                               "the view is Failed")
    assert observation.phase == "Waiting"


def test_a_started_run_keeps_its_rayjob_while_the_view_re_registers():
    started = job({"rayJob": {"name": "tiny-gpt2-abc", "submissionId": "ml-tiny-gpt2-abc"}})
    reconciler, registering = TrainingJobReconciler(), {("FeatureView", "driver-stats"): view("Registering")}
    ready = reconciler.children(started, ctx(), {("FeatureView", "driver-stats"): view("Ready")})
    again = reconciler.children(started, ctx(), registering)
    assert ready[-1]["kind"] == "RayJob" and again == ready
    observation = reconciler.status(started, again, None, ctx(), registering)
    assert observation.conditions[0].reason == "RunStarted"


def test_render_previews_the_job_with_its_feature_view_from_the_same_file_set(tmp_path):
    training = example("TrainingJob")
    training["spec"]["dataset"] = DATASET
    manifest = tmp_path / "set.yaml"
    manifest.write_text(yaml.safe_dump_all([example("FeatureView"), training]))
    [rayjob] = [c for c in render_paths([manifest]) if c["kind"] == "RayJob"]
    config = json.loads(yaml.safe_load(rayjob["spec"]["runtimeEnvYAML"])["env_vars"][RUN_CONFIG_ENV])
    assert config["dataset"]["featureService"]["service"] == "driver_stats"
    assert "feature_store.yaml" in config["dataset"]["featureService"]["repository"]
