"""What the control-plane image ships is what is tested: `pip install .` with no extras, then `llmops run`.

The package goes into a fresh virtual environment with its base dependencies only, exactly as the
Dockerfile installs it. That operator reconciles every example; each object must get a status: Ready, or
a condition that says which extra or engine is missing. An import error in a reconcile path (an engine
library imported where the control plane runs) would leave an object without status and fail here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from kube_helpers import EXAMPLES, eventually

from llmops_operator.k8s.resources import resource_for

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
LLMOPS_KINDS = {"TrainingJob", "FineTune", "Guardrail", "InferenceService", "PromptRelease", "VectorIndex",
                "FeatureView"}


@pytest.fixture(scope="module")
def base_venv(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("base") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    # A non-editable install of the repository, as `pip install .` in the Dockerfile does.
    subprocess.run([*pip, str(ROOT)], check=True, timeout=600, cwd=venv.parent)
    return venv


def test_a_base_install_has_no_engine_library(base_venv):
    probe = "import importlib.util as u; print([m for m in ('torch', 'ray', 'pymilvus', 'feast', 'kserve') " \
            "if u.find_spec(m)])"
    out = subprocess.run([str(base_venv / "bin" / "python"), "-c", probe], capture_output=True, text=True,
                         check=True, timeout=60, cwd=base_venv.parent)
    assert out.stdout.strip() == "[]"


def example_objects(namespace: str) -> list[dict]:
    objects = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                doc.setdefault("metadata", {})["namespace"] = namespace
                objects.append(doc)
    return objects


@pytest.fixture
def base_operator(base_venv, apiserver, kube, tmp_path):
    namespace = f"base-{uuid.uuid4().hex[:8]}"
    kube.create_namespace(namespace)
    log = (tmp_path / "operator.log").open("w")
    env = {**os.environ, "KUBECONFIG": str(apiserver), "PYTHONPATH": ""}
    process = subprocess.Popen([str(base_venv / "bin" / "llmops"), "run", "-n", namespace, "--liveness-port", "0",
                                "--metrics-port", "0"], env=env, stdout=log, stderr=subprocess.STDOUT,
                               cwd=tmp_path, start_new_session=True)
    try:
        yield namespace, tmp_path / "operator.log"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


def test_every_example_gets_a_status_from_a_base_install(base_operator, kube):
    namespace, log = base_operator
    objects = example_objects(namespace)
    for body in objects:
        kube.apply(body, namespace=namespace)
    ours = [o for o in objects if o["kind"] in LLMOPS_KINDS]
    assert {o["kind"] for o in ours} == LLMOPS_KINDS

    def ready_of(body: dict) -> dict | None:
        live = kube.get(resource_for(body["apiVersion"], body["kind"]), namespace, body["metadata"]["name"]) or {}
        return next((c for c in live.get("status", {}).get("conditions", []) if c["type"] == "Ready"), None)

    def all_reported() -> bool:
        missing = [f"{o['kind']}/{o['metadata']['name']}" for o in ours if ready_of(o) is None]
        assert not missing, f"no Ready condition yet on {missing}"
        return True

    eventually(all_reported, timeout=240, interval=1, what="every example has a Ready condition")
    text = log.read_text()
    assert "ModuleNotFoundError" not in text and "ImportError" not in text, text[-4000:]
