"""Finalizers (deletionTimestamp, last finalizer removal deletes) and ownerReference garbage collection."""

from __future__ import annotations

from .conftest import configmap, gone, job, pod, widget

CONTAINERS = [{"name": "c", "image": "busybox"}]

W = "/apis/example.test/v1/namespaces/{ns}/widgets"
MERGE = "application/merge-patch+json"


def test_finalizers_hold_deletion(api, ns):
    path = W.format(ns=ns)
    api.ok("POST", path, widget({"metadata": {"name": "f", "finalizers": ["a/b", "c/d"]}, "spec": {"replicas": 1}}))
    rv = api.ok("GET", path)["metadata"]["resourceVersion"]
    deleting = api.ok("DELETE", path + "/f")
    assert deleting["metadata"]["deletionTimestamp"]
    assert api.ok("GET", path + "/f")["metadata"]["deletionTimestamp"]
    out = api.ok("PATCH", path + "/f", [{"op": "test", "path": "/metadata/finalizers", "value": ["a/b", "c/d"]},
                                        {"op": "remove", "path": "/metadata/finalizers/0"}],
                 content_type="application/json-patch+json")
    assert out["metadata"]["finalizers"] == ["c/d"]
    api.ok("PATCH", path + "/f", {"metadata": {"finalizers": None}}, content_type=MERGE)
    assert api.call("GET", path + "/f")[0] == 404
    events = api.watch(f"{path}?watch=1&resourceVersion={rv}&timeoutSeconds=1")
    assert [e["type"] for e in events] == ["MODIFIED", "MODIFIED", "DELETED"]


def test_owner_deletion_collects_dependents(api, ns):
    owner = api.ok("POST", W.format(ns=ns), widget({"metadata": {"name": "owner"}, "spec": {"replicas": 1}}))
    ref = {"apiVersion": "example.test/v1", "kind": "Widget", "name": "owner", "uid": owner["metadata"]["uid"],
           "controller": True, "blockOwnerDeletion": True}
    api.ok("POST", f"/api/v1/namespaces/{ns}/configmaps",
           configmap({"metadata": {"name": "dep", "ownerReferences": [ref]}}))
    api.ok("POST", f"/apis/batch/v1/namespaces/{ns}/jobs", job({
        "metadata": {"name": "job", "ownerReferences": [ref]},
        "spec": {"template": {"spec": {"containers": CONTAINERS, "restartPolicy": "Never"}}}}))
    pod_ref = {"apiVersion": "batch/v1", "kind": "Job", "name": "job",
               "uid": api.ok("GET", f"/apis/batch/v1/namespaces/{ns}/jobs/job")["metadata"]["uid"]}
    api.ok("POST", f"/api/v1/namespaces/{ns}/pods", pod({"metadata": {"name": "pod", "ownerReferences": [pod_ref]},
                                                         "spec": {"containers": CONTAINERS}}))
    api.ok("POST", f"/api/v1/namespaces/{ns}/configmaps", configmap({"metadata": {"name": "free"}}))
    api.ok("DELETE", W.format(ns=ns) + "/owner", {"propagationPolicy": "Background"})
    assert gone(api, f"/api/v1/namespaces/{ns}/configmaps/dep")
    assert gone(api, f"/apis/batch/v1/namespaces/{ns}/jobs/job")
    assert gone(api, f"/api/v1/namespaces/{ns}/pods/pod")
    assert api.call("GET", f"/api/v1/namespaces/{ns}/configmaps/free")[0] == 200


def test_orphan_keeps_dependents_and_finalized_owner_collects_later(api, ns):
    owner = api.ok("POST", W.format(ns=ns), widget({"metadata": {"name": "o", "finalizers": ["x/y"]},
                                             "spec": {"replicas": 1}}))
    ref = {"apiVersion": "example.test/v1", "kind": "Widget", "name": "o", "uid": owner["metadata"]["uid"]}
    api.ok("POST", f"/api/v1/namespaces/{ns}/configmaps",
           configmap({"metadata": {"name": "d", "ownerReferences": [ref]}}))
    api.ok("DELETE", W.format(ns=ns) + "/o")
    assert api.call("GET", f"/api/v1/namespaces/{ns}/configmaps/d")[0] == 200  # owner still finalizing
    api.ok("PATCH", W.format(ns=ns) + "/o", {"metadata": {"finalizers": []}}, content_type=MERGE)
    assert gone(api, f"/api/v1/namespaces/{ns}/configmaps/d")

    owner = api.ok("POST", W.format(ns=ns), widget({"metadata": {"name": "o2"}, "spec": {"replicas": 1}}))
    ref = dict(ref, name="o2", uid=owner["metadata"]["uid"])
    api.ok("POST", f"/api/v1/namespaces/{ns}/configmaps",
           configmap({"metadata": {"name": "kept", "ownerReferences": [ref]}}))
    # A dependent the garbage collector has not seen yet when its owner goes is collected later as dangling.
    # Its ConfigMap events arrive in order: once a later-created probe has been collected, it has seen `kept`.
    probe_owner = api.ok("POST", W.format(ns=ns), widget({"metadata": {"name": "p"}, "spec": {"replicas": 1}}))
    probe_ref = dict(ref, name="p", uid=probe_owner["metadata"]["uid"])
    api.ok("POST", f"/api/v1/namespaces/{ns}/configmaps",
           configmap({"metadata": {"name": "probe", "ownerReferences": [probe_ref]}}))
    api.ok("DELETE", W.format(ns=ns) + "/p")
    assert gone(api, f"/api/v1/namespaces/{ns}/configmaps/probe")
    api.ok("DELETE", W.format(ns=ns) + "/o2?propagationPolicy=Orphan")
    assert gone(api, W.format(ns=ns) + "/o2")
    kept = api.ok("GET", f"/api/v1/namespaces/{ns}/configmaps/kept")
    assert "ownerReferences" not in kept["metadata"]  # the orphaned dependent no longer names its owner


def test_table_output(api, ns):
    api.ok("POST", W.format(ns=ns), widget({"metadata": {"name": "t"}, "spec": {"replicas": 3}}))
    api.ok("PATCH", W.format(ns=ns) + "/t/status",
           {"status": {"conditions": [{"type": "Other", "status": "False"}, {"type": "Ready", "status": "True"}]}},
           content_type=MERGE)
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    table = api.ok("GET", W.format(ns=ns), accept=accept)
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Replicas", "Ready", "Age"]
    assert table["rows"][0]["cells"][:3] == ["t", 3, "True"]
    assert table["rows"][0]["object"]["metadata"]["name"] == "t"
    cm = api.ok("GET", f"/api/v1/namespaces/{ns}/configmaps", accept=accept)
    assert [c["name"] for c in cm["columnDefinitions"]] == ["Name", "Data", "Age"]
    events = api.ok("GET", f"/api/v1/namespaces/{ns}/events", accept=accept)
    assert [(c["name"], c["priority"]) for c in events["columnDefinitions"]] == [
        ("Last Seen", 0), ("Type", 0), ("Reason", 0), ("Object", 0), ("Subobject", 1), ("Source", 1),
        ("Message", 0), ("First Seen", 1), ("Count", 1), ("Name", 1)]
