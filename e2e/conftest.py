"""The user's journey, through kubectl only.

Against a real cluster when KUBECONFIG names one (with the operator, KubeRay and KServe installed);
otherwise against `llmops sandbox`, started here. The tests themselves never know which. The sandbox runs on the
real kube-apiserver when `make kube` has built it (LLMOPS_E2E_APISERVER=emulator keeps it on the emulator), with
the operator as the Helm chart runs it: the chart's ServiceAccount and exactly its RBAC, every refusal in its log a
failure of the test it happened in, and the journey's namespaces enforcing PodSecurity `restricted`: every pod
template the operator writes there (Jobs, CronJobs, RayJobs, KServe InferenceServices) is created as a dry-run Pod,
and a refusal fails the test it happened in.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "manifests" / "examples"
# Read once at import: other suites in the same pytest run may point KUBECONFIG at their own emulator.
CLUSTER_KUBECONFIG = os.environ.get("KUBECONFIG")
RESYNC_SECONDS = 10


def _sandbox_apiserver() -> str:
    """"real" when the control plane is built and the chart can be rendered, else "emulator"."""
    from llmops_sandbox.realkube import binaries

    wanted = os.environ.get("LLMOPS_E2E_APISERVER", "real")
    if wanted != "real" or not binaries.kube_binary().exists() or importlib.util.find_spec("helm_python") is None:
        return "emulator"
    return "real"


APISERVER = "emulator" if CLUSTER_KUBECONFIG else _sandbox_apiserver()
RESTRICTED = ("  labels: {pod-security.kubernetes.io/enforce: restricted, "
              "pod-security.kubernetes.io/warn: restricted}\n" if APISERVER == "real" else "")
_CHART_OPERATOR: list = []
"""The chart's operator while the sandbox on the real apiserver runs (one at most)."""
_ADMISSION: list = []
"""Its pod templates' dry-run admission (tests/realkube/template_admission.py), while it runs."""
_ADMITTED: list[str] = []
"""What the admission check covered, for the session's summary."""


def pytest_terminal_summary(terminalreporter):
    for line in _ADMITTED:
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def on_cluster() -> bool:
    """Whether the journey runs on a cluster named by KUBECONFIG rather than in the sandbox. (A fixture: test
    modules cannot import this conftest by name, as the other suites' conftest modules share it.)"""
    return bool(CLUSTER_KUBECONFIG)


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
    from llmops_sandbox.main import Sandbox
    from llmops_operator.core.settings import Settings

    real = APISERVER == "real"
    sandbox = Sandbox(tmp_path_factory.mktemp("sandbox"), settings=Settings(resync_seconds=RESYNC_SECONDS),
                      apiserver=APISERVER, run_operator=not real)
    with sandbox:
        # What a cluster provides out of band: the examples' data and docs claims (see docs/sandbox.md).
        sandbox.provide_claim("llmops-data", EXAMPLES / "data")
        sandbox.provide_claim("llmops-docs", ROOT / "docs")
        if not real:
            yield str(sandbox.kubeconfig)
            return
        with _chart_operator(sandbox, tmp_path_factory.mktemp("chart-operator")):
            yield str(sandbox.kubeconfig)


@contextmanager
def _chart_operator(sandbox, root: Path):
    """The operator as the Helm chart runs it (tests/realkube/chart_operator.py), beside the sandbox's stand-ins."""
    sys.path.insert(0, str(ROOT / "tests"))
    from realkube import chart_operator

    from realkube.template_admission import TemplateAdmission

    with chart_operator.beside(sandbox, root, RESYNC_SECONDS) as running:
        admission = TemplateAdmission(sandbox.client).start()
        _CHART_OPERATOR.append(running)
        _ADMISSION.append(admission)
        try:
            yield running
        finally:
            _CHART_OPERATOR.clear()
            _ADMISSION.clear()
            admission.stop()
            _ADMITTED.append(f"restricted PodSecurity admission: {admission.checked} pod templates of the chart's "
                             f"operator dry-run in {len(admission.namespaces)} namespaces, "
                             f"{len(admission.refused)} refused")
        # Not every selection of tests makes the operator write a pod template; every one makes a namespace.
        assert admission.namespaces, "the admission check found no restricted namespace: it checked nothing"
        assert not admission.refused, "pod templates refused by the restricted namespace:\n" + \
            "\n".join(admission.refused)


