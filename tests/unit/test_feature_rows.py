"""Feature service rows -> training texts (pure rendering and the spec checks), and the run config that
carries a FeatureView's store to a TrainingJob."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from llmops_operator.api.v1alpha1 import FeatureView, TrainingJob
from llmops_operator.builders.feast import DEFINITION_KEY, REPO_KEY, reader_files, repo_files
from llmops_operator.builders.runconfig import training_run_config
from llmops_operator.core.contract import parse
from llmops_operator.entrypoints.feature_rows import (
    FeatureRowsError, Rendering, check_entities, format_value, open_definition, read_entities, rendering_for,
    row_text, row_texts,
)

ROOT = Path(__file__).resolve().parents[2]
FEATURES = ("conv_rate", "acc_rate", "avg_daily_trips")
ROW = {"driver_id": 1001, "conv_rate": 0.7788000106811523, "acc_rate": 0.5619, "avg_daily_trips": 19,
       "completed": 1, "note": "fast pickup"}


def view(**spec) -> FeatureView:
    body = yaml.safe_load((ROOT / "manifests/examples/featureview.yaml").read_text())
    body["metadata"].update(namespace="ml", generation=1)
    body["spec"].update(spec)
    return parse(FeatureView, body)


def feature_job(**dataset) -> TrainingJob:
    body = yaml.safe_load((ROOT / "manifests/examples/trainingjob.yaml").read_text())
    body["metadata"].update(namespace="ml", generation=1)
    body["spec"]["dataset"] = {"featureService": {"featureView": {"name": "driver-stats"}, "service": "activity",
                                                  "entitiesUri": "pvc://llmops-data/trips.parquet"}, **dataset}
    return parse(TrainingJob, body)


def test_features_become_name_value_pairs_in_the_services_order():
    assert row_text(ROW, Rendering(FEATURES)) == "conv_rate: 0.7788, acc_rate: 0.5619, avg_daily_trips: 19"


def test_the_label_is_the_answer_part_and_never_a_pair():
    rendering = rendering_for(ROW, (*FEATURES, "completed"), None, "completed")
    assert rendering.features == FEATURES
    assert row_text(ROW, rendering).endswith("avg_daily_trips: 19 => completed: 1")


def test_a_text_column_is_used_as_it_is():
    rendering = rendering_for(ROW, FEATURES, "note", "completed")
    assert row_text(ROW, rendering) == "fast pickup => completed: 1"


def test_missing_values_are_left_out_and_empty_rows_dropped():
    rows = [{**ROW, "acc_rate": math.nan},
            {"conv_rate": None, "acc_rate": math.nan, "avg_daily_trips": None, "completed": 1},
            {**ROW, "completed": None}]
    assert row_texts(rows, Rendering(FEATURES)) == [
        "conv_rate: 0.7788, avg_daily_trips: 19", "conv_rate: 0.7788, acc_rate: 0.5619, avg_daily_trips: 19"]
    assert row_texts(rows, Rendering(FEATURES, label="completed")) == [
        "conv_rate: 0.7788, avg_daily_trips: 19 => completed: 1"]
    assert row_texts([{"note": "  "}], Rendering((), text_column="note")) == []


@pytest.mark.parametrize(("value", "text"), [(True, "true"), (0.1 + 0.2, "0.3"), (3, "3"), (" a ", "a"),
                                             (1e-9, "1e-09"), (math.inf, "inf")])
def test_values_format_stably(value, text):
    assert format_value(value) == text


def test_numpy_scalars_format_as_python_values():
    np = pytest.importorskip("numpy")
    assert format_value(np.float32(0.5619)) == "0.5619" and format_value(np.int64(19)) == "19"


@pytest.mark.parametrize(("text_field", "label", "field"), [("comment", None, "dataset.textField"),
                                                            (None, "rating", "dataset.featureService.label")])
def test_unknown_columns_name_the_spec_field(text_field, label, field):
    with pytest.raises(FeatureRowsError, match=rf"^{field}: no column '(comment|rating)' .*they have driver_id"):
        rendering_for(ROW, FEATURES, text_field, label)


def test_entities_need_the_join_keys_and_event_timestamp():
    check_entities(["driver_id", "event_timestamp", "completed"], ["driver_id"], "pvc://d/e.parquet")
    with pytest.raises(FeatureRowsError, match=r"^dataset.featureService.entitiesUri: pvc://d/e.parquet has no "
                                               r"column driver_id, event_timestamp"):
        check_entities(["driver", "completed"], ["driver_id"], "pvc://d/e.parquet")


def test_a_missing_entities_file_names_the_field(tmp_path):
    with pytest.raises(FeatureRowsError, match="^dataset.featureService.entitiesUri: file://.* does not exist"):
        read_entities(f"file://{tmp_path}/absent.parquet")


def test_the_run_config_carries_the_views_store_without_its_job_settings():
    dataset = training_run_config(feature_job(), reader_files(view()))["dataset"]
    repository = dataset["featureService"].pop("repository")
    assert dataset["featureService"] == {"featureView": {"name": "driver-stats"}, "service": "activity",
                                         "entitiesUri": "pvc://llmops-data/trips.parquet"}
    assert "textField" not in dataset  # unset: rows are rendered from their features
    assert repository[REPO_KEY] == repo_files(view())[REPO_KEY]
    definition = json.loads(repository[DEFINITION_KEY])
    assert definition["feature_view"]["name"] == "driver_stats" and "drift" not in definition
    # Materialization and drift settings are the view's Jobs' business: editing them leaves the run alone.
    changed = view(materialize={"schedule": "*/5 * * * *", "lookback": "24h"}, drift=None)
    assert reader_files(changed) == reader_files(view())
    explicit = training_run_config(feature_job(textField="text"), reader_files(view()))["dataset"]
    assert explicit["textField"] == "text"


def test_the_run_config_needs_the_resolved_store():
    with pytest.raises(ValueError, match="dataset.featureService"):
        training_run_config(feature_job())


def test_the_runtime_opens_the_definition_the_operator_rendered(tmp_path):
    definition = open_definition(reader_files(view()), pvc_root=str(tmp_path))
    assert definition.join_keys == ["driver_id"]
    assert definition.store_dir == tmp_path / "llmops-feast" / "driver_ranking"
