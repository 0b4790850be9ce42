"""The user's journey, through kubectl only.

Against a real cluster when KUBECONFIG names one (with the operator, KubeRay and KServe installed);
otherwise against `llmops sandbox`, started here. The tests themselves never know which.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "manifests" / "examples"
# Read once at import: other suites in the same pytest run may point KUBECONFIG at their own emulator.
CLUSTER_KUBECONFIG = os.environ.get("KUBECONFIG")


class Kubectl:
    def __init__(self, kubeconfig: str):
        self.kubeconfig = kubeconfig

    def __call__(self, *args: str, check: bool = True, timeout: float = 120, stdin: str | None = None
                 ) -> subprocess.CompletedProcess:
        result = subprocess.run(["kubectl", "--kubeconfig", self.kubeconfig, *args], capture_output=True,
                                text=True, timeout=timeout, input=stdin)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def json(self, *args: str) -> dict:
        return json.loads(self(*args, "-o", "json").stdout)


@pytest.fixture(scope="session")
def kubeconfig(tmp_path_factory):
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    if CLUSTER_KUBECONFIG and Path(CLUSTER_KUBECONFIG).exists():
        yield CLUSTER_KUBECONFIG
        return
    from llmops_operator.sandbox.main import Sandbox
    from llmops_operator.settings import Settings

    # What a cluster provides out of band: the examples' data and docs claims (see docs/sandbox.md).
    with Sandbox(tmp_path_factory.mktemp("sandbox"), settings=Settings(resync_seconds=10)) as sandbox:
        sandbox.provide_claim("llmops-data", EXAMPLES / "data")
        sandbox.provide_claim("llmops-docs", ROOT / "docs")
        yield str(sandbox.kubeconfig)


@pytest.fixture(scope="session")
def kubectl(kubeconfig) -> Kubectl:
    return Kubectl(kubeconfig)


@pytest.fixture
def namespace(kubectl):
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    # apply, not `create namespace`: works the same on every API server (create sends protobuf).
    kubectl("apply", "-f", "-", stdin=f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n")
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)
