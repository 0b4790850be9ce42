"""What `llmops render` makes of the serving variants passes KServe's own CRD schemas: structural types, unknown
fields (which an API server would prune silently) and the CEL rules.

The CRDs are KServe's, read from the Go module cache at the version hack/kube/kserve-version pins (`make kube`
downloads it); nothing is fetched here. The checks are the API emulator's structural-schema validation and pruning
and its cel-python evaluation of x-kubernetes-validations."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmops_operator.cli.render import render_paths
from llmops_operator.core.contract import Context
from llmops_operator.core.settings import Settings
from llmops_sandbox.apiserver import schema
from llmops_sandbox.apiserver.cel import CelValidator
from llmops_sandbox.realkube import binaries

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = ROOT / "manifests" / "variants"
CRD_FILES = {
    ("serving.kserve.io/v1alpha1", "LLMInferenceService"): "llmisvc/serving.kserve.io_llminferenceservices.yaml",
    ("serving.kserve.io/v1alpha1", "LocalModelNamespaceCache"):
        "localmodel/serving.kserve.io_localmodelnamespacecaches.yaml",
    ("serving.kserve.io/v1beta1", "InferenceService"): "serving.kserve.io_inferenceservices.yaml",
}


@pytest.fixture(scope="module")
def schemas() -> dict[tuple[str, str], dict[str, Any]]:
    directory = binaries.kserve_crd_dir()
    if directory is None:
        pytest.skip(f"KServe {binaries.kserve_version()} is not in the Go module cache: run `make kube` "
                    f"(hack/kube/build.sh kserve)")
    found = {}
    for (api_version, kind), name in CRD_FILES.items():
        crd = yaml.safe_load((directory / name).read_text())
        version = api_version.rpartition("/")[2]
        found[(api_version, kind)] = next(v["schema"]["openAPIV3Schema"] for v in crd["spec"]["versions"]
                                          if v["name"] == version)
    return found


def problems(obj: dict[str, Any], schemas: dict) -> list[str]:
    """Every way the API server would refuse or silently change `obj`."""
    openapi = schemas[(obj["apiVersion"], obj["kind"])]
    body = copy.deepcopy(obj)
    pruned: list[str] = []
    schema.prune(body, openapi, root=True, removed=pruned)
    errors = [f"unknown field {path}" for path in pruned]
    errors += [f"{c.get('field')}: {c.get('message')}" for c in schema.validate(body, openapi, root=True)]
    errors += [f"{c.get('field')}: {c.get('message')}" for c in CelValidator().validate(body, openapi)]
    return errors


@functools.lru_cache(maxsize=2)
def _rendered(installed: frozenset[str]) -> list[dict[str, Any]]:
    settings = Settings(runtime_image="registry.example/llmops:1.0", prometheus_url="http://prometheus:9090")
    ctx = Context(settings=settings, catalog=settings.catalog, installed=installed)
    return render_paths([VARIANTS, ROOT / "manifests" / "examples"], ctx)


def rendered(installed: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    return copy.deepcopy(_rendered(installed))


def kserve_objects(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in items if (c["apiVersion"], c["kind"]) in CRD_FILES]


def test_every_rendered_kserve_object_passes_its_crd(schemas):
    items = kserve_objects(rendered()) + kserve_objects(
        rendered(frozenset({"localmodelnamespacecaches.serving.kserve.io"})))
    kinds = {c["kind"] for c in items}
    assert kinds == {"LLMInferenceService", "LocalModelNamespaceCache", "InferenceService"}
    for obj in items:
        assert problems(obj, schemas) == [], f"{obj['kind']} {obj['metadata']['name']}"


def test_the_llm_inference_service_variant_scales_and_routes(schemas):
    llm = next(c for c in rendered() if c["kind"] == "LLMInferenceService")
    assert llm["spec"]["router"]["scheduler"] == {} and llm["spec"]["scaling"]["wva"] == {"keda": {}}


@pytest.mark.parametrize("change, expected", [
    (lambda spec: spec["router"]["scheduler"].update(pool={"bogus": 1}), "unknown field spec.router.scheduler"),
    (lambda spec: spec["scaling"].pop("wva"), "wva is required when scaling is configured"),
    (lambda spec: spec.update(replicas="two"), "spec.replicas"),
])
def test_the_check_catches_what_kserve_would_refuse(schemas, change, expected):
    llm = copy.deepcopy(next(c for c in rendered() if c["kind"] == "LLMInferenceService"))
    change(llm["spec"])
    assert any(expected in problem for problem in problems(llm, schemas)), problems(llm, schemas)

