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
