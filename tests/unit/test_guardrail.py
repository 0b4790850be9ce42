"""Guardrail: policy validation, the compiled policy ConfigMap, its status and its CRD rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from llmops_operator.api.v1alpha1 import Guardrail
from llmops_operator.core.contract import Context, InvalidSpec, parse
from llmops_operator.controllers.guardrail import GuardrailReconciler

ROOT = Path(__file__).resolve().parents[2]


def guardrail(*checks: dict, name="policy", **spec) -> Guardrail:
    body = {"checks": list(checks) or [check("pii", "piiRedaction")], **spec}
    return parse(Guardrail, {"apiVersion": "llmops.dev/v1alpha1", "kind": "Guardrail",
                             "metadata": {"name": name, "namespace": "ml"}, "spec": body})


def check(name: str, type_: str, **fields) -> dict:
    return {"name": name, "type": type_, **fields}


def children(obj: Guardrail) -> list[dict]:
    return GuardrailReconciler().children(obj, Context.default(), {})


def policy(obj: Guardrail) -> dict:
    [config_map] = children(obj)
    return json.loads(config_map["data"]["policy.json"])


# ----- validation ----------------------------------------------------------------------------------

def test_the_example_parses():
    body = yaml.safe_load((ROOT / "manifests/examples/guardrail.yaml").read_text())
    assert len(parse(Guardrail, body).spec.checks) == 7


@pytest.mark.parametrize("bad, message", [
    (check("tox", "toxicity", threshold=1.5), "spec.checks.0.threshold: Input should be less than or equal to 1"),
    (check("tox", "toxicity", threshold=-0.1), "spec.checks.0.threshold: Input should be greater than or equal to 0"),
    (check("re", "regexDeny", patterns=["ok", "(["]), "spec.checks.0.patterns: pattern 1 ('([') does not compile"),
    (check("topics", "topicDenylist"), "spec.checks.0: a topicDenylist check needs topics"),
    (check("size", "maxTokens"), "spec.checks.0: a maxTokens check needs maxTokens"),
    (check("re", "regexDeny"), "spec.checks.0: a regexDeny check needs patterns"),
    (check("tox", "toxicity", topics=["x"]), "spec.checks.0: topics applies to topicDenylist checks only"),
    (check("pii", "piiRedaction", threshold=0.5),
     "spec.checks.0: threshold applies to promptInjection, jailbreak and toxicity checks only"),
    (check("tox", "toxicity", action="redact"),
     "spec.checks.0: action redact applies to piiRedaction and regexDeny checks only; use block or flag"),
    (check("Bad_Name", "toxicity"), "spec.checks.0.name: String should match pattern"),
])
def test_bad_checks_name_the_field(bad, message):
    with pytest.raises(InvalidSpec) as err:
        guardrail(bad)
    assert str(err.value).startswith(message)


def test_check_names_are_unique():
    with pytest.raises(InvalidSpec, match=r"^spec.checks: check names must be unique: 'a' appears more than once$"):
        guardrail(check("a", "toxicity"), check("a", "jailbreak"))


def test_a_policy_needs_a_check():
    with pytest.raises(InvalidSpec, match="spec.checks: List should have at least 1 item"):
        parse(Guardrail, {"kind": "Guardrail", "metadata": {"name": "p"}, "spec": {"checks": []}})


# ----- the compiled policy --------------------------------------------------------------------------

def test_policy_makes_every_default_explicit():
    compiled = policy(guardrail(check("pii", "piiRedaction", action="redact", entities=["email"]),
                                check("tox", "toxicity", scope="output"),
                                check("re", "regexDeny", patterns=["AKIA[0-9A-Z]{16}"]),
                                check("size", "maxTokens", maxTokens=100),
                                mode="monitor"))
    monitor = {"mode": "monitor", "onError": "failClosed"}
    assert compiled == {"format": "llmops.dev/guardrail-policy/v1", "mode": "monitor", "checks": [
        {"name": "pii", "type": "piiRedaction", "action": "redact", "scope": "both", "entities": ["email"], **monitor},
        {"name": "tox", "type": "toxicity", "action": "block", "scope": "output", "threshold": 0.5, **monitor},
        {"name": "re", "type": "regexDeny", "action": "block", "scope": "both", "patterns": ["AKIA[0-9A-Z]{16}"],
         **monitor},
        {"name": "size", "type": "maxTokens", "action": "block", "scope": "both", "maxTokens": 100, **monitor},
    ]}


def test_a_check_overrides_the_policy_mode_and_on_error():
    compiled = policy(guardrail(check("tox", "toxicity", mode="enforce", onError="failOpen"), mode="monitor"))
    assert compiled["checks"][0] == {"name": "tox", "type": "toxicity", "action": "block", "scope": "both",
                                          "threshold": 0.5, "mode": "enforce", "onError": "failOpen"}


def test_pii_entities_default_to_every_kind_and_evaluation_is_carried():
    compiled = policy(guardrail(check("pii", "piiRedaction"),
                                evaluation={"dataset": {"name": "redteam"}, "minPassRate": 0.8}))
    assert compiled["checks"][0]["entities"] == ["email", "phone", "creditCard", "ssn", "ipAddress", "iban",
                                                 "person", "address", "apiKey", "nationalId"]
    assert compiled["evaluation"] == {"configMap": "redteam", "key": "dataset.jsonl", "minPassRate": 0.8}


def test_configmap_is_named_after_its_content():
    [first] = children(guardrail(check("tox", "toxicity", threshold=0.7)))
    [same] = children(guardrail(check("tox", "toxicity", threshold=0.7)))
    [changed] = children(guardrail(check("tox", "toxicity", threshold=0.8)))
    digest = first["metadata"]["labels"]["llmops.dev/content-hash"]
    assert first["metadata"]["name"] == f"policy-grail-policy-{digest}" == same["metadata"]["name"]
    assert changed["metadata"]["name"] != first["metadata"]["name"]
    assert first["metadata"]["namespace"] == "ml" and first["immutable"] is True
    assert first["metadata"]["labels"]["llmops.dev/guardrail"] == "policy"
    assert "ownerReferences" not in first["metadata"]


# ----- status ---------------------------------------------------------------------------------------

def test_status_names_the_policy_once_the_configmap_exists():
    obj = guardrail(check("tox", "toxicity"), check("jb", "jailbreak"))
    live = children(obj)
    seen = GuardrailReconciler().status(obj, live, None, Context.default(), {})
    assert [(c.type, c.status, c.reason) for c in seen.conditions] == [
        ("PolicyCompiled", "True", "Compiled"), ("SelfTested", "True", "Passed"), ("Ready", "True", "PolicyCompiled")]
    assert seen.phase == "Ready"
    assert seen.fields == {"checks": 2, "policyConfigMap": live[0]["metadata"]["name"],
                           "policyHash": live[0]["metadata"]["labels"]["llmops.dev/content-hash"],
                           "safety": {"evaluated": 0, "byRule": {}, "detectionRate": 1.0, "falsePositiveRate": 0.0}}
    assert seen.conditions[1].message.startswith("16/16 covered attacks caught, 0/30 benign texts hit; no check covers")


def test_a_weak_policy_says_so_without_blocking_ready():
    obj = guardrail(check("tox", "toxicity", threshold=0.99))
    seen = GuardrailReconciler().status(obj, children(obj), None, Context.default(), {})
    self_test = seen.conditions[1]
    assert (self_test.type, self_test.status, self_test.reason) == ("SelfTested", "False", "LowDetectionRate")
    assert self_test.message.startswith("detection rate ") and seen.phase == "Ready"
    assert seen.fields["safety"]["detectionRate"] < 0.9


def test_status_without_the_configmap_is_not_ready():
    obj = guardrail()
    seen = GuardrailReconciler().status(obj, [], None, Context.default(), {})
    assert [(c.type, c.status, c.reason) for c in seen.conditions] == [
        ("PolicyCompiled", "False", "PolicyConfigMapMissing"), ("SelfTested", "True", "Passed"),
        ("Ready", "False", "PolicyConfigMapMissing")]
    assert seen.phase == "Pending" and "policyConfigMap" not in seen.fields


# ----- CRD ------------------------------------------------------------------------------------------

def test_crd_carries_the_check_rules_and_list_map():
    crd = yaml.safe_load((ROOT / "crds/llmops.dev_guardrails.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    checks = spec["properties"]["checks"]
    assert checks["x-kubernetes-list-type"] == "map" and checks["x-kubernetes-list-map-keys"] == ["name"]
    rules = {r["message"]: r["rule"] for r in checks["items"]["x-kubernetes-validations"]}
    assert rules["a topicDenylist check needs topics"] == "self.type != 'topicDenylist' || has(self.topics)"
    assert "action redact applies to piiRedaction and regexDeny checks only; use block or flag" in rules
    assert checks["items"]["properties"]["threshold"]["maximum"] == 1
    assert crd["spec"]["names"]["shortNames"] == ["grail"]
