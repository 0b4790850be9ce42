"""GET, LIST (selectors), POST, PUT (optimistic concurrency), PATCH flavours, DELETE."""

from __future__ import annotations

import json

import pytest

from .conftest import ASYNC_DEADLINE, configmap, deployment, eventually, thing

W = "/apis/example.test/v1/namespaces/{ns}/widgets"
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"


def _widget(name, replicas=1, **labels):
    return {"apiVersion": "example.test/v1", "kind": "Widget",
            "metadata": {"name": name, "labels": labels}, "spec": {"replicas": replicas}}


def test_create_get_conflict(api, ns):
    created = api.ok("POST", W.format(ns=ns), _widget("a"))
    assert api.ok("GET", W.format(ns=ns) + "/a") == created
    code, err = api.call("POST", W.format(ns=ns), _widget("a"))
    assert code == 409 and err["reason"] == "AlreadyExists"


def test_list_and_selectors(api, ns):
    other = api.namespace()
    api.ok("POST", W.format(ns=ns), _widget("a", app="x", tier="web", ns=ns))
    api.ok("POST", W.format(ns=ns), _widget("b", app="y", ns=ns))
    api.ok("POST", W.format(ns=ns), _widget("c", ns=ns))
    api.ok("POST", W.format(ns=other), _widget("d", app="x", ns=ns))

    def names(query, path=None):
        out = api.ok("GET", (path or W.format(ns=ns)) + query)
        assert out["kind"] == "WidgetList" and out["apiVersion"] == "example.test/v1"
        assert out["metadata"]["resourceVersion"]
        return sorted(i["metadata"]["name"] for i in out["items"])

    assert names("") == ["a", "b", "c"]
    assert names("?labelSelector=app%3Dx") == ["a"]
    assert names("?labelSelector=app%3D%3Dx") == ["a"]
    assert names("?labelSelector=app!%3Dx") == ["b", "c"]
    assert names("?labelSelector=app%3Dx,ns%3D" + ns) == ["a"]
    assert names("?labelSelector=app%20in%20(x,y)") == ["a", "b"]
    assert names("?labelSelector=app%20notin%20(x)") == ["b", "c"]
    assert names("?labelSelector=app") == ["a", "b"]
    assert names("?labelSelector=!app") == ["c"]
    assert names("?labelSelector=app%3Dx,tier%3Dweb") == ["a"]
    assert names("?fieldSelector=metadata.name%3Db") == ["b"]
    assert names("", f"/apis/example.test/v1/widgets?labelSelector=app%3Dx,ns%3D{ns}") == ["a", "d"]
    assert names(f"?fieldSelector=metadata.namespace%3D{other}", "/apis/example.test/v1/widgets") == ["d"]


def test_put_optimistic_concurrency(api, ns):
    obj = api.ok("POST", W.format(ns=ns), _widget("p"))
    stale = dict(obj, spec={"replicas": 2})
    fresh = api.ok("PUT", W.format(ns=ns) + "/p", stale)
    assert fresh["spec"]["replicas"] == 2
    code, err = api.call("PUT", W.format(ns=ns) + "/p", dict(stale, spec={"replicas": 3}))
    assert code == 409 and err["reason"] == "Conflict"
    unconditional = dict(fresh, spec={"replicas": 4})
    del unconditional["metadata"]["resourceVersion"]
    code, err = api.call("PUT", W.format(ns=ns) + "/p", unconditional)
    assert code == 422 and err["message"] == (f'widgets.example.test "p" is invalid: metadata.resourceVersion: '
                                              'Invalid value: 0: must be specified for an update')
    # Built-in kinds allow an unconditional update.
    cm = api.ok("POST", f"/api/v1/namespaces/{ns}/configmaps", configmap({"metadata": {"name": "p"}}))
    del cm["metadata"]["resourceVersion"]
    assert api.ok("PUT", f"/api/v1/namespaces/{ns}/configmaps/p", dict(cm, data={"a": "1"}))["data"] == {"a": "1"}


def test_patch_flavours(api, ns):
    path = W.format(ns=ns) + "/q"
    api.ok("POST", W.format(ns=ns), dict(_widget("q"), spec={"replicas": 1, "mode": "small",
                                                               "containers": [{"name": "a", "image": "1"}]}))
    out = api.ok("PATCH", path, {"spec": {"mode": None, "replicas": 2}}, content_type=MERGE)
    assert out["spec"] == {"replicas": 2, "containers": [{"name": "a", "image": "1"}]}
    out = api.ok("PATCH", path, [{"op": "replace", "path": "/spec/replicas", "value": 3}],
                 content_type="application/json-patch+json")
    assert out["spec"]["replicas"] == 3
    code, err = api.call("PATCH", path, [{"op": "test", "path": "/spec/replicas", "value": 9},
                                         {"op": "replace", "path": "/spec/replicas", "value": 4}],
                         content_type="application/json-patch+json")
    assert code == 422 and err["reason"] == "Invalid"
    code, err = api.call("PATCH", path, {"spec": {"containers": [{"name": "b", "image": "2"}]}},
                         content_type=STRATEGIC)
    assert code == 415 and err["reason"] == "UnsupportedMediaType"  # custom resources have no patch strategy
    assert err["message"] == ("the body of the request was in an unknown format - accepted media types include: "
                              "application/json-patch+json, application/merge-patch+json, "
                              "application/apply-patch+yaml")
    code, _ = api.call("PATCH", path, {"spec": {}}, content_type="text/plain")
    assert code == 415