@pytest.fixture(autouse=True)
def _the_operator_is_never_refused():
    """On the real apiserver, a refusal in the chart operator's log while a test ran fails that test, and so does
    a pod template of the operator's that the restricted namespace refuses (a dry-run Pod from each)."""
    start = len(_CHART_OPERATOR[0].text()) if _CHART_OPERATOR else 0
    refused_before = len(_ADMISSION[0].refused) if _ADMISSION else 0
    yield
    if _ADMISSION:
        _ADMISSION[0].sweep()
        refused = _ADMISSION[0].refused[refused_before:]
        assert not refused, "pod templates refused by the restricted namespace:\n" + "\n".join(refused)
    if _CHART_OPERATOR:
        running = _CHART_OPERATOR[0]
        assert running.process.poll() is None, running.text()[-3000:]
        refusals = running.refusals(since=start)
        assert not refusals, "the API refused the operator:\n" + "\n".join(refusals)


@pytest.fixture(scope="session")
def kubectl(kubeconfig) -> Kubectl:
    return Kubectl(kubeconfig)


def _namespace(kubectl: Kubectl):
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    # apply, not `create namespace`: works the same on every API server (create sends protobuf).
    kubectl("apply", "-f", "-", stdin=f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n{RESTRICTED}")
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def namespace(kubectl):
    yield from _namespace(kubectl)


@pytest.fixture(scope="module")
def module_namespace(kubectl):
    """One namespace for a whole module: what its tests build (a served platform) is built once."""
    yield from _namespace(kubectl)


CLAIMS = {"llmops-data": EXAMPLES / "data", "llmops-docs": ROOT / "docs", "llmops-models": None, "llmops-feast": None}
"""The PersistentVolumeClaims the examples name, and what each starts with."""


def seed_claims(kubectl: Kubectl, namespace: str) -> None:
    """The examples' claims in `namespace`. The sandbox provides them itself (session-wide); on a cluster
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


class ServiceUrls:
    """How a test reaches an InferenceService: the sandbox's URL, read from status each time (a new revision gets
    a new one); on a cluster, a port-forward to the KServe transformer's Service, opened again when its pod went."""

    def __init__(self, kubectl: Kubectl, namespace: str):
        self.kubectl, self.namespace = kubectl, namespace
        self.forwards: dict[str, tuple[subprocess.Popen, str]] = {}
        self.opened = 0

    def __call__(self, name: str) -> str:
        if not CLUSTER_KUBECONFIG:
            url = self.kubectl.json("get", f"lsvc/{name}", "-n", self.namespace).get("status", {}).get("url")
            if not url:  # between two revisions
                raise ConnectionError(f"InferenceService {name!r} reports no status.url yet")
            return url
        forward = self.forwards.get(name)
        if forward is None or forward[0].poll() is not None:
            port = 18000 + self.opened
            self.opened += 1
            process = subprocess.Popen(
                ["kubectl", "--kubeconfig", self.kubectl.kubeconfig, "port-forward", "-n", self.namespace,
                 f"service/{name}-transformer", f"{port}:80"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            process.stdout.readline()  # "Forwarding from 127.0.0.1:<port> -> ..."
            self.forwards[name] = (process, f"http://127.0.0.1:{port}")
        return self.forwards[name][1]

    def close(self) -> None:
        for process, _ in self.forwards.values():
            process.terminate()


@pytest.fixture(scope="module")
def module_claims(kubectl, module_namespace):
    seed_claims(kubectl, module_namespace)


@pytest.fixture(scope="module")
def module_service_url(kubectl, module_namespace):
    urls = ServiceUrls(kubectl, module_namespace)
    yield urls
    urls.close()
