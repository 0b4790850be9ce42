"""Fixtures that run a test module on the API emulator and on the real kube-apiserver (`make kube`).

A module opts in by importing them: `from apiservers import apiserver_kind, kube, namespace, operator`.
On the real apiserver the operator runs as the Helm chart runs it (tests/realkube/chart_operator.py): the chart's
ServiceAccount and RBAC, every refusal in its log a failure; namespaces enforce PodSecurity `restricted`; the
KubeRay and KServe CRDs are the sandbox's stand-in CRDs (removed again at the end of the module, so that
tests/kuberay finds no RayJob CRD but its own); KUBECONFIG names the operator's credentials for the module.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

import pytest

from kube_helpers import STANDINS, Kube, eventually

from llmops_operator.k8s.resources import resource_for


@dataclass
class RealApiserver:
    kube: Kube
    operator: object  # realkube.chart_operator.Running


@pytest.fixture(scope="module", params=["emulator", "real"])
def apiserver_kind(request, tmp_path_factory):
    """None on the emulator (the session fixtures serve), a RealApiserver on the real one."""
    if request.param == "emulator":
        yield None
        return
    from realkube import chart_operator, llmops

    kube = request.getfixturevalue("real_llmops_kube")
    plane = request.getfixturevalue("real_control_plane")
    standins = llmops.crd_documents([STANDINS])
    llmops.install(kube, standins)
    root = tmp_path_factory.mktemp("chart-operator")
    installed = chart_operator.install(kube, plane.url, plane.pki.ca, root)
    installed.env["LLMOPS_RESYNC_SECONDS"] = "5"  # as the emulator's shared operator: resync tests wait for it
    running = chart_operator.Running(installed, root / "operator.log")
    previous = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = str(installed.kubeconfig)  # passes a test runs itself act as the operator
    try:
        yield RealApiserver(kube, running)
    finally:
        os.environ["KUBECONFIG"] = previous or ""
        running.stop()
        llmops.remove(kube, standins)


@pytest.fixture
def kube(emulator_kube, apiserver_kind):
    return emulator_kube if apiserver_kind is None else apiserver_kind.kube


@pytest.fixture
def operator(operator, apiserver_kind):
    if apiserver_kind is None:
        yield operator
        return
    running = apiserver_kind.operator
    start = len(running.text())
    yield running
    assert running.process.poll() is None, running.text()[-3000:]
    refusals = running.refusals(since=start)  # this test's only: one refusal fails one test
    assert not refusals, "the API refused the operator:\n" + "\n".join(refusals)


@pytest.fixture
def namespace(kube, apiserver_kind) -> str:
    """A fresh t-* namespace (the emulator's shared operator watches t-*); `restricted` on the real apiserver."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    if apiserver_kind is None:
        kube.create_namespace(name)
        return name
    from realkube.chart_operator import restricted_namespace

    restricted_namespace(kube, name)
    eventually(lambda: kube.get(resource_for("v1", "ServiceAccount"), name, "default"), timeout=60,
               what="the namespace's default ServiceAccount")
    return name
