"""Training rows from a Feast feature service, with the real Feast local provider on the example FeatureView.

The example view is applied the way its apply Job does it (feast_apply on the files builders/feast
renders), which also registers the view's own feature service, and the training runtime's reader gets
its rows through the run config the operator renders for a TrainingJob.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

feast = pytest.importorskip("feast")

from kube_helpers import example  # noqa: E402

from llmops_operator.api.v1alpha1 import FeatureView, TrainingJob  # noqa: E402
from llmops_operator.builders.feast import DEFINITION_KEY, reader_files, repo_files  # noqa: E402
from llmops_operator.builders.runconfig import training_run_config  # noqa: E402
from llmops_operator.core.contract import parse  # noqa: E402
from llmops_operator.entrypoints import data, feast_apply, feast_repo  # noqa: E402
from llmops_operator.entrypoints.feature_rows import FeatureRowsError  # noqa: E402
from llmops_operator.entrypoints.report import Reporter  # noqa: E402
from llmops_operator.core.uris import PVC_ROOT_ENV  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SERVICE = "driver_stats"  # the service the example FeatureView registers under its own name
ENTITIES = "pvc://llmops-data/features/trips.parquet"
TRIPS = [  # driver, when, whether the trip was completed (the label)
    (1001, "2026-11-20T09:30:00Z", 1),  # between the 06:00 and 12:00 rows: the 06:00 values apply
    (1002, "2026-11-21T12:00:00Z", 0),  # exactly at a row's event time: that row applies
    (1001, "2026-11-22T23:00:00Z", 1),
    (1002, "2026-11-19T12:00:00Z", 0),  # before the first row: no feature values, the row is dropped
]


def training_job(**dataset) -> TrainingJob:
    body = example("TrainingJob")
    body["metadata"].update(namespace="ml", generation=1)
    body["spec"]["dataset"] = {"featureService": {"featureView": {"name": "driver-stats"}, "service": SERVICE,
                                                  "entitiesUri": ENTITIES, "label": "completed"},
                               "validationFraction": 0.25, **dataset}
    return parse(TrainingJob, body)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """The example view applied from its rendered files, plus a feature service over all its features."""
    pvc = tmp_path_factory.mktemp("pvc")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(PVC_ROOT_ENV, str(pvc))
        features = pvc / "llmops-data" / "features"
        features.mkdir(parents=True)
        shutil.copy(ROOT / "manifests/examples/data/features/driver_stats.csv", features)
        trips = pd.DataFrame(TRIPS, columns=["driver_id", "event_timestamp", "completed"])
        trips["event_timestamp"] = pd.to_datetime(trips["event_timestamp"], utc=True)
        trips.to_parquet(features / "trips.parquet", index=False)
        body = example("FeatureView")
        body["metadata"].update(namespace="ml", generation=1)
        view = parse(FeatureView, body)
        etc = pvc / "etc"
        etc.mkdir()
        for key, text in repo_files(view).items():
            (etc / key).write_text(text)
        definition = feast_repo.load_definition(etc / DEFINITION_KEY)
        feast_apply.apply(definition, Reporter(None))
        yield {"view": view, "pvc": pvc}


def run_dataset(store, **dataset) -> dict:
    return training_run_config(training_job(**dataset), reader_files(store["view"]))["dataset"]


def test_rows_are_point_in_time_correct_and_end_with_the_label(store):
    records = data.read_records(run_dataset(store))
    texts = data.texts(records, "text")
    # By hand from driver_stats.csv: driver 1001 at 2026-11-20T06:00 has conv_rate 0.7788, acc_rate 0.5619,
    # avg_daily_trips 19 (the 12:00 row is later than the trip); driver 1002 at 2026-11-21T12:00 has
    # 0.4785, 0.9584, 36; driver 1001 at 2026-11-22T18:00 has 0.5614, 0.6026, 38.
    assert texts == [
        "conv_rate: 0.7788, acc_rate: 0.5619, avg_daily_trips: 19 => completed: 1",
        "conv_rate: 0.4785, acc_rate: 0.9584, avg_daily_trips: 36 => completed: 0",
        "conv_rate: 0.5614, acc_rate: 0.6026, avg_daily_trips: 38 => completed: 1",
    ]
    train, held_out = data.split(texts, 0.25)
    assert len(train) == 2 and held_out == texts[2:]


def test_a_text_field_names_the_column_to_read(store):
    dataset = run_dataset(store, textField="avg_daily_trips")
    assert data.texts(data.read_records(dataset), "avg_daily_trips") == [
        "19 => completed: 1", "36 => completed: 0", "38 => completed: 1"]


def test_the_run_config_opens_the_same_store_as_the_views_jobs(store):
    dataset = run_dataset(store)
    repository = dataset["featureService"]["repository"]
    assert repository["feature_store.yaml"] == repo_files(store["view"])["feature_store.yaml"]
    assert "textField" not in dataset


@pytest.mark.parametrize(("dataset", "message"), [
    ({"textField": "comment"}, r"dataset.textField: no column 'comment'"),
    ({"featureService": {"service": "absent"}}, r"dataset.featureService.service: no feature service 'absent' "
                                                r"in Feast project driver_ranking \(it has: driver_stats\)"),
    ({"featureService": {"label": "rating"}}, r"dataset.featureService.label: no column 'rating'"),
    ({"featureService": {"entitiesUri": "pvc://llmops-data/features/no-keys.parquet"}},
     r"dataset.featureService.entitiesUri: .*no-keys.parquet has no column driver_id, event_timestamp"),
])
def test_spec_mistakes_name_the_field(store, dataset, message):
    pd.DataFrame({"driver": [1001]}).to_parquet(store["pvc"] / "llmops-data/features/no-keys.parquet")
    config = run_dataset(store, **{k: v for k, v in dataset.items() if k != "featureService"})
    config["featureService"].update(dataset.get("featureService", {}))
    with pytest.raises(FeatureRowsError, match=message):
        data.read_records(config)


def test_the_training_runtime_tokenises_and_packs_the_feature_texts(store):
    pytest.importorskip("transformers")
    from llmops_operator.entrypoints import train
    from llmops_operator.backends.models import load_tokenizer

    config = training_run_config(training_job(), reader_files(store["view"]))
    config["training"]["seqLength"] = 16
    tokenizer = load_tokenizer("builtin:minilm")
    train_blocks, held_out = train._blocks(config, tokenizer)
    assert train_blocks and all(len(block) == 16 for block in train_blocks + held_out)
    assert "avg _ daily _ trips" in tokenizer.decode(train_blocks[0] + train_blocks[1])
