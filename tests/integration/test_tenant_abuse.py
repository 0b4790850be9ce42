"""A hostile tenant against the real operator on the emulator, next to a quiet tenant with the same object names.

The hostile namespace gets catastrophic and refused regexDeny patterns, a transformer whose /metrics streams
300 MiB, a 50 MB PromptRelease evaluation dataset, and a Guardrail edit while its InferenceService serves.
Throughout, a watchdog thread polls the operator's /healthz (kopf answers it on the operator's event loop, as
in a pod) and times a no-op coroutine on that loop, each against an idle loop of the same process, and checks
that the live KServe InferenceService and every ConfigMap it mounts never disappear. At the end the quiet namespace's objects and children are exactly what they were.
"""

from __future__ import annotations

import copy
import json
import re
import time
import uuid
from typing import Any

import pytest
import yaml

from hostile_tenant import CONFIGMAP, KSERVE, MiB, HostileEndpoint, Watchdog, mounted_config_maps
from kube_helpers import EXAMPLES, Kube, condition, eventually

from llmops_operator.api.v1alpha1 import ALL_KINDS
from llmops_operator.backends.prometheus import MAX_SCRAPE_BYTES
from llmops_operator.k8s.resources import ApiResource, resource_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

LLMOPS = {k.info.kind: ApiResource("llmops.dev/v1alpha1", k.info.kind, k.info.plural) for k in ALL_KINDS}
CHILD_KINDS = [resource_for(v, k) for v, k in [
    ("v1", "ConfigMap"), ("v1", "ServiceAccount"), ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"), ("batch/v1", "Job"), ("batch/v1", "CronJob"),
    ("networking.k8s.io/v1", "NetworkPolicy"), ("ray.io/v1", "RayJob"),
    ("serving.kserve.io/v1beta1", "InferenceService")]]
CATASTROPHIC = [r"(\w+\s?)+!!", r"(a+)+$", r"(a|aa)+b", r"^(([a-z])+.)+[A-Z]([a-z])+$", r"(x+x+)+y"]
LIVENESS_BOUND = 1.0
COUNTDOWN = re.compile(r"\b\d+s left\b")
"""A canary step's countdown in status.rollout.message: it moves on every pass by itself."""
VOLATILE = ("lastTransitionTime", "lastUpdateTime", "resourceVersion", "managedFields")


# --- objects ------------------------------------------------------------------------------------------------------

def examples() -> list[dict[str, Any]]:
    """Every example document (each llmops.dev kind and the ConfigMaps they read), serving a model URI directly
    so that the KServe InferenceService exists without a trained FineTune."""
    docs = [d for path in sorted(EXAMPLES.glob("*.yaml")) for d in yaml.safe_load_all(path.read_text()) if d]
    for doc in docs:
        if doc["kind"] == "InferenceService":
            doc["spec"]["model"] = {"uri": "pvc://llmops-models/assistant", "format": "huggingface"}
    return docs


def named(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and d["apiVersion"].startswith("llmops.dev/"))


