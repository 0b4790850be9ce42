"""kubectl v1.32 against the emulator: discovery, apply (client and server side), tables, explain, wait, watch."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from .conftest import ASYNC_DEADLINE, eventually

ROOT = Path(__file__).resolve().parents[2]

WIDGET = """
apiVersion: example.test/v1
kind: Widget
metadata:
  name: {name}
  namespace: {ns}
spec:
  replicas: {replicas}
  mode: small
"""


def test_apply_get_table_and_delete(api, kubectl, ns):
    kubectl("apply", "-f", "-", input=WIDGET.format(name="w1", ns=ns, replicas=2))
    out = json.loads(kubectl("get", "widgets", "w1", "-n", ns, "-o", "json").stdout)
    assert out["spec"]["replicas"] == 2
    assert "kubectl.kubernetes.io/last-applied-configuration" in out["metadata"]["annotations"]
    # Client-side apply again with a change: GET + PATCH.
    kubectl("apply", "-f", "-", input=WIDGET.format(name="w1", ns=ns, replicas=3))
    out = json.loads(kubectl("get", "wd", "w1", "-n", ns, "-o", "json").stdout)
    assert out["spec"]["replicas"] == 3 and out["metadata"]["generation"] == 2
    table = kubectl("get", "widgets", "-n", ns).stdout
    header, row = table.splitlines()[:2]
    assert header.split() == ["NAME", "REPLICAS", "READY", "AGE"]
    assert row.split()[:2] == ["w1", "3"]
    kubectl("delete", "widget", "w1", "-n", ns)
    assert api.call("GET", f"/apis/example.test/v1/namespaces/{ns}/widgets/w1")[0] == 404


def test_events_list_with_the_columns_kubectl_users_read(api, kubectl, ns):
    event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "w1.abc"}, "type": "Warning",
             "reason": "BudgetExceeded",
             "message": "spent 2 of the 1 budget", "lastTimestamp": "2026-01-01T00:00:00Z",
             "involvedObject": {"kind": "InferenceService", "name": "assistant", "namespace": ns}}
    api.ok("POST", f"/api/v1/namespaces/{ns}/events", event)
    header, row = kubectl("get", "events", "-n", ns).stdout.splitlines()[:2]
    assert header.split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert row.split()[1:5] == ["Warning", "BudgetExceeded", "inferenceservice/assistant", "spent"]
    wide = kubectl("get", "events", "-n", ns, "-o", "wide").stdout.splitlines()[0].split()
    assert wide[-1] == "NAME" and "COUNT" in wide


def test_category_and_short_names(api, kubectl, ns):
    kubectl("apply", "-f", "-", input=WIDGET.format(name="cat", ns=ns, replicas=1))
    out = kubectl("get", "llmops", "-n", ns, "-o", "name").stdout
    assert "widget.example.test/cat" in out.split()
    assert "cat" in kubectl("get", "wd", "-n", ns, "-o", "name").stdout


def test_server_side_apply(api, kubectl, ns):
    kubectl("apply", "--server-side", "-f", "-", input=WIDGET.format(name="ssa", ns=ns, replicas=4))
    out = json.loads(kubectl("get", "widget", "ssa", "-n", ns, "-o", "json").stdout)
    assert out["spec"] == {"replicas": 4, "mode": "small"}
    kubectl("apply", "--server-side", "-f", "-", input=WIDGET.format(name="ssa", ns=ns, replicas=5))
    assert json.loads(kubectl("get", "widget", "ssa", "-n", ns, "-o", "json").stdout)["spec"]["replicas"] == 5


def test_invalid_object_is_rejected_with_the_servers_message(kubectl, ns):
    proc = kubectl("apply", "-f", "-", check=False, input=WIDGET.format(name="bad", ns=ns, replicas='"many"'))
    assert proc.returncode != 0
    assert 'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer' in proc.stderr


def explain(kubectl, field: str) -> str:
    """A real apiserver publishes a new CRD's OpenAPI schema asynchronously, a while after Established."""
    return eventually(lambda: kubectl("explain", field).stdout, ASYNC_DEADLINE)


def test_explain_uses_openapi_v3(kubectl):
    out = explain(kubectl, "widgets.spec")
    assert "WidgetSpec describes the widget." in out
    assert "replicas" in out and "<integer>" in out


def test_patch_status_and_wait(api, kubectl, ns):
    kubectl("apply", "-f", "-", input=WIDGET.format(name="waiter", ns=ns, replicas=1))
    patch = json.dumps({"status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    kubectl("patch", "widget", "waiter", "-n", ns, "--subresource=status", "--type=merge", "-p", patch)
    kubectl("wait", "--for=condition=Ready", "widget/waiter", "-n", ns, "--timeout=10s")
    row = kubectl("get", "widget", "waiter", "-n", ns, "--no-headers").stdout.split()
    assert row[:3] == ["waiter", "1", "True"]


def test_get_watch_shows_a_change(api, kubectl, ns, kubeconfig):
    kubectl("apply", "-f", "-", input=WIDGET.format(name="watched", ns=ns, replicas=1))
    proc = subprocess.Popen(["kubectl", "--kubeconfig", str(kubeconfig), "get", "widgets", "-n", ns, "-w",
                             "--request-timeout=3s", "-o", "name"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert "watched" in first
        api.ok("PATCH", f"/apis/example.test/v1/namespaces/{ns}/widgets/watched", {"spec": {"replicas": 2}},
               content_type="application/merge-patch+json")
        second = proc.stdout.readline()
        assert "watched" in second
    finally:
        proc.kill()
        proc.wait()


def test_get_watch_table(api, kubectl, ns, kubeconfig):
    kubectl("apply", "-f", "-", input=WIDGET.format(name="tw", ns=ns, replicas=1))
    proc = subprocess.Popen(["kubectl", "--kubeconfig", str(kubeconfig), "get", "widgets", "-n", ns, "-w",
                             "--request-timeout=3s"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().split()[0] == "NAME"
        assert proc.stdout.readline().split()[:2] == ["tw", "1"]
        api.ok("PATCH", f"/apis/example.test/v1/namespaces/{ns}/widgets/tw", {"spec": {"replicas": 2}},
               content_type="application/merge-patch+json")
        assert proc.stdout.readline().split()[:2] == ["tw", "2"]
    finally:
        proc.kill()
        proc.wait()


def test_real_crds_apply_and_explain(api, kubectl):
    for path in sorted((ROOT / "crds").glob("llmops.dev_*.yaml")):
        kubectl("apply", "--server-side", "-f", str(path))
    names = [yaml.safe_load(p.read_text())["metadata"]["name"] for p in (ROOT / "crds").glob("llmops.dev_*.yaml")]
    kubectl("wait", "--for=condition=Established", *[f"crd/{n}" for n in names], "--timeout=10s")
    out = explain(kubectl, "trainingjobs.spec")
    assert "FIELDS:" in out
    assert kubectl("get", "llmops", "-A").returncode == 0


def test_builtins_through_kubectl(kubectl, ns):
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": ns},
          "data": {"a": "1"}}
    kubectl("apply", "-f", "-", input=json.dumps(cm))
    cm["data"]["a"] = "2"
    kubectl("apply", "-f", "-", input=json.dumps(cm))
    out = json.loads(kubectl("get", "configmap", "cm", "-n", ns, "-o", "json").stdout)
    assert out["data"] == {"a": "2"}
    table = kubectl("get", "cm", "cm", "-n", ns).stdout.split()
    assert table[:5] == ["NAME", "DATA", "AGE", "cm", "1"]
    kubectl("delete", "configmap", "cm", "-n", ns)
