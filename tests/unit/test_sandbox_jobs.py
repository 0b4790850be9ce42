"""The sandbox's Job stand-in: how a Job's pod becomes a local process, and the status it writes."""

from __future__ import annotations

import base64
import sys

import pytest

from llmops_sandbox.standins.jobs import (
    UnrunnableJob, failed_status, finished, plan_process, referenced_sources, succeeded_status,
)


def job(container: dict, volumes: list | None = None) -> dict:
    return {"metadata": {"name": "ingest", "namespace": "ml", "uid": "u"},
            "spec": {"template": {"spec": {"containers": [{"name": "main", "image": "x", **container}],
                                           "volumes": volumes or []}}}}


CONFIG = {"data": {"config.json": '{"a": 1}'}}
TOKEN = {"data": {"token": base64.b64encode(b"s3cret").decode()}}


def test_command_args_env_and_mounts_become_a_local_process(tmp_path):
    j = job({"command": ["python", "-m", "llmops_operator.entrypoints.ingest"],
             "args": ["--config", "/etc/llmops/job/config.json", "--out=/data/out"],
             "env": [{"name": "PLAIN", "value": "1"},
                     {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "milvus", "key": "token"}}},
                     {"name": "WHERE", "value": "/data/x"},
                     {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
             "volumeMounts": [{"name": "config", "mountPath": "/etc/llmops/job"},
                              {"name": "data", "mountPath": "/data"}]},
            [{"name": "config", "configMap": {"name": "cfg"}},
             {"name": "data", "persistentVolumeClaim": {"claimName": "llmops-data"}}])
    plan = plan_process(j, {("ConfigMap", "cfg"): CONFIG, ("Secret", "milvus"): TOKEN}, tmp_path)
    assert plan.argv == [sys.executable, "-m", "llmops_operator.entrypoints.ingest",
                         "--config", str(tmp_path / "volumes/config/config.json"),
                         f"--out={tmp_path / 'pvc/llmops-data'}/out"]
    assert plan.env == {"LLMOPS_PVC_ROOT": str(tmp_path / "pvc"), "PLAIN": "1", "TOKEN": "s3cret", "WHERE": str(tmp_path / "pvc/llmops-data/x"), "POD": "ingest"}
    assert plan.files == {tmp_path / "volumes/config/config.json": b'{"a": 1}'}


def test_referenced_sources_lists_configmaps_and_secrets():
    j = job({"command": ["true"], "env": [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]},
            [{"name": "c", "configMap": {"name": "cm"}}])
    assert referenced_sources(j) == {("ConfigMap", "cm"), ("Secret", "s")}


def test_a_job_without_a_command_or_with_an_unknown_volume_is_unrunnable(tmp_path):
    with pytest.raises(UnrunnableJob, match="no command"):
        plan_process(job({}), {}, tmp_path)
    with pytest.raises(UnrunnableJob, match="hostPath"):
        plan_process(job({"command": ["true"]}, [{"name": "hostPath", "hostPath": {"path": "/"}}]), {}, tmp_path)


def test_missing_secret_key_is_named(tmp_path):
    j = job({"command": ["true"], "env": [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]})
    with pytest.raises(UnrunnableJob, match="Secret s has no key 'k'"):
        plan_process(j, {("Secret", "s"): {"data": {}}}, tmp_path)


def test_terminal_statuses_look_like_the_job_controllers():
    done = succeeded_status("t0", 1, "t1")
    assert (done["succeeded"], done["failed"], done["completionTime"]) == (1, 1, "t1")
    assert [c["type"] for c in done["conditions"]] == ["SuccessCriteriaMet", "Complete"]
    failed = failed_status("t0", 7, "BackoffLimitExceeded", "limit", "t1")
    assert [c["type"] for c in failed["conditions"]] == ["FailureTarget", "Failed"]
    assert "completionTime" not in failed
    assert finished({"status": done}) and finished({"status": failed}) and not finished({"status": {"active": 1}})
