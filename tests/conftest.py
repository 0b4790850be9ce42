"""Suite-wide settings: no test may reach outside this machine."""

import os

# prometheus_client picks single- or multi-process value storage when first imported; import it before any
# test module imports feast (which sets the multi-process variables) so the suite keeps one mode throughout.
import prometheus_client  # noqa: E402,F401

os.environ.setdefault("LLMOPS_PRICING_FILE", "")

import pytest

PROMETHEUS_MULTIPROCESS_VARIABLES = ("PROMETHEUS_MULTIPROC_DIR", "PROMETHEUS_MULTIPROCESS_DIR")
_AT_START = {name: os.environ.get(name) for name in PROMETHEUS_MULTIPROCESS_VARIABLES}


def _restore(values: dict) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def pytest_collection_finish(session):
    _restore(_AT_START)  # a test module that imports feast at collection time


@pytest.fixture(autouse=True)
def _no_leaked_prometheus_multiprocess_mode():
    """Importing feast switches prometheus_client to multi-process mode for the whole process (and every process
    started after it) by setting these variables; a test that imports it must not change how later tests and
    the sandbox's servers count metrics."""
    before = {name: os.environ.get(name) for name in PROMETHEUS_MULTIPROCESS_VARIABLES}
    yield
    _restore(before)


@pytest.fixture(scope="session")
def real_control_plane(tmp_path_factory):
    """etcd, kube-apiserver and kube-controller-manager built by `make kube`, one set per test session."""
    from llmops_sandbox.realkube import binaries, controlplane

    binary = binaries.kube_binary()
    if not binary.exists():
        pytest.skip(f"the real control plane is not built ({binary} is missing): run `make kube`")
    with controlplane.start(tmp_path_factory.mktemp("realkube"), binary) as plane:
        yield plane


@pytest.fixture(scope="session")
def real_llmops_kube(real_control_plane):
    """The real control plane with the llmops.dev CRDs installed and known to its garbage collector; a blocking
    admin client to it."""
    from llmops_operator.k8s.blocking import BlockingClient
    from realkube import llmops

    client = BlockingClient(real_control_plane.kubeconfig)
    llmops.install(client, llmops.llmops_crds())
    llmops.wait_until_collected_by_owner(client)
    return client
