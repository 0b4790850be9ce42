"""The real operator (kopf, our reconcilers, our API client) against the in-process API emulator.

One emulator and one operator for the module; one fresh namespace per test.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from kube_helpers import Kube, eventually, install_crds
from llmops_sandbox.ports import free_port


ROOT = Path(__file__).resolve().parents[2]


def pytest_generate_tests(metafunc):
    from apiservers import parametrize

    parametrize(metafunc)


@pytest.fixture(scope="session")
def apiserver(tmp_path_factory):
    from llmops_sandbox.apiserver import ApiServerThread

    previous = os.environ.get("KUBECONFIG")
    with ApiServerThread() as server:
        path = server.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")
        # kopf and the operator's client both log in through KUBECONFIG.
        os.environ["KUBECONFIG"] = str(path)
        yield path
    if previous is None:
        os.environ.pop("KUBECONFIG", None)
    else:
        os.environ["KUBECONFIG"] = previous


@pytest.fixture(scope="session")
def emulator_kube(apiserver) -> Kube:
    kube = Kube(apiserver)
    install_crds(kube)
    return kube


@pytest.fixture(scope="session")
def kube(emulator_kube) -> Kube:
    """The emulator's client; a module that runs on both APIs (apiservers.py) overrides it per test."""
    return emulator_kube


@pytest.fixture(scope="session")
def operator(apiserver, emulator_kube):
    from llmops_sandbox.operator_thread import OperatorThread
    from llmops_operator.core.settings import Settings

    # With kopf's /healthz, as in a pod: a test can check that liveness keeps answering.
    # Pinned to the emulator: a module on the real apiserver may point KUBECONFIG elsewhere when this starts.
    with OperatorThread(Settings(resync_seconds=5), namespaces=["t-*"], liveness_port=free_port(),
                        kubeconfig_path=apiserver) as running:
        yield running


@pytest.fixture
def namespace(kube) -> str:
    """A fresh namespace the shared operator watches (it watches t-*)."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    kube.create_namespace(name)
    return name


@pytest.fixture
def ray_local(tmp_path, monkeypatch):
    """A local Ray cluster for one test, as the fine-tune tests run their training on."""
    import ray

    monkeypatch.setenv("LLMOPS_RAY_STORAGE", str(tmp_path / "ray"))
    ray.init(num_cpus=2, include_dashboard=False,
             runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "PYTHONPATH": os.environ.get("PYTHONPATH", "")}})
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def serving_dir(tmp_path_factory) -> Path:
    """Scratch space of the model-server tests: the saved model, policies, prompts, server logs."""
    return tmp_path_factory.mktemp("serving")


@pytest.fixture(scope="module")
def model_dir(serving_dir) -> Path:
    """A tiny GPT-2 (random weights) saved with the built-in tokenizer."""
    from model_servers import save_tiny_gpt2

    return save_tiny_gpt2(serving_dir / "model")


@pytest.fixture(scope="module")
def predictor(serving_dir, model_dir):
    """The sandbox predictor serving model_dir; yields its port."""
    import sys

    from model_servers import MODEL, Server, wait_ready

    port = free_port()
    server = Server([sys.executable, "-m", "llmops_operator.servers.predictor", "--model_name", MODEL,
                     "--model_dir", str(model_dir), "--http_port", str(port), "--host", "127.0.0.1"], {},
                    serving_dir / "predictor.log")
    try:
        wait_ready(f"http://127.0.0.1:{port}/v1/models/{MODEL}", server.process)
        yield port
    finally:
        server.stop()
