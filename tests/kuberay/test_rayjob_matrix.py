"""Every RayJob the examples render, against the RayJob CRD of each supported KubeRay version on a real
kube-apiserver: accepted as rendered, or accepted once pruned to the fields that version's schema declares."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmops_operator.builders.crd_fields import prune, version_schema
from llmops_operator.cli.render import render_paths

ROOT = Path(__file__).resolve().parents[2]
# Fields our RayJobs set that a supported KubeRay release does not declare yet.
NEWER_FIELDS = {"v1.5.0": {"spec.preRunningDeadlineSeconds", "spec.rayClusterSpec.authOptions"}}


def rendered_rayjobs() -> list[dict]:
    return [obj for obj in render_paths([ROOT / "manifests" / "examples"]) if obj.get("kind") == "RayJob"]


def _path(rayjob: dict) -> str:
    meta = rayjob["metadata"]
    return f"/apis/ray.io/v1/namespaces/{meta['namespace']}/rayjobs/{meta['name']}"


def test_the_examples_render_rayjobs():
    assert len(rendered_rayjobs()) >= 2


def test_rendered_rayjobs_against_the_installed_rayjob_crd(kuberay, client):
    version, crds = kuberay
    schema = version_schema(crds["RayJob"], "v1")
    assert schema is not None
    for rayjob in rendered_rayjobs():
        pruned, removed = prune(rayjob, schema)
        assert set(removed) == NEWER_FIELDS.get(version, set()), (version, removed)
        code, out = client.apply(rayjob, _path(rayjob), dry_run=True)
        if removed:
            # Server-side apply refuses undeclared fields outright (as a 500: "failed to create typed patch
            # object", naming the first), where a create or update would silently drop them.
            assert code == 500 and any(f".{field}: field not declared in schema" in out["message"]
                                       for field in removed), (version, code, out)
        else:
            assert code in (200, 201), (version, out)
        code, out = client.apply(pruned, _path(pruned), dry_run=True)
        assert code in (200, 201), (version, rayjob["metadata"]["name"], out)


@pytest.mark.parametrize("field", ["spec.entrypoint", "spec.rayClusterSpec.headGroupSpec",
                                   "spec.rayClusterSpec.workerGroupSpecs"])
def test_fields_every_supported_version_declares_are_never_pruned(kuberay, field):
    _, crds = kuberay
    for rayjob in rendered_rayjobs():
        _, removed = prune(rayjob, version_schema(crds["RayJob"], "v1"))
        assert not any(r == field or r.startswith(field + ".") for r in removed)
