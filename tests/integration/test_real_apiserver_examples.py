"""Every example on a real kube-apiserver, reconciled by the operator as the Helm chart runs it.

The operator runs with the chart's ServiceAccount, a token minted for it and exactly the chart's RBAC (rendered by
Helm's engine); every refusal in its log fails the run. The tenant namespace enforces PodSecurity `restricted`,
and every pod template the examples lead to goes through the real admission chain as a dry-run Pod. The KubeRay
and KServe CRDs are the sandbox's stand-in CRDs, so the RayJobs and InferenceServices are really written; no
stand-in runs them (that is the sandbox's and e2e's business), so the runs stay where a cluster without workers
would leave them.
"""

from __future__ import annotations

import time
import uuid

import pytest

from kube_helpers import EXAMPLES, STANDINS, condition, eventually, example_documents, llmops_examples

from llmops_operator.cli.render import render_paths
from llmops_operator.k8s.resources import resource_for
from realkube import chart_operator, llmops, pod_admission

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

LLMOPS = "llmops.dev/v1alpha1"
CHILD_KINDS = [resource_for(*k) for k in (("batch/v1", "Job"), ("batch/v1", "CronJob"), ("ray.io/v1", "RayJob"),
                                          ("serving.kserve.io/v1beta1", "InferenceService"))]
SETTLE_SECONDS = 300
STALLS_THAT_NAME_WHAT_IS_MISSING = {"EngineMissing"}


@pytest.fixture(scope="module")
def chart(real_llmops_kube, real_control_plane, tmp_path_factory):
    kube = real_llmops_kube
    standins = llmops.crd_documents([STANDINS])
    llmops.install(kube, standins)
    root = tmp_path_factory.mktemp("chart-operator")
    installed = chart_operator.install(kube, real_control_plane.url, real_control_plane.pki.ca, root)
    running = chart_operator.Running(installed, root / "operator.log")
    try:
        yield installed, running
    finally:
        running.stop()
        llmops.remove(kube, standins)  # the RayJob CRD is the real KubeRay one in tests/kuberay


def _statuses(kube, namespace: str) -> dict[tuple[str, str], dict | None]:
    return {(kind, name): condition(kube.get(resource_for(LLMOPS, kind), namespace, name), "Ready")
            for kind, name in llmops_examples()}


@pytest.fixture(scope="module")
def tenant(chart, real_llmops_kube) -> str:
    """A restricted namespace with every example applied (as `kubectl apply -f manifests/examples/`), once every
    example object has a Ready condition or SETTLE_SECONDS have passed (each test then says which has none)."""
    kube = real_llmops_kube
    namespace = f"rk-{uuid.uuid4().hex[:8]}"
    chart_operator.restricted_namespace(kube, namespace)
    eventually(lambda: kube.get(resource_for("v1", "ServiceAccount"), namespace, "default"), timeout=60,
               what="the namespace's default ServiceAccount")
    for doc in example_documents():
        kube.apply(doc, namespace)
    deadline = time.monotonic() + SETTLE_SECONDS
    while None in _statuses(kube, namespace).values() and time.monotonic() < deadline and \
            chart[1].process.poll() is None:
        time.sleep(1)
    yield namespace
    kube.delete(resource_for("v1", "Namespace"), None, namespace)


@pytest.mark.parametrize("kind,name", llmops_examples())
def test_every_example_gets_a_status_under_the_chart_rbac(tenant, real_llmops_kube, chart, kind, name):
    live = real_llmops_kube.get(resource_for(LLMOPS, kind), tenant, name)
    assert live is not None
    ready, stalled = condition(live, "Ready"), condition(live, "Stalled")
    assert ready is not None, f"{kind}/{name} has no Ready condition; operator log:\n{chart[1].text()[-3000:]}"
    if stalled is not None and stalled["status"] == "True":
        assert stalled["reason"] in STALLS_THAT_NAME_WHAT_IS_MISSING, stalled
    for cond in live["status"]["conditions"]:
        assert not chart_operator.REFUSALS.search(cond.get("message", "")), cond


def test_the_operator_is_never_refused(tenant, chart):
    _, running = chart
    assert running.process.poll() is None, running.text()[-3000:]
    assert running.refusals() == []


def test_every_pod_template_passes_restricted_admission(tenant, real_llmops_kube, chart):
    """The operator's own pod (the chart's Deployment, in its restricted namespace), every child the operator
    wrote here, and every child the examples render offline (those still waiting for a reference included)."""
    kube = real_llmops_kube
    installed, _ = chart
    # The control: the namespace really enforces `restricted`.
    baseline_only = {"spec": {"containers": [{"name": "c", "image": "x"}]}}
    assert "violates PodSecurity" in (pod_admission.dry_run_pod(kube, tenant, "baseline", baseline_only) or "")
    refused = {}
    message = pod_admission.dry_run_pod(kube, installed.namespace, "llmops-operator", installed.pod_template)
    if message:
        refused["chart Deployment"] = message
    # A real list's items carry no apiVersion or kind.
    written = [{**child, "apiVersion": where.api_version, "kind": where.kind}
               for where in CHILD_KINDS for child in kube.list(where, tenant)]
    # The InferenceService waits for its FineTune to succeed; its templates are checked as rendered.
    assert {c["kind"] for c in written} >= {"Job", "RayJob"}, "the operator wrote no children"
    rendered = [c for c in render_paths([EXAMPLES]) if c.get("kind") in {k.kind for k in CHILD_KINDS}]
    for source, children in (("written", written), ("rendered", rendered)):
        for child in children:
            for where, template in pod_admission.pod_templates(child):
                name = f"{child['kind'].lower()}-{child['metadata']['name']}"
                message = pod_admission.dry_run_pod(kube, tenant, name, template,
                                                    keep_service_account=source == "written")
                if message:
                    refused[f"{source} {child['kind']}/{child['metadata']['name']} {where}"] = message
    assert not refused, refused
