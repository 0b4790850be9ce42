"""The Feast apply and materialize runtimes against Feast's local provider (file offline, SQLite online store).

The definitions come from the real builder (builders/feast.py) for the example manifest, written
where the Jobs' ConfigMap would be mounted; the Feast claim is a directory under tmp_path found
through LLMOPS_PVC_ROOT, as in the sandbox.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

feast = pytest.importorskip("feast")

from llmops_operator.api.v1alpha1 import FeatureView  # noqa: E402
from llmops_operator.builders.feast import DEFINITION_KEY, repo_files  # noqa: E402
from llmops_operator.core.contract import parse  # noqa: E402
from llmops_operator.entrypoints import feast_apply, feast_materialize, feast_repo  # noqa: E402
from llmops_operator.entrypoints.feast_repo import FeastRepoError  # noqa: E402
from llmops_operator.entrypoints.report import Reporter  # noqa: E402
from llmops_operator.core.uris import PVC_ROOT_ENV  # noqa: E402
from llmops_operator.status.featureview import reported  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DRIVERS = list(range(1001, 1011))
NEW_HOURS = 24
"""Length of the second window: 240 rows keep the sampling noise of a 10-bin PSI near 0.05."""


def example(name: str = "driver-stats", **spec_changes) -> FeatureView:
    body = yaml.safe_load((ROOT / "manifests/examples/featureview.yaml").read_text())
    body["metadata"].update(name=name, namespace="ml", generation=1)
    body["spec"].update(spec_changes)
    return parse(FeatureView, body)


def driver_rows(start: datetime, hours: int, shift: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """One row per driver per hour from `start`; `shift` moves conv_rate up."""
    rng = np.random.default_rng(seed)
    times = [start + timedelta(hours=h) for h in range(hours)]
    rows = [{"driver_id": d, "event_timestamp": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
             "created": (t + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
             "conv_rate": float(np.clip(rng.beta(2, 5) + shift, 0, 1)), "acc_rate": float(rng.uniform(0.5, 1)),
             "avg_daily_trips": int(rng.integers(1, 40))} for t in times for d in DRIVERS]
    return pd.DataFrame(rows)


def write_config(obj: FeatureView, where: Path, report: bool = False) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    for key, text in repo_files(obj).items():
        if key == DEFINITION_KEY and not report:
            definition = json.loads(text)
            definition.pop("report")
            text = json.dumps(definition)
        (where / key).write_text(text)
    return where / DEFINITION_KEY


@pytest.fixture(scope="module")
def journey(tmp_path_factory):
    """Apply, materialize twice (the second window drifted), then delete; every result along the way."""
    pvc = tmp_path_factory.mktemp("pvc")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(PVC_ROOT_ENV, str(pvc))
        csv = pvc / "llmops-data/features/driver_stats.csv"
        csv.parent.mkdir(parents=True)
        now = datetime.now(timezone.utc).replace(microsecond=0)
        first_now = now - timedelta(hours=NEW_HOURS)
        driver_rows(first_now - timedelta(hours=70), 70).to_csv(csv, index=False)
        config = write_config(example(), pvc / "etc")
        definition = feast_repo.load_definition(config)
        steps = {"definition": definition, "pvc": pvc, "first_now": first_now, "now": now}
        steps["applied"] = feast_apply.apply(definition, Reporter(None))
        steps["first"] = feast_materialize.run(definition, Reporter(None), now=first_now)
        # A day more arrives with conv_rate shifted up; the CSV copy is refreshed by the next run.
        frame = pd.concat([pd.read_csv(csv), driver_rows(first_now, NEW_HOURS, shift=0.4, seed=1)])
        frame.to_csv(csv, index=False)
        steps["second"] = feast_materialize.run(definition, Reporter(None), now=now)
        store = feast_repo.open_store(definition)
        steps["served"] = store.get_online_features(
            features=["driver_stats:conv_rate", "driver_stats:avg_daily_trips"],
            entity_rows=[{"driver_id": d} for d in DRIVERS]).to_dict()
        steps["latest_csv"] = pd.read_csv(csv)
        steps["removed"] = feast_apply.remove(definition)
        steps["store_after"] = feast_repo.open_store(definition)
        yield steps


def test_apply_registers_entity_source_and_view(journey):
    registry = journey["applied"]["registry"]
    assert registry["project"] == "driver_ranking"
    assert registry["featureView"] == "driver_stats"
    assert registry["entities"] == ["driver"]
    assert registry["dataSource"] == "driver_stats_source"
    assert registry["features"] == ["conv_rate", "acc_rate", "avg_daily_trips"]
    assert registry["ttlSeconds"] == 48 * 3600
    assert f"file {registry['parquet']}" in journey["removed"]["removed"]  # written at apply, removed on delete
    repo = journey["definition"].repo_dir
    assert (repo / ".feastignore").is_file()
    assert str(journey["pvc"]) in (repo / "feature_store.yaml").read_text()


def test_first_materialization_loads_the_lookback_window(journey):
    first, first_now = journey["first"], journey["first_now"]
    assert first["materialization"]["first"] is True
    assert first["materialization"]["start"] == feast_repo.rfc3339(first_now - timedelta(hours=72))
    assert first["lastMaterialized"] == feast_repo.rfc3339(first_now)
    assert first["rows"] == len(DRIVERS)
    assert first["materialization"]["sourceRows"] == 70 * len(DRIVERS)
    assert first["freshnessLag"] == "1h"  # the newest event is an hour before the window's end
    assert first["online"] == {"checked": 5, "served": 5}
    # The reference is the first window itself: no drift yet.
    assert first["drift"]["drifted"] is False and first["drift"]["score"] < 0.05


def test_incremental_materialization_continues_and_detects_drift(journey):
    second = journey["second"]
    assert second["materialization"]["first"] is False
    assert second["materialization"]["start"] == journey["first"]["lastMaterialized"]
    assert second["materialization"]["sourceRows"] == NEW_HOURS * len(DRIVERS)
    assert second["rows"] == len(DRIVERS)
    assert second["drift"]["drifted"] is True
    assert second["drift"]["feature"] == "conv_rate"
    assert second["driftScores"]["conv_rate"] > 0.2 > second["driftScores"]["acc_rate"]
    assert second["drift"]["window"] == "24h"


def test_report_has_the_shape_status_reads(journey):
    second = journey["second"]
    fields = reported(second)
    assert fields["lastMaterialized"] == second["lastMaterialized"]
    assert fields["rows"] == len(DRIVERS)
    assert fields["freshnessLag"] == second["freshnessLag"]
    assert fields["drift"]["metric"] == "psi" and fields["drift"]["threshold"] == 0.2


def test_online_store_serves_the_newest_values(journey):
    latest = journey["latest_csv"].sort_values("event_timestamp").groupby("driver_id").last()
    served = journey["served"]
    assert served["driver_id"] == DRIVERS
    np.testing.assert_allclose(served["conv_rate"], latest.loc[DRIVERS, "conv_rate"], rtol=1e-6)
    assert served["avg_daily_trips"] == latest.loc[DRIVERS, "avg_daily_trips"].tolist()


def test_delete_removes_what_the_object_registered(journey):
    removed = journey["removed"]["removed"]
    assert {"FeatureView driver_stats", "FeatureService driver_stats", "FileSource driver_stats_source",
            "Entity driver"} <= set(removed)
    assert any(r.startswith("file ") and r.endswith("driver_stats.reference.json") for r in removed)
    store = journey["store_after"]
    assert store.list_feature_views() == [] and store.list_entities() == [] and store.list_data_sources() == []
    assert store.list_feature_services() == []


def test_delete_keeps_an_entity_another_view_uses(tmp_path, monkeypatch):
    monkeypatch.setenv(PVC_ROOT_ENV, str(tmp_path))
    csv = tmp_path / "llmops-data/features/driver_stats.csv"
    csv.parent.mkdir(parents=True)
    driver_rows(datetime.now(timezone.utc) - timedelta(hours=3), 2).to_csv(csv, index=False)
    first = feast_repo.load_definition(write_config(example("drivers-a"), tmp_path / "a"))
    second = feast_repo.load_definition(write_config(example("drivers-b"), tmp_path / "b"))
    feast_apply.apply(first, Reporter(None))
    feast_apply.apply(second, Reporter(None))
    removed = feast_apply.remove(first)["removed"]
    assert "FeatureView drivers_a" in removed and not any(r.startswith("Entity") for r in removed)
    store = feast_repo.open_store(second)
    assert [v.name for v in store.list_feature_views()] == ["drivers_b"]
    assert [e.name for e in store.list_entities()] == ["driver"]
    assert feast_apply.remove(first)["removed"] == []  # removing twice is a no-op


def test_main_applies_from_the_mounted_config_and_names_a_missing_column(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(PVC_ROOT_ENV, str(tmp_path))
    csv = tmp_path / "llmops-data/features/driver_stats.csv"
    csv.parent.mkdir(parents=True)
    driver_rows(datetime.now(timezone.utc) - timedelta(hours=3), 2).drop(columns="acc_rate").to_csv(csv, index=False)
    config = write_config(example(), tmp_path / "etc")
    assert feast_apply.main(["--config", str(config)]) == 1
    assert "has no column acc_rate" in capsys.readouterr().err
    driver_rows(datetime.now(timezone.utc) - timedelta(hours=3), 2).to_csv(csv, index=False)
    assert feast_apply.main(["--config", str(config)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["registry"]["featureView"] == "driver_stats"
    assert feast_materialize.main(["--config", str(config)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["rows"] == len(DRIVERS)
    assert feast_apply.main(["--config", str(config), "--delete"]) == 0


def test_materialize_gives_up_when_the_view_is_never_registered(tmp_path, monkeypatch):
    monkeypatch.setenv(PVC_ROOT_ENV, str(tmp_path))
    definition = feast_repo.load_definition(write_config(example(), tmp_path / "etc"))
    store = feast_repo.open_store(definition)
    with pytest.raises(FeastRepoError, match="does not hold the current definition after 0s"):
        feast_materialize.wait_for_view(store, definition, timeout=0)


def test_pod_paths_resolve_under_the_claim_root(tmp_path):
    config = {"registry": {"registry_type": "file", "path": "/mnt/pvc/llmops-feast/p/registry.db"},
              "online_store": {"type": "sqlite", "path": "/mnt/pvc/llmops-feast/p/online_store.db"}}
    resolved = feast_repo.resolve_repo_config(config, str(tmp_path))
    assert resolved["registry"]["path"] == str(tmp_path / "llmops-feast/p/registry.db")
    assert resolved["online_store"]["path"] == str(tmp_path / "llmops-feast/p/online_store.db")
    assert config["registry"]["path"].startswith("/mnt/pvc")  # the input is not changed


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (45.7, "45s"), (300, "5m"), (3900, "1h5m"),
                                           (180003, "50h3s"), (-5, "0s")])
def test_go_duration(seconds, text):
    assert feast_repo.go_duration(seconds) == text
