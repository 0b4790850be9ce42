"""The pure parts of the training runtime: URIs, data packing and sharding, step plans, resume points."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmops_operator.entrypoints import data
from llmops_operator.entrypoints.train import plan_steps, resume_tag
from llmops_operator.core.uris import UnsupportedUri, local_path
from llmops_sandbox.standins.rayjobs import deployment_status, runtime_env


def test_parquet_records_from_a_file_or_every_parquet_file_of_a_directory(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    folder = tmp_path / "part"
    folder.mkdir()
    pq.write_table(pa.table({"text": ["one", "two"]}), folder / "a.parquet")
    pq.write_table(pa.table({"text": ["three"]}), folder / "b.parquet")
    (folder / "_SUCCESS").write_text("")  # what Spark and friends leave beside the data
    one_file = data.read_records({"uri": str(folder / "a.parquet"), "format": "parquet"})
    assert one_file == [{"text": "one"}, {"text": "two"}]
    assert [r["text"] for r in data.read_records({"uri": f"file://{folder}", "format": "parquet"})] == \
        ["one", "two", "three"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no .parquet file"):
        data.parquet_tables(f"file://{tmp_path / 'empty'}")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.read_records({"uri": str(tmp_path / "absent.parquet"), "format": "parquet"})


def test_uris_map_to_paths_inside_the_pod(monkeypatch):
    monkeypatch.delenv("LLMOPS_PVC_ROOT", raising=False)
    assert local_path("file:///data/x.jsonl") == Path("/data/x.jsonl")
    assert local_path("pvc://models/tj/final") == Path("/mnt/pvc/models/tj/final")
    assert local_path("pvc://models/tj", pvc_root="/sandbox/pvc") == Path("/sandbox/pvc/models/tj")
    with pytest.raises(UnsupportedUri, match="s3://b/k"):
        local_path("s3://b/k")


def test_records_in_each_format(tmp_path):
    (tmp_path / "a.jsonl").write_text(json.dumps({"text": "one"}) + "\n\n" + json.dumps({"text": "two"}) + "\n")
    (tmp_path / "b.txt").write_text("first line\nsecond line\n")
    assert data.read_records({"uri": str(tmp_path / "a.jsonl")}) == [{"text": "one"}, {"text": "two"}]
    assert data.read_records({"uri": f"file://{tmp_path}/b.txt", "format": "text"}) == \
        [{"text": "first line"}, {"text": "second line"}]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.read_records({"uri": str(tmp_path / "missing.jsonl")})
    with pytest.raises(KeyError, match="record 0 has no field 'body'"):
        data.texts([{"text": "x"}], "body")


def test_pack_split_and_shard():
    blocks = data.pack([[1, 2, 3], [4, 5]], block=2, separator=0)
    assert blocks == [[1, 2], [3, 0], [4, 5]]  # the trailing separator does not fill a block
    assert data.split(list(range(10)), 0.2) == (list(range(8)), [8, 9])
    assert data.split([1, 2], 0.01) == ([1], [2])
    assert data.split([1, 2], 0) == ([1, 2], [])
    shards = [data.shard(list(range(7)), rank, 3) for rank in range(3)]
    assert shards == [[0, 1], [2, 3], [4, 5]]


def test_step_plan_honours_epochs_accumulation_and_max_steps():
    assert plan_steps(64, {"batchSize": 8, "epochs": 2}) == (8, 16)
    assert plan_steps(64, {"batchSize": 8, "gradientAccumulationSteps": 2, "epochs": 3, "maxSteps": 10}) == (4, 10)
    with pytest.raises(ValueError, match="dataset is too small"):
        plan_steps(7, {"batchSize": 8})


def test_resume_from_latest_a_named_step_or_none(tmp_path):
    for step in (10, 20, 5):
        (tmp_path / f"step-{step}").mkdir()
    checkpoint = {"uri": str(tmp_path)}
    assert resume_tag(checkpoint) == 20
    assert resume_tag({**checkpoint, "resumeFrom": "10"}) == 10
    assert resume_tag({**checkpoint, "resumeFrom": "none"}) is None
    assert resume_tag({"uri": str(tmp_path / "empty")}) is None
    with pytest.raises(FileNotFoundError, match="resumeFrom 15"):
        resume_tag({**checkpoint, "resumeFrom": "15"})


@pytest.mark.parametrize("ray_status,expected", [
    ("PENDING", ("Running", "")), ("RUNNING", ("Running", "")), ("SUCCEEDED", ("Complete", "")),
    ("STOPPED", ("Complete", "")), ("FAILED", ("Failed", "AppFailed")),
])
def test_the_kuberay_stand_in_maps_ray_status_like_kuberay(ray_status, expected):
    assert deployment_status(ray_status) == expected


def test_the_kuberay_stand_in_points_pvc_uris_at_the_sandbox(tmp_path):
    rayjob = {"spec": {"runtimeEnvYAML": "env_vars:\n  LLMOPS_RUN_CONFIG: '{}'\n"}}
    env = runtime_env(rayjob, tmp_path, "/sandbox/kubeconfig")["env_vars"]
    assert env == {"LLMOPS_RUN_CONFIG": "{}", "LLMOPS_PVC_ROOT": str(tmp_path), "KUBECONFIG": "/sandbox/kubeconfig"}


class RecordingClient:
    """Stands in for the API client so the throttling and failure rules can be seen in isolation."""

    def __init__(self, fail: bool = False):
        self.patches: list[dict] = []
        self.fail = fail

    def patch(self, where, namespace, name, patch):
        if self.fail:
            raise OSError("connection refused")
        self.patches.append({"namespace": namespace, "name": name, **patch})


TARGET = {"namespace": "ml", "configMap": "tj-progress", "key": "progress.json"}


def test_reports_are_merged_throttled_and_forced():
    from llmops_operator.entrypoints.report import Reporter

    client = RecordingClient()
    reporter = Reporter(TARGET, min_interval=3600, client=client)
    reporter.update("progress", {"step": 1, "loss": 3.0})  # first report goes out at once
    reporter.update("progress", {"step": 2})               # throttled
    reporter.update("checkpoint", {"step": 2}, force=True)
    assert len(client.patches) == 2
    sent = json.loads(client.patches[-1]["data"]["progress.json"])
    assert sent["progress"]["step"] == 2 and sent["progress"]["loss"] == 3.0 and sent["checkpoint"] == {"step": 2}
    assert client.patches[-1]["name"] == "tj-progress"


def test_a_failed_report_turns_reporting_off_without_failing_the_run(capsys):
    from llmops_operator.entrypoints.report import Reporter

    reporter = Reporter(TARGET, client=RecordingClient(fail=True))
    reporter.update("progress", {"step": 1})
    reporter.update("progress", {"step": 2}, force=True)
    assert capsys.readouterr().err.count("reporting is off") == 1


def test_retry_waits_back_off_exponentially_up_to_the_cap_and_stop_at_the_limit():
    from llmops_operator.entrypoints.train import retry_delay

    retries = {"limit": 4, "backoffSeconds": 10, "maxBackoffSeconds": 30}
    assert [retry_delay(n, retries) for n in range(1, 6)] == [10, 20, 30, 30, None]
    assert retry_delay(1, None) is None


def test_the_loss_curve_continues_across_resumes_and_stays_bounded():
    from llmops_operator.entrypoints.train import loss_curve

    curve: list = []
    for step in range(1, 201):
        curve = loss_curve(curve, step, 1.0 / step, points=16)
        assert len(curve) <= 16
    steps = [p["step"] for p in curve]
    assert steps[0] == 1 and steps[-1] == 200 and steps == sorted(set(steps))