def test_strategic_merge_patch_merges_built_in_lists_by_key(api, ns):
    path = f"/apis/apps/v1/namespaces/{ns}/deployments"
    api.ok("POST", path, deployment("d", [{"name": "a", "image": "1"}]))
    out = api.ok("PATCH", path + "/d", {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "2"}]}}}},
                 content_type=STRATEGIC)
    containers = out["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("b", "2"), ("a", "1")]


def test_server_side_apply(api, ns):
    path = W.format(ns=ns) + "/s"
    code, err = api.call("PATCH", path, _widget("s"), content_type="application/apply-patch+yaml")
    assert code == 422 and err["reason"] == "Invalid"
    assert err["message"] == ('PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                              "is required for apply patch")
    body = dict(_widget("s", 1), spec={"replicas": 1, "mode": "small", "containers": [{"name": "a", "image": "1"}]})
    code, created = api.call("PATCH", path + "?fieldManager=me", body, content_type="application/apply-patch+yaml")
    assert code == 201 and created["spec"]["mode"] == "small"
    # A second manager adds a container; the first stops applying `mode`.
    api.ok("PATCH", path + "?fieldManager=other&force=true",
           {"apiVersion": "example.test/v1", "kind": "Widget", "metadata": {"name": "s"},
            "spec": {"containers": [{"name": "b", "image": "2"}]}}, content_type="application/apply-patch+yaml")
    yaml_body = ("apiVersion: example.test/v1\nkind: Widget\nmetadata:\n  name: s\nspec:\n  replicas: 2\n"
                 "  containers:\n  - name: a\n    image: '3'\n")
    out = api.ok("PATCH", path + "?fieldManager=me", yaml_body, content_type="application/apply-patch+yaml")
    assert out["spec"]["replicas"] == 2 and "mode" not in out["spec"]
    assert out["spec"]["containers"] == [{"name": "a", "image": "3"}, {"name": "b", "image": "2"}]


def test_delete(api, ns):
    uid = api.ok("POST", W.format(ns=ns), _widget("d"))["metadata"]["uid"]
    gone = api.ok("DELETE", W.format(ns=ns) + "/d", {"propagationPolicy": "Background"})
    assert gone == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                    "details": {"name": "d", "group": "example.test", "kind": "widgets", "uid": uid}}
    assert api.call("GET", W.format(ns=ns) + "/d")[0] == 404
    assert api.call("DELETE", W.format(ns=ns) + "/d?propagationPolicy=Foreground")[0] == 404


def test_delete_collection(api, ns):
    path = f"/api/v1/namespaces/{ns}/configmaps"
    for name, app in (("a", "x"), ("b", "x"), ("c", "y")):
        api.ok("POST", path, configmap({"metadata": {"name": name, "labels": {"app": app}}}))
    code, out = api.call("DELETE", path + "?labelSelector=app%3Dx")
    assert code == 200 and out["kind"] == "ConfigMapList", out
    assert sorted(i["metadata"]["name"] for i in out["items"]) == ["a", "b"]
    assert [i["metadata"]["name"] for i in api.ok("GET", path + "?labelSelector=app")["items"]] == ["c"]


CONTAINERS = [{"name": "c", "image": "busybox"}]
POD = {"containers": CONTAINERS, "restartPolicy": "Never"}


def test_builtins_accept_valid_objects(api, ns):
    about = {"kind": "Pod", "name": "p", "namespace": ns}
    for path, kind, body in [
        (f"/api/v1/namespaces/{ns}/secrets", "v1/Secret", {"data": {"k": "dg=="}}),
        (f"/api/v1/namespaces/{ns}/services", "v1/Service", {"spec": {"ports": [{"port": 80}]}}),
        (f"/api/v1/namespaces/{ns}/serviceaccounts", "v1/ServiceAccount", {}),
        (f"/api/v1/namespaces/{ns}/pods", "v1/Pod", {"spec": {"containers": CONTAINERS}}),
        (f"/api/v1/namespaces/{ns}/events", "v1/Event", {"reason": "X", "involvedObject": about}),
        (f"/apis/batch/v1/namespaces/{ns}/jobs", "batch/v1/Job", {"spec": {"template": {"spec": POD}}}),
        (f"/apis/batch/v1/namespaces/{ns}/cronjobs", "batch/v1/CronJob",
         {"spec": {"schedule": "0 0 1 1 *", "jobTemplate": {"spec": {"template": {"spec": POD}}}}}),
        (f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles", "rbac.authorization.k8s.io/v1/Role", {}),
        (f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings", "rbac.authorization.k8s.io/v1/RoleBinding",
         {"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "s"}}),
        (f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases", "coordination.k8s.io/v1/Lease", {"spec": {}}),
    ]:
        api_version, _, kind = kind.rpartition("/")
        out = api.ok("POST", path, {"apiVersion": api_version, "kind": kind, "metadata": {"name": "s"}, **body})
        assert out["metadata"]["name"] == "s", path
        assert api.ok("GET", path + "/s")["metadata"]["uid"] == out["metadata"]["uid"]
    assert api.ok("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", deployment("s", CONTAINERS))


@pytest.mark.parametrize("path, kind, body, message", [
    ("/api/v1/namespaces/{ns}/pods", "v1/Pod", {"spec": {"containers": []}},
     'Pod "s" is invalid: spec.containers: Required value'),
    ("/api/v1/namespaces/{ns}/pods", "v1/Pod", {"spec": {"containers": [{"name": "c"}]}},
     'Pod "s" is invalid: spec.containers[0].image: Required value'),
    ("/apis/batch/v1/namespaces/{ns}/jobs", "batch/v1/Job", {"spec": {}},
     'Job.batch "s" is invalid: [spec.template.spec.containers: Required value, spec.template.spec.restartPolicy: '
     'Required value: valid values: "OnFailure", "Never"]'),
    ("/apis/batch/v1/namespaces/{ns}/cronjobs", "batch/v1/CronJob", {"spec": {}},
     'CronJob.batch "s" is invalid: [spec.schedule: Required value, spec.jobTemplate.spec.template.spec.containers: '
     'Required value, spec.jobTemplate.spec.template.spec.restartPolicy: Required value: valid values: '
     '"OnFailure", "Never"]'),
    ("/apis/apps/v1/namespaces/{ns}/deployments", "apps/v1/Deployment", {"spec": {}},
     'Deployment.apps "s" is invalid: [spec.selector: Required value, spec.template.metadata.labels: Invalid '
     'value: null: `selector` does not match template `labels`, spec.template.spec.containers: Required value]'),
    ("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings", "rbac.authorization.k8s.io/v1/RoleBinding",
     {}, 'RoleBinding.rbac.authorization.k8s.io "s" is invalid: [roleRef.kind: Unsupported value: "": supported '
         'values: "Role", "ClusterRole", roleRef.name: Required value]'),
    ("/api/v1/namespaces/{ns}/events", "v1/Event", {"reason": "X"},
     'Event "s" is invalid: involvedObject.namespace: Invalid value: "": does not match event.namespace'),
])
def test_builtins_are_validated(api, ns, path, kind, body, message):
    api_version, _, kind = kind.rpartition("/")
    code, err = api.call("POST", path.format(ns=ns), {"apiVersion": api_version, "kind": kind,
                                                      "metadata": {"name": "s"}, **body})
    assert code == 422 and err["reason"] == "Invalid", err
    assert err["message"] == message


def test_discovery(api):
    assert api.ok("GET", "/api")["versions"] == ["v1"]
    groups = {g["name"] for g in api.ok("GET", "/apis")["groups"]}
    assert {"apps", "batch", "example.test", "apiextensions.k8s.io", "coordination.k8s.io"} <= groups
    widgets = next(r for r in api.ok("GET", "/apis/example.test/v1")["resources"] if r["name"] == "widgets")
    assert widgets["shortNames"] == ["wd"] and "llmops" in widgets["categories"] and widgets["namespaced"]
    assert api.ok("GET", "/apis/example.test")["preferredVersion"]["version"] == "v1"
    agg = api.ok("GET", "/apis", accept="application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
    assert agg["kind"] == "APIGroupDiscoveryList"
    assert api.ok("GET", "/version")["major"] == "1"
    assert api.call("GET", "/healthz")[0] == 200 and api.call("GET", "/readyz")[0] == 200
    openapi = api.ok("GET", "/openapi/v3")  # the real server sends it as text/plain
    assert "apis/example.test/v1" in (json.loads(openapi) if isinstance(openapi, str) else openapi)["paths"]


def test_crd_registration_and_removal(api, ns):
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "things.temp.test"},
           "spec": {"group": "temp.test", "scope": "Namespaced",
                    "names": {"plural": "things", "singular": "thing", "kind": "Thing"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {"type": "object"}}}]}}
    path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    api.ok("POST", path, crd)

    def conditions():
        status = api.ok("GET", path + "/things.temp.test").get("status") or {}
        return {c["type"]: c["status"] for c in status.get("conditions") or []}

    # The real server establishes a CRD shortly after creating it.
    eventually(lambda: conditions() == {"Established": "True", "NamesAccepted": "True"}, ASYNC_DEADLINE)
    eventually(lambda: api.call("POST", f"/apis/temp.test/v1/namespaces/{ns}/things",
                                thing({"metadata": {"name": "t"}}))[0] == 201, ASYNC_DEADLINE)
    api.ok("DELETE", path + "/things.temp.test")
    assert eventually(lambda: api.call("GET", "/apis/temp.test/v1")[0] == 404, ASYNC_DEADLINE)
    # The group list is updated apart from the version's handler on the real server, a moment later under load.
    assert eventually(lambda: "temp.test" not in {g["name"] for g in api.ok("GET", "/apis")["groups"]},
                      ASYNC_DEADLINE)
