"""GET, LIST (selectors), POST, PUT (optimistic concurrency), PATCH flavours, DELETE."""

from __future__ import annotations

W = "/apis/example.test/v1/namespaces/{ns}/widgets"
MERGE = "application/merge-patch+json"


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
    assert api.ok("PUT", W.format(ns=ns) + "/p", unconditional)["spec"]["replicas"] == 4


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
    out = api.ok("PATCH", path, {"spec": {"containers": [{"name": "b", "image": "2"}]}},
                 content_type="application/strategic-merge-patch+json")
    assert out["spec"]["containers"] == [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]
    code, _ = api.call("PATCH", path, {"spec": {}}, content_type="text/plain")
    assert code == 415


def test_server_side_apply(api, ns):
    path = W.format(ns=ns) + "/s"
    code, err = api.call("PATCH", path, _widget("s"), content_type="application/apply-patch+yaml")
    assert code == 400 and err["reason"] == "BadRequest"
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
    api.ok("POST", W.format(ns=ns), _widget("d"))
    gone = api.ok("DELETE", W.format(ns=ns) + "/d", {"propagationPolicy": "Background"})
    assert gone["metadata"]["name"] == "d"
    assert api.call("GET", W.format(ns=ns) + "/d")[0] == 404
    assert api.call("DELETE", W.format(ns=ns) + "/d?propagationPolicy=Foreground")[0] == 404


def test_builtins_accept_anything(api, ns):
    for path, body in [
        (f"/api/v1/namespaces/{ns}/secrets", {"metadata": {"name": "s"}, "data": {"k": "dg=="}, "whatever": 1}),
        (f"/api/v1/namespaces/{ns}/services", {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}),
        (f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": "s"}}),
        (f"/api/v1/namespaces/{ns}/pods", {"metadata": {"name": "s"}, "spec": {"containers": []}}),
        (f"/api/v1/namespaces/{ns}/events", {"metadata": {"name": "s"}, "reason": "X"}),
        (f"/apis/events.k8s.io/v1/namespaces/{ns}/events", {"metadata": {"name": "s"}, "reason": "X"}),
        (f"/apis/batch/v1/namespaces/{ns}/jobs", {"metadata": {"name": "s"}, "spec": {}}),
        (f"/apis/batch/v1/namespaces/{ns}/cronjobs", {"metadata": {"name": "s"}, "spec": {}}),
        (f"/apis/apps/v1/namespaces/{ns}/deployments", {"metadata": {"name": "s"}, "spec": {}}),
        (f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles", {"metadata": {"name": "s"}}),
        (f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings", {"metadata": {"name": "s"}}),
        (f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases", {"metadata": {"name": "s"}, "spec": {}}),
    ]:
        out = api.ok("POST", path, body)
        assert out["metadata"]["name"] == "s", path
        assert api.ok("GET", path)["items"][0]["metadata"]["name"] == "s"


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
    assert "apis/example.test/v1" in api.ok("GET", "/openapi/v3")["paths"]


def test_crd_registration_and_removal(api, ns):
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "things.temp.test"},
           "spec": {"group": "temp.test", "scope": "Namespaced",
                    "names": {"plural": "things", "singular": "thing", "kind": "Thing"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {"type": "object"}}}]}}
    out = api.ok("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    conditions = {c["type"]: c["status"] for c in out["status"]["conditions"]}
    assert conditions == {"Established": "True", "NamesAccepted": "True"}
    api.ok("POST", f"/apis/temp.test/v1/namespaces/{ns}/things", {"metadata": {"name": "t"}})
    api.ok("DELETE", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/things.temp.test")
    assert api.call("GET", "/apis/temp.test/v1")[0] == 404
    assert "temp.test" not in {g["name"] for g in api.ok("GET", "/apis")["groups"]}
