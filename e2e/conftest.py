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


CLAIMS = {"llmops-data": EXAMPLES / "data", "llmops-docs": ROOT / "docs", "llmops-models": None, "llmops-feast": None}
"""The PersistentVolumeClaims the examples name, and what each starts with."""


@pytest.fixture
def example_claims(kubectl, namespace):
    """The examples' claims in the test namespace. The sandbox provides them itself (session-wide); on a cluster
    they are created here and seeded through a short-lived pod."""
    if not CLUSTER_KUBECONFIG:
        return
    for claim in CLAIMS:
        kubectl("apply", "-n", namespace, "-f", "-", stdin=(
            f"apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: {claim}}}\n"
            "spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n"))
    seeded = [claim for claim, source in CLAIMS.items() if source]
    volumes = ", ".join(f"{{name: {c}, persistentVolumeClaim: {{claimName: {c}}}}}" for c in seeded)
    mounts = ", ".join(f"{{name: {c}, mountPath: /seed/{c}}}" for c in seeded)
    kubectl("apply", "-n", namespace, "-f", "-", stdin=(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: seed}\nspec:\n"
        "  containers: [{name: seed, image: busybox:1.36, command: [sleep, '3600'], volumeMounts: [" + mounts + "]}]\n"
        "  volumes: [" + volumes + "]\n"))
    kubectl("wait", "-n", namespace, "pod/seed", "--for=condition=Ready", "--timeout=180s", timeout=200)
    for claim in seeded:
        kubectl("cp", "-n", namespace, f"{CLAIMS[claim]}/.", f"seed:/seed/{claim}", timeout=300)
    kubectl("delete", "-n", namespace, "pod/seed", "--wait=true")


@pytest.fixture
def service_url(kubectl, namespace):
    """How the test reaches an InferenceService: the sandbox's URL is local; on a cluster, a port-forward
    to the KServe transformer's Service."""
    forwards = []

    def url(name: str) -> str:
        if not CLUSTER_KUBECONFIG:
            return kubectl.json("get", f"lsvc/{name}", "-n", namespace)["status"]["url"]
        port = 18000 + len(forwards)
        forwards.append(subprocess.Popen(
            ["kubectl", "--kubeconfig", kubectl.kubeconfig, "port-forward", "-n", namespace,
             f"service/{name}-transformer", f"{port}:80"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
        forwards[-1].stdout.readline()  # "Forwarding from 127.0.0.1:<port> -> ..."
        return f"http://127.0.0.1:{port}"

    yield url
    for forward in forwards:
        forward.terminate()
