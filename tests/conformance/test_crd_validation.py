"""openAPIV3Schema validation, pruning, and CEL (x-kubernetes-validations) with the real server's wording."""

from __future__ import annotations

import pytest

from .conftest import widget

W = "/apis/example.test/v1/namespaces/{ns}/widgets"
MERGE = "application/merge-patch+json"


def _create(api, ns, name, spec):
    return api.call("POST", W.format(ns=ns), {"apiVersion": "example.test/v1", "kind": "Widget",
                                              "metadata": {"name": name}, "spec": spec})


def test_type_error_message_matches_the_real_server(api, ns):
    code, err = _create(api, ns, "x", {"replicas": "string"})
    assert code == 422 and err["reason"] == "Invalid" and err["kind"] == "Status"
    not_checked = ("Invalid value: null: some validation rules were not checked because the object was invalid; "
                   "correct the existing errors to complete validation")
    assert err["message"] == ('Widget.example.test "x" is invalid: [spec.replicas: Invalid value: "string": '
                              f'spec.replicas in body must be of type integer: "string", <nil>: {not_checked}]')
    assert err["details"]["causes"] == [{"reason": "FieldValueTypeInvalid", "field": "spec.replicas",
                                         "message": 'Invalid value: "string": spec.replicas in body must be of '
                                                    'type integer: "string"'},
                                        {"reason": "FieldValueInvalid", "field": "<nil>", "message": not_checked}]
    assert err["details"]["kind"] == "Widget" and err["details"]["group"] == "example.test"


@pytest.mark.parametrize("spec, field, text", [
    ({}, "spec.replicas", "Required value"),
    ({"replicas": 0}, "spec.replicas", "should be greater than or equal to 1"),
    ({"replicas": 11}, "spec.replicas", "should be less than or equal to 10"),
    ({"replicas": 1, "ratio": 0}, "spec.ratio", "should be greater than 0"),
    ({"replicas": 1, "ratio": 1}, "spec.ratio", "should be less than 1"),
    ({"replicas": 1, "mode": "huge"}, "spec.mode", 'Unsupported value: "huge": supported values: "small", "big"'),
    ({"replicas": 1, "label": "ABC"}, "spec.label", "should match '^[a-z]+$'"),
    ({"replicas": 1, "label": "a"}, "spec.label", "should be at least 2 chars long"),
    ({"replicas": 1, "label": "abcdefghij"}, "spec.label", "Too long: may not be more than 8"),
    ({"replicas": 1, "tags": []}, "spec.tags", "should have at least 1 items"),
    ({"replicas": 1, "tags": ["a", "b", "c"]}, "spec.tags", "must have at most 2 items"),
    ({"replicas": 1, "tags": [1]}, "spec.tags[0]", "must be of type string"),
    ({"replicas": 1, "port": 1.5}, "spec.port", "must be of type integer,string"),
    ({"replicas": 6, "mode": "small"}, "spec", "more than 5 replicas needs mode big"),
])
def test_schema_and_cel_violations(api, ns, spec, field, text):
    code, err = _create(api, ns, "bad", spec)
    assert code == 422, err
    causes = err["details"]["causes"]
    assert any(c["field"] == field and text in c["message"] for c in causes), causes
    assert text in err["message"]


def test_valid_objects_and_int_or_string(api, ns):
    for i, port in enumerate([80, "http"]):
        code, out = _create(api, ns, f"ok{i}", {"replicas": 6, "mode": "big", "port": port, "ratio": 0.5})
        assert code == 201, out


def test_unknown_fields_are_pruned_but_metadata_and_preserved_fields_stay(api, ns):
    code, out = _create(api, ns, "pruned", {"replicas": 1, "bogus": True, "extra": {"any": {"thing": 1}},
                                            "containers": [{"name": "a", "junk": 1}]})
    assert code == 201
    assert out["spec"] == {"replicas": 1, "extra": {"any": {"thing": 1}}, "containers": [{"name": "a"}]}
    code, out = api.call("POST", W.format(ns=ns), widget({"metadata": {"name": "top", "labels": {"a": "b"}},
                                                   "spec": {"replicas": 1}, "surprise": 1}))
    assert code == 201 and "surprise" not in out and out["metadata"]["labels"] == {"a": "b"}


def test_strict_field_validation_rejects_unknown_fields(api, ns):
    code, err = api.call("POST", W.format(ns=ns) + "?fieldValidation=Strict",
                         widget({"metadata": {"name": "strict"}, "spec": {"replicas": 1, "bogus": 1}}))
    assert code == 400 and 'unknown field "spec.bogus"' in err["message"]


def test_validation_applies_to_update_patch_and_apply(api, ns):
    path = W.format(ns=ns) + "/upd"
    _create(api, ns, "upd", {"replicas": 1})
    code, _ = api.call("PATCH", path, {"spec": {"replicas": 50}}, content_type=MERGE)
    assert code == 422
    obj = api.ok("GET", path)
    code, _ = api.call("PUT", path, dict(obj, spec={"replicas": "x"}))
    assert code == 422
    # force: the creator owns spec.replicas, and this checks validation, not field-manager conflicts.
    code, _ = api.call("PATCH", path + "?fieldManager=m&force=true", {"apiVersion": "example.test/v1", "kind": "Widget",
                                                           "metadata": {"name": "upd"}, "spec": {"replicas": 0}},
                       content_type="application/apply-patch+yaml")
    assert code == 422
    code, _ = api.call("PATCH", path, [{"op": "replace", "path": "/spec/mode", "value": "nope"}],
                       content_type="application/json-patch+json")
    assert code == 422


def test_transition_rules_run_only_on_update(api, ns):
    path = W.format(ns=ns) + "/imm"
    code, _ = _create(api, ns, "imm", {"replicas": 1, "immutable": "a"})
    assert code == 201
    assert api.call("PATCH", path, {"spec": {"replicas": 2}}, content_type=MERGE)[0] == 200
    code, err = api.call("PATCH", path, {"spec": {"immutable": "b"}}, content_type=MERGE)
    assert code == 422
    assert err["details"]["causes"][0]["field"] == "spec.immutable"
    assert "immutable is immutable" in err["message"]


def test_emulator_skips_uncompilable_rules_with_a_warning(caplog):
    from llmops_sandbox.apiserver.cel import CelValidator

    with caplog.at_level("WARNING"):
        errors = CelValidator().validate({"a": 1}, {"type": "object", "x-kubernetes-validations": [
            {"rule": "this is not CEL ((("}, {"rule": "self.a == 1"}]})
    assert errors == []
    assert "cannot compile" in caplog.text


def test_emulator_cel_implementation_is_cel_python():
    from llmops_sandbox.apiserver import cel_implementation

    assert cel_implementation().startswith("cel-python 0.5")


def test_real_crd_rules(api, ns):
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[2]
    for path in sorted((root / "crds").glob("llmops.dev_*.yaml")):
        crd = yaml.safe_load(path.read_text())
        api.ok("PATCH", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}"
                        "?fieldManager=test", crd, content_type="application/apply-patch+yaml")
    version = next(v["name"] for v in yaml.safe_load((root / "crds" / "llmops.dev_trainingjobs.yaml").read_text())
                   ["spec"]["versions"] if v.get("storage"))
    code, err = api.call("POST", f"/apis/llmops.dev/{version}/namespaces/{ns}/trainingjobs",
                         {"apiVersion": f"llmops.dev/{version}", "kind": "TrainingJob", "metadata": {"name": "x"},
                          "spec": {"epochs": "string"}})
    assert code == 422
    assert err["message"].startswith('TrainingJob.llmops.dev "x" is invalid: ')
