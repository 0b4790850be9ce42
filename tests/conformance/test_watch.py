"""WATCH: event stream, resourceVersion semantics, 410 Expired, timeoutSeconds, selectors."""

from __future__ import annotations

import json
import threading

from .conftest import configmap, widget

W = "/apis/example.test/v1/namespaces/{ns}/widgets"
MERGE = "application/merge-patch+json"


def _w(name, **labels):
    return widget({"metadata": {"name": name, "labels": labels}, "spec": {"replicas": 1}})


def test_watch_from_resource_version_sends_only_later_events(api, ns):
    path = W.format(ns=ns)
    api.ok("POST", path, _w("before"))
    rv = api.ok("GET", path)["metadata"]["resourceVersion"]
    api.ok("POST", path, _w("after"))
    api.ok("PATCH", path + "/after", {"spec": {"replicas": 2}}, content_type=MERGE)
    api.ok("DELETE", path + "/after")
    events = api.watch(f"{path}?watch=true&resourceVersion={rv}&timeoutSeconds=1&allowWatchBookmarks=true")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "after"), ("MODIFIED", "after"), ("DELETED", "after")]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)
    assert events[1]["object"]["spec"]["replicas"] == 2


def test_watch_without_resource_version_replays_current_objects(api, ns):
    path = W.format(ns=ns)
    api.ok("POST", path, _w("one"))
    api.ok("POST", path, _w("two"))
    for query in ("watch=1&timeoutSeconds=1", "watch=true&resourceVersion=0&timeoutSeconds=1"):
        events = api.watch(f"{path}?{query}")
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "one"), ("ADDED", "two")]


def test_live_events_reach_an_open_watch(api, ns):
    path = W.format(ns=ns)
    rv = api.ok("GET", path)["metadata"]["resourceVersion"]
    got: list[dict] = []
    ready = threading.Event()

    def watch():
        with api.open(f"{path}?watch=true&resourceVersion={rv}&timeoutSeconds=5", timeout=10) as resp:
            ready.set()
            for line in resp:
                got.append(json.loads(line))
                if len(got) == 2:
                    return

    thread = threading.Thread(target=watch)
    thread.start()
    ready.wait(5)
    api.ok("POST", path, _w("live"))
    api.ok("PATCH", path + "/live", widget({"metadata": {"labels": {"a": "b"}}}), content_type=MERGE)
    thread.join(10)
    assert [e["type"] for e in got] == ["ADDED", "MODIFIED"]


def test_emulator_too_old_resource_version_is_410_expired():
    from llmops_sandbox.apiserver import ApiServerThread

    with ApiServerThread(history=5) as small:
        from .conftest import Api

        tiny = Api(small.url, small.token, small.ssl_context())
        path = "/api/v1/namespaces/default/configmaps"
        first = tiny.ok("POST", path, configmap({"metadata": {"name": "c0"}}))["metadata"]["resourceVersion"]
        for i in range(1, 8):
            tiny.ok("POST", path, configmap({"metadata": {"name": f"c{i}"}}))
        events = tiny.watch(f"{path}?watch=1&resourceVersion={first}&timeoutSeconds=1")
        assert len(events) == 1 and events[0]["type"] == "ERROR"
        status = events[0]["object"]
        assert status["kind"] == "Status" and status["code"] == 410 and status["reason"] == "Expired"
        current = tiny.ok("GET", path)["metadata"]["resourceVersion"]
        assert tiny.watch(f"{path}?watch=1&resourceVersion={current}&timeoutSeconds=1") == []


def test_watch_selectors_and_cluster_wide(api, ns):
    path = W.format(ns=ns)
    rv = api.ok("GET", path)["metadata"]["resourceVersion"]
    api.ok("POST", path, _w("x", app="x"))
    api.ok("POST", path, _w("y", app="y"))
    events = api.watch(f"{path}?watch=1&resourceVersion={rv}&timeoutSeconds=1&labelSelector=app%3Dx")
    assert [e["object"]["metadata"]["name"] for e in events] == ["x"]
    events = api.watch(f"{path}?watch=1&resourceVersion={rv}&timeoutSeconds=1&fieldSelector=metadata.name%3Dy")
    assert [e["object"]["metadata"]["name"] for e in events] == ["y"]
    events = api.watch(f"/apis/example.test/v1/widgets?watch=1&resourceVersion={rv}&timeoutSeconds=1")
    assert {e["object"]["metadata"]["name"] for e in events} >= {"x", "y"}
