"""Fixtures that run a test module on the real kube-apiserver (`make kube`), and on the API emulator too.

A module opts in by importing them (`from apiservers import apiserver_kind, kube, namespace, new_namespace,
operator`); with `APISERVERS = REAL_WHEN_BUILT` it runs on the real apiserver alone when that is built (on the
emulator when it is not), else on both. On the real apiserver the operator runs as the Helm chart runs it
(tests/realkube/chart_operator.py): the chart's ServiceAccount and RBAC, every refusal in its log a failure;
passes a test runs itself (`reconcile_once`) use the same credentials, and a refusal they log fails the test;
namespaces enforce PodSecurity `restricted`; the KubeRay and KServe CRDs are the sandbox's stand-in CRDs (removed
again at the end of the module, so that tests/kuberay finds no RayJob CRD but its own); KUBECONFIG names the
operator's credentials for the module. The chart's operator starts only for a module whose tests ask for
`operator`: the others run their passes themselves, with nothing else reconciling beside them.
"""

from __future__ import annotations

import logging
import os
import urllib.error
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import pytest

from kube_helpers import STANDINS, Kube, eventually

from llmops_operator.k8s.resources import resource_for
from llmops_sandbox.realkube import binaries


@dataclass
class RealApiserver:
    kube: Kube
    installed: object  # realkube.chart_operator.ChartOperator
    root: object  # where the operator's files go
    plane: object  # llmops_sandbox.realkube.controlplane's running control plane
    running: object = None  # realkube.chart_operator.Running, once a test asks for the operator

    def operator(self):
        """The chart's operator for the module, started on first use."""
        if self.running is None:
            from realkube.chart_operator import Running

            from llmops_sandbox.ports import free_port

            self.running = Running(self.installed, self.root / "operator.log", metrics_port=free_port())
        return self.running

    def kubeconfig_of(self, namespace: str, account: str):
        """A kubeconfig with a token minted for ServiceAccount `namespace/account` (RBAC decides what it may do)."""
        from realkube.chart_operator import service_account_kubeconfig

        return service_account_kubeconfig(self.kube, self.plane.url, self.plane.pki.ca, namespace, account,
                                          self.root / f"{namespace}-{account}-kubeconfig")


def _on(request, tmp_path_factory):
    if request.param == "emulator":
        yield None
        return
    from realkube import chart_operator, llmops

    kube = request.getfixturevalue("real_llmops_kube")
    plane = request.getfixturevalue("real_control_plane")
    standins = llmops.crd_documents([STANDINS])
    llmops.install(kube, standins)
    for crd in standins:
        eventually(lambda crd=crd: serves(kube, crd), timeout=60, what=f"{crd['metadata']['name']} served")
    root = tmp_path_factory.mktemp("chart-operator")
    installed = chart_operator.install(kube, plane.url, plane.pki.ca, root)
    installed.env["LLMOPS_RESYNC_SECONDS"] = "5"  # as the emulator's shared operator: resync tests wait for it
    previous = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = str(installed.kubeconfig)  # passes a test runs itself act as the operator
    real = RealApiserver(kube, installed, root, plane)
    try:
        yield real
    finally:
        if real.running is not None:
            real.running.stop()
        if previous is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = previous
        llmops.remove(kube, standins)


def serves(kube: Kube, crd: dict) -> bool:
    """Whether a just-Established CRD's objects can be listed: until its storage is ready the apiserver answers
    429 (storage is (re)initializing), which a pass the test runs itself would report rather than retry."""
    spec = crd["spec"]
    version = next(v["name"] for v in spec["versions"] if v.get("served"))
    try:
        kube.request("GET", f"/apis/{spec['group']}/{version}/{spec['names']['plural']}?limit=1")
    except urllib.error.HTTPError as err:
        raise AssertionError(f"{err.code} {err.reason}") from err
    return True


BOTH = ("emulator", "real")
REAL_WHEN_BUILT = ("real" if binaries.kube_binary().exists() else "emulator",)
"""What a module sets as `APISERVERS` to run on the real apiserver alone when `make kube` has built it (on the
emulator when it has not): for modules whose tests are too slow to run twice. BOTH is the default."""


def parametrize(metafunc) -> None:
    """pytest_generate_tests of the integration suite: each module on the apiservers its APISERVERS names."""
    if "apiserver_kind" in metafunc.fixturenames:
        kinds = getattr(metafunc.module, "APISERVERS", BOTH)
        metafunc.parametrize("apiserver_kind", kinds, indirect=True, scope="module")


@pytest.fixture(scope="module")
def apiserver_kind(request, tmp_path_factory):
    """None on the emulator (the session fixtures serve), a RealApiserver on the real one."""
    yield from _on(request, tmp_path_factory)


@contextmanager
def refusals_fail(caplog) -> Iterator[None]:
    """A refusal logged by a pass the test runs itself (with the chart's credentials) fails the test."""
    from realkube.chart_operator import REFUSALS

    caplog.set_level(logging.INFO, "llmops")
    yield
    refusals = [r.getMessage() for r in caplog.records if REFUSALS.search(r.getMessage())]
    assert not refusals, "the API refused the operator's own passes:\n" + "\n".join(refusals)


@pytest.fixture
def kube(emulator_kube, apiserver_kind, caplog):
    if apiserver_kind is None:
        yield emulator_kube
        return
    with refusals_fail(caplog):
        yield apiserver_kind.kube


@pytest.fixture
def operator(operator, apiserver_kind):
    if apiserver_kind is None:
        yield operator
        return
    running = apiserver_kind.operator()
    start = len(running.text())
    yield running
    assert running.process.poll() is None, running.text()[-3000:]
    refusals = running.refusals(since=start)  # this test's only: one refusal fails one test
    assert not refusals, "the API refused the operator:\n" + "\n".join(refusals)


@pytest.fixture
def new_namespace(kube, apiserver_kind) -> Callable[[str], str]:
    """Makes a fresh namespace named `<prefix>-…`; `restricted` on the real apiserver. On the emulator the shared
    operator does not watch it (it watches t-*); on the real one only a module asking for `operator` runs one."""
    def make(prefix: str) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        if apiserver_kind is None:
            kube.create_namespace(name)
            return name
        from realkube.chart_operator import restricted_namespace

        restricted_namespace(kube, name)
        eventually(lambda: kube.get(resource_for("v1", "ServiceAccount"), name, "default"), timeout=60,
                   what="the namespace's default ServiceAccount")
        return name
    return make


@pytest.fixture
def namespace(new_namespace) -> str:
    """A fresh t-* namespace (the emulator's shared operator watches t-*); `restricted` on the real apiserver."""
    return new_namespace("t")
