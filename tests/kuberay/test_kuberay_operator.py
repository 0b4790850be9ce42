"""The real KubeRay operator (the newest supported version, built by `make kube`) against the real apiserver:
it turns the RayJob our examples render into a RayCluster with our pod templates. Pods stay Pending (no kubelet)."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from llmops_sandbox.realkube import binaries

from .conftest import install_crds, load_crds, remove_crds, wait_for
from .test_rayjob_matrix import rendered_rayjobs

NEWEST = binaries.kuberay_versions()[-1]


@pytest.fixture(scope="module")
def kuberay_operator(real_control_plane, client, tmp_path_factory):
    binary = binaries.kuberay_binary(NEWEST)
    directory = binaries.kuberay_crd_dir(NEWEST)
    if not binary.exists() or directory is None:
        pytest.skip(f"KubeRay {NEWEST} is not built ({binary}): run `make kube`")
    crds = load_crds(directory, ("rayclusters", "rayjobs", "rayservices"))
    install_crds(client, crds)
    log = tmp_path_factory.mktemp("kuberay") / "ray-operator.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(binary), "--metrics-addr=0", "--health-probe-bind-address=0",
                                 "--enable-leader-election=false"],
                                env=dict(os.environ, KUBECONFIG=str(real_control_plane.kubeconfig)),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc, log
    finally:
        remove_crds(client, crds)  # while the operator runs: it removes its finalizers from what is left
        proc.terminate()
        proc.wait(15)


def _owned_clusters(client, namespace: str, uid: str) -> list[dict]:
    code, out = client.call("GET", f"/apis/ray.io/v1/namespaces/{namespace}/rayclusters")
    assert code == 200, out
    return [c for c in out["items"] if any(r["uid"] == uid for r in c["metadata"].get("ownerReferences", []))]


@pytest.mark.timeout(900)  # three megabyte-sized CRDs take minutes to install on a busy machine
def test_kuberay_creates_the_raycluster_from_our_rayjob(kuberay_operator, client):
    proc, log = kuberay_operator
    namespace = f"kuberay-{uuid.uuid4().hex[:6]}"
    assert client.call("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                       "metadata": {"name": namespace}})[0] == 201
    rayjob = rendered_rayjobs()[0]
    rayjob["metadata"]["namespace"] = namespace
    name = rayjob["metadata"]["name"]
    code, created = client.apply(rayjob, f"/apis/ray.io/v1/namespaces/{namespace}/rayjobs/{name}")
    assert code in (200, 201), created
    clusters: list[dict] = []

    def cluster_made() -> bool:
        assert proc.poll() is None, log.read_text()[-2000:]
        clusters[:] = _owned_clusters(client, namespace, created["metadata"]["uid"])
        return bool(clusters)

    wait_for(cluster_made, f"a RayCluster for RayJob {name} (operator log: {log})", timeout=180)
    ours, theirs = rayjob["spec"]["rayClusterSpec"], clusters[0]["spec"]
    head = theirs["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert head["image"] == ours["headGroupSpec"]["template"]["spec"]["containers"][0]["image"]
    assert [g["groupName"] for g in theirs.get("workerGroupSpecs", [])] == \
        [g["groupName"] for g in ours.get("workerGroupSpecs", [])]
    # KubeRay's finalizer and the garbage collector take the RayCluster with the RayJob.
    client.call("DELETE", f"/apis/ray.io/v1/namespaces/{namespace}/rayjobs/{name}")
    wait_for(lambda: not _owned_clusters(client, namespace, created["metadata"]["uid"]),
             f"RayCluster of {name} removed", timeout=180)
    client.call("DELETE", f"/api/v1/namespaces/{namespace}")
