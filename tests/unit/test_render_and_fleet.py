"""`llmops render` (offline preview) and the fleet table."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from llmops_operator.cli.main import main
from llmops_operator.cli.fleet import table
from llmops_operator.cli.render import RenderError, render_paths

EXAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "examples"


def write(tmp_path: Path, *docs: dict) -> Path:
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return path


def training_job(**spec) -> dict:
    return {"apiVersion": "llmops.dev/v1alpha1", "kind": "TrainingJob", "metadata": {"name": "tj"},
            "spec": {"dataset": {"uri": "file:///data/corpus.jsonl"}, "outputUri": "file:///models/tj", **spec}}


def test_every_example_renders(capsys):
    assert main(["render", "-f", str(EXAMPLES)]) == 0
    children = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    kinds = {c["kind"] for c in children}
    assert {"RayJob", "InferenceService", "ConfigMap", "Job"} <= kinds, kinds


def test_render_names_the_file_the_object_and_the_field(tmp_path):
    path = write(tmp_path, training_job(resources={"workers": 0}))
    with pytest.raises(RenderError) as err:
        render_paths([path])
    assert str(path) in str(err.value) and "'tj'" in str(err.value)
    assert "spec.resources.workers" in str(err.value)


def test_render_cli_exits_non_zero_with_the_message_on_stderr(tmp_path, capsys):
    path = write(tmp_path, training_job(resources={"gpusPerWorker": 1}))
    assert main(["render", "-f", str(path)]) == 1
    assert "gpuType is required" in capsys.readouterr().err


def test_render_skips_objects_that_are_not_ours(tmp_path):
    path = write(tmp_path, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    assert render_paths([path]) == []


def test_render_reports_a_missing_path_and_bad_yaml(tmp_path):
    with pytest.raises(RenderError, match="no such file"):
        render_paths([tmp_path / "nope.yaml"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [unclosed")
    with pytest.raises(RenderError, match="not valid YAML"):
        render_paths([bad])


def test_fleet_table_shows_ready_phase_cost_drift_safety():
    objects = [{
        "kind": "InferenceService", "metadata": {"name": "assistant", "namespace": "ml"},
        "status": {"phase": "Ready", "conditions": [{"type": "Ready", "status": "True", "reason": "Ready"}],
                   "cost": {"hourlyRate": 0.0600, "accrued": 0.0, "currency": "USD"}, "drift": {"score": 0.0712},
                   "safety": {"score": 0.99}},
    }, {"kind": "TrainingJob", "metadata": {"name": "done", "namespace": "ml"},
        "status": {"cost": {"hourlyRate": 0.2, "accrued": 1.23456, "estimate": 2.0, "currency": "USD"}}},
       {"kind": "TrainingJob", "metadata": {"name": "new", "namespace": "ml"}}]
    lines = table(objects).splitlines()
    assert lines[0].split() == ["NAMESPACE", "KIND", "NAME", "READY", "PHASE", "COST", "DRIFT", "SAFETY", "MESSAGE"]
    assert lines[1].split()[:8] == ["ml", "InferenceService", "assistant", "True", "Ready", "0.0600", "USD/h", "0.071"]
    assert lines[2].split()[:7] == ["ml", "TrainingJob", "done", "-", "-", "1.2346", "USD"]
    assert lines[3].split()[:5] == ["ml", "TrainingJob", "new", "-", "-"]
