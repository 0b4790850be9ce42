"""/status isolation for CRDs with the subresource and for built-ins."""

from __future__ import annotations

from .conftest import gadget, job, widget

W = "/apis/example.test/v1/namespaces/{ns}/widgets"
MERGE = "application/merge-patch+json"


def test_main_resource_ignores_status(api, ns):
    path = W.format(ns=ns)
    created = api.ok("POST", path, widget({"metadata": {"name": "s"}, "spec": {"replicas": 1},
                                           "status": {"phase": "Done"}}))
    assert "status" not in created
    out = api.ok("PATCH", path + "/s", {"status": {"phase": "Done"}, "spec": {"replicas": 2}}, content_type=MERGE)
    assert "status" not in out and out["spec"]["replicas"] == 2
    put = dict(out, status={"phase": "Running"})
    assert "status" not in api.ok("PUT", path + "/s", put)


def test_status_writes_change_only_status(api, ns):
    path = W.format(ns=ns)
    api.ok("POST", path, widget({"metadata": {"name": "t"}, "spec": {"replicas": 1}}))
    before = api.ok("GET", path + "/t")
    out = api.ok("PATCH", path + "/t/status", {"status": {"phase": "Running"}, "spec": {"replicas": 5}},
                 content_type=MERGE)
    assert out["status"] == {"phase": "Running"} and out["spec"]["replicas"] == 1
    assert out["metadata"]["generation"] == 1
    assert int(out["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])
    put = dict(out, status={"phase": "Done", "observedGeneration": 1}, spec={"replicas": 3})
    out = api.ok("PUT", path + "/t/status", put)
    assert out["status"]["phase"] == "Done" and out["spec"]["replicas"] == 1
    assert api.ok("GET", path + "/t/status")["status"]["phase"] == "Done"
    # The status part of the schema applies to /status writes.
    code, err = api.call("PATCH", path + "/t/status", {"status": {"phase": "Sideways"}}, content_type=MERGE)
    assert code == 422 and err["details"]["causes"][0]["field"] == "status.phase"


def test_no_status_subresource_means_404_and_status_in_main(api):
    out = api.ok("POST", "/apis/example.test/v1/gadgets", gadget({"metadata": {"name": "st"}, "status": {"a": 1}}))
    assert out["status"] == {"a": 1}
    assert api.call("GET", "/apis/example.test/v1/gadgets/st/status")[0] == 404
    api.ok("DELETE", "/apis/example.test/v1/gadgets/st")


def test_builtin_status_subresources(api, ns):
    pod = {"containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "Never"}
    # A suspended CronJob and a Job without the Job controller: nothing else writes their status here.
    for path, body, field, value, other in [
        (f"/apis/batch/v1/namespaces/{ns}/jobs", job({"spec": {"template": {"spec": pod}}}), "succeeded", 1, 2),
        (f"/api/v1/namespaces/{ns}/pods", {"apiVersion": "v1", "kind": "Pod", "spec": pod}, "phase", "Running",
         "Failed"),
        (f"/apis/batch/v1/namespaces/{ns}/cronjobs", {"apiVersion": "batch/v1", "kind": "CronJob", "spec": {
            "schedule": "0 0 1 1 *", "suspend": True, "jobTemplate": {"spec": {"template": {"spec": pod}}}}},
         "lastScheduleTime", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"),
    ]:
        api.ok("POST", path, dict(body, metadata={"name": "b"}))
        out = api.ok("PATCH", path + "/b/status", {"status": {field: value}}, content_type=MERGE)
        assert out["status"][field] == value
        out = api.ok("PATCH", path + "/b", {"status": {field: other}}, content_type=MERGE)
        assert out["status"][field] == value
    out = api.ok("PATCH", f"/api/v1/namespaces/{ns}/status", {"status": {"phase": "Active"}}, content_type=MERGE)
    assert out["status"]["phase"] == "Active"
