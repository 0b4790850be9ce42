"""PromptRelease: version and rollout validation, the version and routing ConfigMaps, status, CRD rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from llmops_operator.api.v1alpha1 import PromptRelease
from llmops_operator.core.contract import Context, InvalidSpec, parse
from llmops_operator.controllers.promptrelease import PromptReleaseReconciler

ROOT = Path(__file__).resolve().parents[2]


def version(name: str, template: str = "Answer: {{ question }}", **fields) -> dict:
    return {"name": name, "template": template, **fields}


def release(*versions: dict, stable="v1", canary=None, spec_fields=None, **rollout) -> PromptRelease:
    spec = {"versions": list(versions) or [version("v1"), version("v2", "Briefly: {{ question }}")],
            "rollout": {"stable": stable, **({"canary": canary} if canary else {}), **rollout}, **(spec_fields or {})}
    return parse(PromptRelease, {"apiVersion": "llmops.dev/v1alpha1", "kind": "PromptRelease",
                                 "metadata": {"name": "chat", "namespace": "ml"}, "spec": spec})


def children(obj: PromptRelease) -> list[dict]:
    return PromptReleaseReconciler().children(obj, Context.default(), {})


def observe(obj: PromptRelease, live: list[dict]):
    return PromptReleaseReconciler().status(obj, live, None, Context.default(), {})


# ----- validation ----------------------------------------------------------------------------------

def test_the_example_parses():
    body = yaml.safe_load((ROOT / "manifests/examples/promptrelease.yaml").read_text())
    obj = parse(PromptRelease, body)
    canary = obj.spec.rollout.canary
    assert canary.version == "v2" and [s.weight for s in canary.steps] == [10, 50, 100]
    assert obj.spec.target.name == "assistant" and obj.spec.analysis.min_safety == 0.9


@pytest.mark.parametrize("make, message", [
    (lambda: release(stable="v9"), "spec: rollout.stable must name one of versions"),
    (lambda: release(canary={"version": "v9"}), "spec: rollout.canary.version must name one of versions"),
    (lambda: release(canary={"version": "v1"}), "spec.rollout: rollout.canary.version must differ from rollout.stable"),
    (lambda: release(canary={"version": "v2", "weight": 101}),
     "spec.rollout.canary.weight: Input should be less than or equal to 100"),
    (lambda: release(version("v1"), version("v1")), "spec.versions: version names must be unique: 'v1' appears"),
    (lambda: release(version("v1", variables=["question", "product"])),
     "spec.versions.0: variables ['product'] do not appear in the template as {{ name }}"),
    (lambda: release(version("v1", "{{ a }} {{ b }}", variables=["a"])),
     "spec.versions.0: the template uses ['b'], which are not in variables"),
    (lambda: release(version("v1", parameters={"temperature": 3})),
     "spec.versions.0.parameters.temperature: Input should be less than or equal to 2"),
    (lambda: release(canary={"version": "v2", "steps": [{"weight": 50}, {"weight": 20}]}),
     "spec.rollout.canary.steps: weights must increase: steps[1].weight 20 is not above steps[0].weight 50"),
    (lambda: release(canary={"version": "v2", "steps": [{"weight": 50}, {"weight": 120}]}),
     "spec.rollout.canary.steps.1.weight: Input should be less than or equal to 100"),
    (lambda: release(canary={"version": "v2", "weight": 10, "steps": [{"weight": 50}]}),
     "spec.rollout.canary: rollout.canary: set weight or steps, not both"),
    (lambda: release(canary={"version": "v2", "steps": [{"weight": 50, "minDuration": "ten minutes"}]}),
     "spec.rollout.canary.steps.0.minDuration: String should match pattern"),
    (lambda: release(spec_fields={"rollbackTo": "v7"}), "spec: rollbackTo: 'v7' is not one of versions (v1, v2)"),
    (lambda: release(spec_fields={"analysis": {"minSafety": 0.9}}),
     "spec: target is required when evaluation or analysis is set"),
    (lambda: release(spec_fields={"target": {"name": "svc"}, "analysis": {"minSafety": 1.5}}),
     "spec.analysis.minSafety: Input should be less than or equal to 1"),
    (lambda: release(spec_fields={"target": {"name": "svc"}, "evaluation": {"metric": "rougeL"}}),
     "spec.evaluation: evaluation: set examples or dataset"),
    (lambda: release(spec_fields={"target": {"name": "svc"}, "evaluation": {"examples": [{"regex": "(unclosed"}]}}),
     "spec.evaluation.examples.0.regex: not a regular expression: missing ), unterminated subpattern"),
])
def test_bad_releases_name_the_field(make, message):
    with pytest.raises(InvalidSpec) as err:
        make()
    assert str(err.value).startswith(message)


# ----- children -------------------------------------------------------------------------------------

def test_stable_only_builds_one_version_and_the_routing():
    built = children(release())
    assert [c["metadata"]["name"] for c in built][1] == "chat-prel-routing"
    assert len(built) == 2
    routing = json.loads(built[1]["data"]["routing.json"])
    assert routing == {"strategy": "random",
                       "routes": [{"version": "v1", "configMap": built[0]["metadata"]["name"], "weight": 100}]}


def test_canary_builds_both_versions_with_the_split():
    built = children(release(canary={"version": "v2", "weight": 25}, strategy="sticky", stickyKey="x-session"))
    stable, canary, routing = built
    assert stable["metadata"]["name"].startswith("chat-prel-v1-")
    assert canary["metadata"]["name"].startswith("chat-prel-v2-")
    assert json.loads(routing["data"]["routing.json"]) == {"strategy": "sticky", "stickyKey": "x-session", "routes": [
        {"version": "v1", "configMap": stable["metadata"]["name"], "weight": 75},
        {"version": "v2", "configMap": canary["metadata"]["name"], "weight": 25}]}
    assert canary["data"]["template.txt"] == "Briefly: {{ question }}"
    assert json.loads(canary["data"]["prompt.json"]) == {
        "version": "v2", "template": "Briefly: {{ question }}", "parameters": {"temperature": 0.7, "maxTokens": 256}}
    assert canary["immutable"] is True and canary["metadata"]["labels"]["llmops.dev/promptrelease"] == "chat"
    assert "immutable" not in routing


def test_version_configmap_name_follows_its_content_only():
    one = children(release(version("v1"), version("v2", "x"), canary={"version": "v2", "weight": 10}))[0]
    weight = children(release(version("v1"), version("v2", "x"), canary={"version": "v2", "weight": 50}))[0]
    edited = children(release(version("v1", "Q: {{ question }}")))[0]
    assert one["metadata"]["name"] == weight["metadata"]["name"]
    assert edited["metadata"]["name"] != one["metadata"]["name"]


# ----- status ---------------------------------------------------------------------------------------

def test_status_of_a_canary_release():
    obj = release(canary={"version": "v2", "weight": 10})
    live = children(obj)
    seen = observe(obj, live)
    assert seen.phase == "Canary"
    assert [(c.type, c.status) for c in seen.conditions] == [("Released", "True"), ("Ready", "True")]
    assert seen.conditions[0].message == "version 'v1' serves 90%, canary 'v2' 10%"
    assert {k: seen.fields[k] for k in ("stable", "canary", "routingConfigMap")} == {
        "stable": {"version": "v1", "configMap": live[0]["metadata"]["name"], "weight": 90},
        "canary": {"version": "v2", "configMap": live[1]["metadata"]["name"], "weight": 10},
        "routingConfigMap": "chat-prel-routing"}
    assert seen.fields["rollout"]["state"] == "Canary"
    assert seen.fields["rollout"]["message"] == "holding at the fixed weight 10%"
    assert [(h["version"], h["event"]) for h in seen.fields["history"]] == [("v2", "Released")]


def test_status_of_a_stable_release_has_no_canary():
    obj = release()
    seen = observe(obj, children(obj))
    assert seen.phase == "Stable" and "canary" not in seen.fields


def test_a_zero_weight_canary_is_stable():
    obj = release(canary={"version": "v2", "weight": 0})
    assert observe(obj, children(obj)).phase == "Stable"


def test_status_waits_for_missing_configmaps():
    obj = release(canary={"version": "v2", "weight": 10})
    live = children(obj)
    seen = observe(obj, [live[0], live[2]])
    assert seen.phase == "Pending" and seen.fields == {}
    assert (seen.conditions[1].status, seen.conditions[1].reason) == ("False", "ConfigMapMissing")
    assert live[1]["metadata"]["name"] in seen.conditions[1].message


# ----- CRD ------------------------------------------------------------------------------------------

def test_crd_carries_the_rollout_rules():
    crd = yaml.safe_load((ROOT / "crds/llmops.dev_promptreleases.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    rules = {r["message"]: r for r in spec["x-kubernetes-validations"]}
    assert rules["rollout.stable must name one of versions"]["rule"] == \
        "self.versions.exists(v, v.name == self.rollout.stable)"
    assert rules["rollout.canary.version must name one of versions"]["fieldPath"] == ".rollout.canary.version"
    rollout_rules = [r["message"] for r in spec["properties"]["rollout"]["x-kubernetes-validations"]]
    assert rollout_rules == ["rollout.canary.version must differ from rollout.stable"]
    assert rules["rollbackTo must name one of versions"]["fieldPath"] == ".rollbackTo"
    assert rules["target is required when evaluation or analysis is set"]["rule"] == \
        "has(self.target) || (!has(self.evaluation) && !has(self.analysis))"
    canary = spec["properties"]["rollout"]["properties"]["canary"]
    assert [r["message"] for r in canary["x-kubernetes-validations"]] == [
        "rollout.canary: set weight or steps, not both"]
    assert [r["message"] for r in canary["properties"]["steps"]["x-kubernetes-validations"]] == [
        "rollout.canary.steps: weights must increase"]
    assert spec["properties"]["versions"]["maxItems"] == 32
    assert spec["properties"]["versions"]["x-kubernetes-list-map-keys"] == ["name"]
