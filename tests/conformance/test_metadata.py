"""uid, resourceVersion, creationTimestamp, generation, generateName, namespaces from the URL."""

from __future__ import annotations

import re

from .conftest import configmap, deployment, gadget, gone, widget

W = "/apis/example.test/v1/namespaces/{ns}/widgets"


def test_server_sets_metadata(api, ns):
    a = api.ok("POST", W.format(ns=ns), {"apiVersion": "example.test/v1", "kind": "Widget",
                                         "metadata": {"name": "a"}, "spec": {"replicas": 1}})
    b = api.ok("POST", f"/api/v1/namespaces/{ns}/configmaps", configmap({"metadata": {"name": "b"}}))
    meta = a["metadata"]
    assert re.fullmatch(r"[0-9a-f-]{36}", meta["uid"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["creationTimestamp"])
    assert meta["namespace"] == ns and meta["generation"] == 1
    assert isinstance(meta["resourceVersion"], str)
    assert int(b["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])  # one global counter
    assert a["metadata"]["uid"] != b["metadata"]["uid"]


def test_generation_bumps_on_spec_changes_only(api, ns):
    path = W.format(ns=ns)
    api.ok("POST", path, widget({"metadata": {"name": "g"}, "spec": {"replicas": 1}}))
    labelled = api.ok("PATCH", f"{path}/g", {"metadata": {"labels": {"x": "y"}}},
                      content_type="application/merge-patch+json")
    assert labelled["metadata"]["generation"] == 1
    status = api.ok("PATCH", f"{path}/g/status", {"status": {"phase": "Running"}},
                    content_type="application/merge-patch+json")
    assert status["metadata"]["generation"] == 1
    assert int(status["metadata"]["resourceVersion"]) > int(labelled["metadata"]["resourceVersion"])
    spec = api.ok("PATCH", f"{path}/g", {"spec": {"replicas": 2}}, content_type="application/merge-patch+json")
    assert spec["metadata"]["generation"] == 2
    # Built-in kinds with a spec track it too; ConfigMaps (no spec) have none.
    path = f"/apis/apps/v1/namespaces/{ns}/deployments"
    dep = api.ok("POST", path, deployment("d", [{"name": "c", "image": "1"}]))
    assert dep["metadata"]["generation"] == 1
    dep = api.ok("PATCH", path + "/d", {"spec": {"replicas": 3}}, content_type="application/merge-patch+json")
    assert dep["metadata"]["generation"] == 2
    cm = api.ok("POST", f"/api/v1/namespaces/{ns}/configmaps",
                configmap({"metadata": {"name": "c"}, "data": {"a": "1"}}))
    cm["data"]["a"] = "2"
    assert "generation" not in api.ok("PUT", f"/api/v1/namespaces/{ns}/configmaps/c", cm)["metadata"]


def test_generate_name(api, ns):
    obj = api.ok("POST", f"/api/v1/namespaces/{ns}/configmaps", configmap({"metadata": {"generateName": "gen-"}}))
    assert re.fullmatch(r"gen-[a-z0-9]{5}", obj["metadata"]["name"])


def test_namespace_from_url_and_mismatch(api, ns):
    obj = api.ok("POST", f"/api/v1/namespaces/{ns}/configmaps", configmap({"metadata": {"name": "n"}}))
    assert obj["metadata"]["namespace"] == ns
    code, err = api.call("POST", f"/api/v1/namespaces/{ns}/configmaps",
                         {"metadata": {"name": "m", "namespace": "elsewhere"}})
    assert code == 400 and err["reason"] == "BadRequest" and err["kind"] == "Status"


def test_namespace_lifecycle(api):
    ns = api.namespace()
    namespace = api.ok("GET", f"/api/v1/namespaces/{ns}")
    assert namespace["status"]["phase"] == "Active"
    assert namespace["metadata"]["labels"] == {"kubernetes.io/metadata.name": ns}
    code, err = api.call("POST", "/api/v1/namespaces/nowhere/configmaps", configmap({"metadata": {"name": "x"}}))
    assert code == 404 and err["reason"] == "NotFound"
    api.ok("POST", f"/api/v1/namespaces/{ns}/configmaps", configmap({"metadata": {"name": "x"}}))
    api.ok("POST", W.format(ns=ns), widget({"metadata": {"name": "w"}, "spec": {"replicas": 1}}))
    deleting = api.ok("DELETE", f"/api/v1/namespaces/{ns}")
    assert deleting["status"]["phase"] == "Terminating" and deleting["metadata"]["deletionTimestamp"]
    assert gone(api, f"/api/v1/namespaces/{ns}/configmaps/x")
    assert gone(api, W.format(ns=ns) + "/w")
    assert gone(api, f"/api/v1/namespaces/{ns}")


def test_cluster_scoped_objects_have_no_namespace(api):
    obj = api.ok("POST", "/apis/example.test/v1/gadgets", gadget({"metadata": {"name": "gz", "namespace": "x"}}))
    assert "namespace" not in obj["metadata"]
    api.ok("DELETE", "/apis/example.test/v1/gadgets/gz")


def test_errors_are_status_objects(api, ns):
    code, err = api.call("GET", f"/api/v1/namespaces/{ns}/configmaps/missing")
    assert code == 404
    assert err["kind"] == "Status" and err["apiVersion"] == "v1" and err["status"] == "Failure"
    assert err["reason"] == "NotFound" and err["code"] == 404 and err["details"]["name"] == "missing"
    assert err["message"] == 'configmaps "missing" not found'
    code, err = api.call("PUT", f"/api/v1/namespaces/{ns}/configmaps", configmap({"metadata": {"name": "p"}}))
    assert code == 405 and err["reason"] == "MethodNotAllowed"