def stripped(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: stripped(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [stripped(v) for v in value]
    if isinstance(value, str):
        return COUNTDOWN.sub("(time left)", value)
    return value


def snapshot(kube: Kube, namespace: str) -> dict[str, Any]:
    """Every llmops.dev object's spec and status and every object the operator may create, by kind and name."""
    found: dict[str, Any] = {}
    for kind, where in LLMOPS.items():
        for obj in kube.list(where, namespace):
            found[f"{kind}/{obj['metadata']['name']}"] = stripped(
                {"uid": obj["metadata"]["uid"], "generation": obj["metadata"].get("generation"),
                 "spec": obj.get("spec"), "status": obj.get("status")})
    for where in CHILD_KINDS:
        for obj in kube.list(where, namespace):
            body = {k: v for k, v in obj.items() if k not in ("metadata", "apiVersion", "kind")}
            found[f"{where.kind}/{obj['metadata']['name']}"] = stripped(
                {"uid": obj["metadata"]["uid"], "labels": obj["metadata"].get("labels"),
                 "owners": obj["metadata"].get("ownerReferences"), "body": body})
    return found


def uids(kube: Kube, namespace: str) -> dict[str, str]:
    return {f"{where.kind}/{obj['metadata']['name']}": obj["metadata"]["uid"]
            for where in CHILD_KINDS for obj in kube.list(where, namespace)}


def settled(kube: Kube, namespace: str, docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        if not doc["apiVersion"].startswith("llmops.dev/"):
            continue
        def check(doc: dict[str, Any] = doc) -> dict[str, Any]:
            obj = kube.get(LLMOPS[doc["kind"]], namespace, doc["metadata"]["name"])
            assert obj and (obj.get("status") or {}).get("observedGeneration") == obj["metadata"]["generation"]
            assert condition(obj, "Ready"), obj.get("status")
            return obj
        eventually(check, timeout=60, what=f"{doc['kind']} reconciled in {namespace}")


def steady(kube: Kube, namespace: str, quiet_for: float = 6.0, timeout: float = 60) -> dict[str, Any]:
    """The namespace's snapshot once it has not changed for longer than a resync period (5 s here): every
    object has reached the state it keeps until something acts on it."""
    deadline, last, since = time.monotonic() + timeout, snapshot(kube, namespace), time.monotonic()
    changing: dict[str, Any] = {}
    while time.monotonic() - since < quiet_for:
        assert time.monotonic() < deadline, f"{namespace} never settled: {json.dumps(changing, indent=1)}"
        time.sleep(0.5)
        now = snapshot(kube, namespace)
        if now != last:
            changing = differences(last, now)
            last, since = now, time.monotonic()
    return last


def differences(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {k: (before.get(k), after.get(k)) for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


def ready(kube: Kube, namespace: str, kind: str, name: str, status: str, reason: str | None = None,
          timeout: float = 60) -> dict[str, Any]:
    def check() -> dict[str, Any]:
        obj = kube.get(LLMOPS[kind], namespace, name)
        found = condition(obj, "Ready")
        assert found and found["status"] == status and reason in (None, found["reason"]), obj.get("status")
        assert obj["status"].get("observedGeneration") == obj["metadata"]["generation"]
        return obj
    return eventually(check, timeout=timeout, what=f"{kind}/{name} Ready={status}")


def kserve_serving(url: str) -> dict[str, Any]:
    """The status KServe writes for a served InferenceService with a transformer."""
    now = "2026-01-01T00:00:00Z"
    conditions = [{"type": t, "status": "True", "lastTransitionTime": now}
                  for t in ("PredictorReady", "TransformerReady", "IngressReady", "Ready")]
    return {"url": url, "address": {"url": url}, "conditions": conditions,
            "components": {"predictor": {"latestReadyRevision": "assistant-predictor-00001",
                                         "traffic": [{"revisionName": "assistant-predictor-00001", "percent": 100,
                                                      "latestRevision": True}]}}}


def big_dataset(megabytes: int) -> str:
    line = json.dumps({"variables": {"product": "llmops", "question": "q" * 400}, "expected": "ok"})
    return "\n".join([line] * (megabytes * 1_000_000 // (len(line) + 1)))


# --- the test -----------------------------------------------------------------------------------------------------

def hostile_guardrails(kube: Kube, hostile: str, guardrail: dict[str, Any]) -> None:
    """Catastrophic for a backtracking engine, linear on RE2: the self-test and the red-team set pass. A
    backreference or a lookaround is refused, naming the pattern."""
    refused = copy.deepcopy(guardrail)
    refused["metadata"]["name"] = "refused-policy"
    refused["spec"]["checks"] = [{"name": "backref", "type": "regexDeny", "action": "block", "scope": "both",
                                  "patterns": [r"(\w+)\s\1", r"(?=password)\w+"]}]
    kube.apply(refused, hostile)
    ready(kube, hostile, "Guardrail", guardrail["metadata"]["name"], "True")
    invalid = condition(ready(kube, hostile, "Guardrail", "refused-policy", "False", "InvalidSpec"), "Ready")
    assert "spec.checks.0.patterns.0" in invalid["message"] and "RE2" in invalid["message"], invalid


def oversized_metrics(kube: Kube, hostile: str, endpoint: HostileEndpoint) -> None:
    """The tenant's transformer streams 300 MiB of metrics: the operator reads at most its cap, and says so."""
    kube.patch(KSERVE, hostile, "assistant", {"status": kserve_serving(endpoint.url)}, subresource="status")

    def metrics_refused() -> dict[str, Any]:
        obj = kube.get(LLMOPS["InferenceService"], hostile, "assistant")
        found = condition(obj, "MetricsAvailable")
        assert found and found["reason"] == "MetricsUnavailable", obj.get("status")
        assert f"{MAX_SCRAPE_BYTES} bytes" in found["message"], found
        return obj
    eventually(metrics_refused, timeout=60, what="the oversized scrape reported")
    assert endpoint.sent_per_scrape and max(endpoint.sent_per_scrape) < 64 * MiB, endpoint.sent_per_scrape


def edit_while_serving(kube: Kube, hostile: str, guardrail: dict[str, Any]) -> None:
    """A Guardrail edit: the policy is re-tested and the live service moves to it; no child is deleted but the
    previous policy's ConfigMap, and that only once the live service no longer mounts it."""
    name = guardrail["metadata"]["name"]
    assert mounted_config_maps(kube.get(KSERVE, hostile, "assistant")), "nothing mounted: the check is empty"
    children_before = uids(kube, hostile)
    before = kube.get(LLMOPS["Guardrail"], hostile, name)["status"]
    next(c for c in guardrail["spec"]["checks"] if c["type"] == "regexDeny")["patterns"].append(r"sk-[A-Za-z0-9]{32}")
    kube.apply(guardrail, hostile)

    def new_policy_served() -> bool:
        obj = ready(kube, hostile, "Guardrail", name, "True", timeout=1)
        assert obj["status"]["policyHash"] != before["policyHash"]
        child = kube.get(KSERVE, hostile, "assistant")
        assert obj["status"]["policyHash"] in json.dumps(child["spec"]), "the service still mounts the old policy"
        return True
    eventually(new_policy_served, timeout=60, what="the edited policy served")
    gone = children_before.keys() - uids(kube, hostile).keys()
    mounted = mounted_config_maps(kube.get(KSERVE, hostile, "assistant"))
    assert all(k.startswith("ConfigMap/") and k.split("/", 1)[1] not in mounted for k in gone), gone
    eventually(lambda: kube.get(CONFIGMAP, hostile, before["policyConfigMap"]) is None, timeout=30,
               what="the released policy pruned at a resync")


def oversized_dataset(kube: Kube, hostile: str, release: dict[str, Any], watchdog: Watchdog) -> None:
    """A 50 MB evaluation dataset: a condition naming it, nothing parsed (the watchdog times the loop)."""
    watchdog.phase = "dataset upload"
    kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "evaluation-set"},
                "data": {"examples.jsonl": big_dataset(50)}}, hostile)
    watchdog.phase = "dataset"
    release["spec"]["evaluation"] = {"dataset": {"name": "evaluation-set", "key": "examples.jsonl"}}
    kube.apply(release, hostile)

    def dataset_refused() -> dict[str, Any]:
        obj = kube.get(LLMOPS["PromptRelease"], hostile, release["metadata"]["name"])
        evaluated = condition(obj, "Evaluated")
        assert evaluated and evaluated["status"] == "False", obj.get("status")
        assert evaluated["reason"] == "DatasetTooLarge" and "evaluation-set" in evaluated["message"], evaluated
        return obj
    eventually(dataset_refused, timeout=60, what="the oversized dataset reported")


def test_a_hostile_tenant_cannot_stall_the_operator_or_touch_another_tenant(kube, operator, namespace):
    hostile, quiet = namespace, f"t-{uuid.uuid4().hex[:8]}"
    kube.create_namespace(quiet)
    docs = examples()
    for doc in docs:
        kube.apply(copy.deepcopy(doc), quiet)
    settled(kube, quiet, docs)
    before = steady(kube, quiet)

    with HostileEndpoint() as endpoint, Watchdog(operator, kube) as watchdog:
        evil = copy.deepcopy(docs)  # the same names, with the hostile parts added
        guardrail = named(evil, "Guardrail")
        next(c for c in guardrail["spec"]["checks"] if c["type"] == "regexDeny")["patterns"] += CATASTROPHIC
        for doc in evil:
            kube.apply(copy.deepcopy(doc), hostile)
        watchdog.phase = "regex"
        hostile_guardrails(kube, hostile, guardrail)
        watchdog.phase = "metrics"
        uid = eventually(lambda: kube.get(KSERVE, hostile, "assistant"), what="KServe service")["metadata"]["uid"]
        watchdog.watched = (hostile, "assistant")
        oversized_metrics(kube, hostile, endpoint)
        watchdog.phase = "edit"
        edit_while_serving(kube, hostile, guardrail)
        oversized_dataset(kube, hostile, named(evil, "PromptRelease"), watchdog)

    print(watchdog.report(), f"; bytes sent per scrape of the 300 MiB body: {endpoint.sent_per_scrape}")
    assert not watchdog.failures, watchdog.report()
    assert watchdog.own_blocking() < LIVENESS_BOUND, watchdog.report()
    assert not watchdog.missing and watchdog.uids_seen == {uid}, (watchdog.missing, watchdog.uids_seen)
    changed = differences(before, snapshot(kube, quiet))
    assert not changed, json.dumps(changed, indent=1)
