"""A restarted training job resumes from its newest checkpoint, and says so through its progress ConfigMap.

Real Ray Train (a local Ray cluster), real DeepSpeed-free DDP over gloo, real checkpoints on disk,
and the real progress channel into the API emulator. The second run is the same job restarted
with more steps to do: it must load step-4 and run only the remaining steps.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

pytest.importorskip("ray.train")
pytest.importorskip("transformers")

from llmops_operator.api.v1alpha1 import TrainingJob  # noqa: E402
from llmops_operator.builders.progress import build_progress_configmap  # noqa: E402
from llmops_operator.builders.runconfig import training_run_config  # noqa: E402
from llmops_operator.core.contract import parse  # noqa: E402
from llmops_operator.k8s.resources import resource_for  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CONFIGMAP = resource_for("v1", "ConfigMap")


def run_config(tmp_path: Path, namespace: str, max_steps: int) -> dict:
    body = yaml.safe_load((ROOT / "manifests/examples/trainingjob.yaml").read_text())
    body["metadata"]["namespace"] = namespace
    spec = body["spec"]
    spec["resources"]["workers"] = 1
    spec["deepspeed"] = {"enabled": False}
    spec["training"].update({"maxSteps": max_steps, "evalEverySteps": None, "batchSize": 4})
    spec["dataset"]["uri"] = str(ROOT / "manifests/examples/data/corpus/tiny-corpus.jsonl")
    spec["checkpoint"] = {"uri": str(tmp_path / "checkpoints"), "everySteps": 2, "keep": 5}
    spec["outputUri"] = str(tmp_path / "final")
    return training_run_config(parse(TrainingJob, body))


def report(kube, namespace: str, name: str) -> dict:
    data = (kube.get(CONFIGMAP, namespace, name) or {}).get("data") or {}
    return json.loads(data.get("progress.json") or "{}")


@pytest.fixture
def ray_local(apiserver, tmp_path, monkeypatch):
    """A local Ray cluster whose workers inherit the emulator's kubeconfig (they report progress through it)."""
    import ray

    monkeypatch.setenv("LLMOPS_RAY_STORAGE", str(tmp_path / "ray"))
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"KUBECONFIG": os.environ["KUBECONFIG"]}})
    yield
    ray.shutdown()


@pytest.mark.timeout(900)  # two real Ray Train runs; minutes on a busy 2-vCPU machine
def test_a_restarted_job_resumes_from_the_newest_checkpoint(kube, namespace, tmp_path, ray_local):
    from llmops_operator.entrypoints.train import fit

    first = run_config(tmp_path, namespace, max_steps=4)
    job = parse(TrainingJob, {"apiVersion": "llmops.dev/v1alpha1", "kind": "TrainingJob",
                              "metadata": {"name": "tiny-gpt2", "namespace": namespace},
                              "spec": yaml.safe_load((ROOT / "manifests/examples/trainingjob.yaml").read_text())["spec"]})
    kube.apply(build_progress_configmap(job), namespace=None)
    progress = first["progress"]["configMap"]

    fit(first)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith("step-")) == ["step-2", "step-4"]
    assert report(kube, namespace, progress)["progress"]["step"] == 4

    fit(run_config(tmp_path, namespace, max_steps=6))
    after = report(kube, namespace, progress)
    assert after["checkpoint"]["resumedFromStep"] == 4
    assert after["progress"]["step"] == 6 and after["checkpoint"]["step"] == 6
    assert (tmp_path / "final" / "config.json").exists()


def ray_train_worker_pids() -> list[int]:
    """Ray Train workers of this test's own local cluster: processes under this one, titled ray::RayTrainWorker."""
    import psutil

    workers = []
    for process in psutil.Process(os.getpid()).children(recursive=True):
        try:
            if "RayTrainWorker" in " ".join(process.cmdline()):
                workers.append(process.pid)
        except psutil.NoSuchProcess:
            continue
    return workers


@pytest.mark.timeout(900)  # one real Ray Train run with a retry
def test_a_killed_worker_is_retried_from_the_newest_checkpoint_with_one_loss_curve(kube, namespace, tmp_path,
                                                                                  ray_local):
    import signal
    import threading
    import time

    from llmops_operator.entrypoints.train import fit

    config = run_config(tmp_path, namespace, max_steps=40)
    config["retries"] = {"limit": 1, "backoffSeconds": 1, "maxBackoffSeconds": 1}
    job = parse(TrainingJob, {"apiVersion": "llmops.dev/v1alpha1", "kind": "TrainingJob",
                              "metadata": {"name": "tiny-gpt2", "namespace": namespace},
                              "spec": yaml.safe_load((ROOT / "manifests/examples/trainingjob.yaml").read_text())["spec"]})
    kube.apply(build_progress_configmap(job), namespace=None)
    outcome: dict = {}
    runner = threading.Thread(target=lambda: outcome.update(metrics=fit(config)), daemon=True)
    runner.start()
    checkpoints, deadline = tmp_path / "checkpoints", time.monotonic() + 600
    while not (checkpoints / "step-2").exists():  # the first checkpoint: from here a retry has something to resume
        assert runner.is_alive() and time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.05)
    pids = ray_train_worker_pids()
    assert pids, "no Ray Train worker to kill"
    os.kill(pids[0], signal.SIGKILL)
    runner.join(timeout=600)
    assert "metrics" in outcome, "the retried run did not finish"
    after = report(kube, namespace, config["progress"]["configMap"])
    assert after["progress"]["step"] == 40 and after["checkpoint"]["resumedFromStep"] > 0
    assert after["progress"]["firstLoss"] == after["progress"]["lossCurve"][0]["loss"]  # kept from attempt 1
    steps = [point["step"] for point in after["progress"]["lossCurve"]]
    assert steps[0] == 1 and steps[-1] == 40 and steps == sorted(set(steps)), steps
