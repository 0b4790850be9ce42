"""The CRDs are generated from the models, stay structural, fresh, small, and carry the CEL rules."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, Field, ValidationError

from llmops_operator.api.crdgen import SchemaError, crd, generated_crds, structural
from llmops_operator.api.v1alpha1 import ALL_KINDS
from llmops_operator.api.v1alpha1.common import KubeModel, exactly_one_of
from llmops_operator.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {"anyOf", "oneOf", "allOf", "$ref", "$defs", "default", "title", "const"}


def walk(node, path="$"):
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, f"{path}[{i}]")


@pytest.mark.parametrize("name,text", sorted(generated_crds().items()))
def test_checked_in_crds_match_the_models(name, text):
    for target in (ROOT / "crds", ROOT / "charts" / "llmops-operator" / "crds"):
        assert (target / name).read_text() == text, f"{target / name} is stale: run `llmops crds`"


def test_crds_check_command_passes_on_a_fresh_tree():
    assert main(["crds", "--check"]) == 0


def test_crds_check_command_fails_on_a_stale_tree(tmp_path, capsys):
    main(["crds", "--root", str(tmp_path)])
    stale = tmp_path / "crds" / "llmops.dev_trainingjobs.yaml"
    stale.write_text(stale.read_text().replace("Number of Ray Train workers", "Workers"))
    assert main(["crds", "--root", str(tmp_path), "--check"]) == 1
    assert "llmops.dev_trainingjobs.yaml" in capsys.readouterr().err


def test_crds_command_is_idempotent_and_removes_stale_files(tmp_path):
    main(["crds", "--root", str(tmp_path)])
    (tmp_path / "crds" / "llmops.dev_oldkinds.yaml").write_text("stale")
    first = {p.name: p.read_text() for p in (tmp_path / "crds").iterdir()}
    main(["crds", "--root", str(tmp_path)])
    second = {p.name: p.read_text() for p in (tmp_path / "crds").iterdir()}
    assert "llmops.dev_oldkinds.yaml" not in second
    assert {k: v for k, v in first.items() if k != "llmops.dev_oldkinds.yaml"} == second


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.info.kind)
def test_each_crd_is_far_below_the_client_side_apply_annotation_limit(kind):
    # kubectl apply stores the whole object in an annotation capped at 256 KiB; KubeRay's and
    # Feast's CRDs exceed it and need server-side apply. Ours must stay far below.
    size = len(yaml.safe_dump(crd(kind)).encode())
    assert size < 64 * 1024, f"{kind.info.kind} CRD is {size} bytes"


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.info.kind)
def test_schemas_are_structural(kind):
    schema = crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in walk(schema):
        if path.endswith(".properties") or path.endswith("x-kubernetes-validations"):
            continue
        assert not FORBIDDEN & set(node), f"{path} has {FORBIDDEN & set(node)}"
        if any(k in node for k in ("properties", "items", "additionalProperties")):
            assert node.get("type") in ("object", "array"), f"{path} lacks a type"


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.info.kind)
def test_names_printer_columns_and_status_subresource(kind):
    spec = crd(kind)["spec"]
    assert spec["names"]["shortNames"] == kind.info.short_names
    assert spec["names"]["categories"] == ["llmops"]
    version = spec["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns[:2] == ["Ready", "Phase"] and columns[-1] == "Age"


def test_short_names_are_the_documented_ones():
    assert {k.info.kind: k.info.short_names[0] for k in ALL_KINDS} == {
        "TrainingJob": "tj", "FineTune": "ft", "PromptRelease": "prel", "VectorIndex": "vidx",
        "Guardrail": "grail", "InferenceService": "lsvc", "FeatureView": "fv",
    }


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.info.kind)
def test_every_spec_field_has_a_description(kind):
    spec = crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    fields = [(path, node) for path, node in walk(spec) if re.search(r"\.properties\.[^.\[]+$", path)]
    missing = [path for path, node in fields if "description" not in node]
    assert not missing, f"fields without a description (kubectl explain shows nothing): {missing}"


def test_conditions_are_a_list_map_keyed_by_type():
    schema = crd(ALL_KINDS[0])["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    conditions = schema["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]


# ----- the translation itself ---------------------------------------------------------------------


def _schema(model: type[BaseModel]) -> dict:
    js = model.model_json_schema(by_alias=True)
    return structural(js, js.get("$defs", {}))


def test_optional_fields_lose_the_null_branch_and_keep_constraints():
    class M(BaseModel):
        x: int | None = Field(default=None, ge=1, le=5)

    assert _schema(M)["properties"]["x"] == {"type": "integer", "minimum": 1, "maximum": 5}


def test_exclusive_bounds_become_openapi_v3_booleans():
    class M(BaseModel):
        x: float = Field(gt=0, lt=1)

    assert _schema(M)["properties"]["x"] == {
        "type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 1, "exclusiveMaximum": True,
    }


def test_free_form_dicts_preserve_unknown_fields_and_typed_maps_do_not():
    class M(BaseModel):
        free: dict[str, object]
        typed: dict[str, str]

    props = _schema(M)["properties"]
    assert props["free"]["x-kubernetes-preserve-unknown-fields"] is True
    assert props["typed"] == {"type": "object", "additionalProperties": {"type": "string"}}


def test_a_union_without_structural_form_is_refused():
    class M(BaseModel):
        x: int | list[int]

    with pytest.raises(SchemaError, match="x"):
        _schema(M)


class _Source(KubeModel):
    exactly_one = (exactly_one_of("config_map", "object_uri", "claim", where="source"),)

    config_map: str | None = None
    object_uri: str | None = None
    claim: str | None = None


def test_an_exactly_one_of_rule_is_declared_once_and_enforced_by_the_model_and_the_crd():
    message = "set exactly one of source.configMap, source.objectUri and source.claim"
    schema = structural(_Source.model_json_schema(by_alias=True), {}, "$")
    assert schema["x-kubernetes-validations"] == [{
        "rule": "[has(self.configMap), has(self.objectUri), has(self.claim)].filter(x, x).size() == 1",
        "message": message}]
    for wrong in ({}, {"configMap": "a", "claim": "b"}):
        with pytest.raises(ValidationError, match=re.escape(message)):
            _Source.model_validate(wrong)
    assert _Source.model_validate({"objectUri": "s3://b/k"}).object_uri == "s3://b/k"


def _models(base=KubeModel):
    for model in base.__subclasses__():
        yield model
        yield from _models(model)


def test_every_exactly_one_of_rule_in_the_crds_comes_from_a_declaration():
    """A hand-written exactly-one-of CEL rule would drift from its validator: every one is declared instead."""
    declared = {rule.message(model) for model in _models() if model.__module__.startswith("llmops_operator.")
                for rule in model.__dict__.get("exactly_one", ())}
    in_crds = {node["message"] for kind in ALL_KINDS for _, node in walk(crd(kind))
               if isinstance(node.get("message"), str) and node["message"].startswith("set exactly one of")}
    assert declared == in_crds and len(declared) == 6
