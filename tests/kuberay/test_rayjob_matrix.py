"""Every RayJob the examples render, against the RayJob CRD of each supported KubeRay version on a real
kube-apiserver: accepted as rendered, or accepted once pruned to the fields that version's schema declares; and
the operator's own pass over a TrainingJob writes a RayJob the installed version accepts, saying what it left out."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
import yaml

from llmops_operator.builders.crd_fields import prune, version_schema
from llmops_operator.cli.render import render_paths
from llmops_operator.controllers.base import Loop
from llmops_operator.controllers.engine_schema import EngineSchemas
from llmops_operator.controllers.trainingjob import TrainingJobReconciler
from llmops_operator.core.settings import Settings
from llmops_operator.k8s.client import ApiClient
from llmops_operator.k8s.kubeconfig import from_kubeconfig
from llmops_operator.k8s.resources import resource_for
from llmops_operator.status.engine_fields import FIELDS_DROPPED

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


# ---------------------------------------------------------------------------------------------------------------
# The operator writes only the RayJob fields the installed CRD declares.

RAYJOBS = resource_for("ray.io/v1", "RayJob")
TRAINING_JOBS = resource_for("llmops.dev/v1alpha1", "TrainingJob")


def _example_trainingjob(namespace: str) -> dict:
    docs = yaml.safe_load_all((ROOT / "manifests" / "examples" / "trainingjob.yaml").read_text())
    body = next(d for d in docs if d and d.get("kind") == "TrainingJob")
    body["metadata"]["namespace"] = namespace
    return body


def _one_pass(kubeconfig: Path, body: dict, read_before: bool) -> None:
    """One reconcile pass of the operator's loop; `read_before` False: the schema cache holds what a read before
    the installed KubeRay changed would hold (nothing usable), so the server's refusal must trigger the read."""
    async def run() -> None:
        async with ApiClient(from_kubeconfig(str(kubeconfig))) as api:
            schemas = EngineSchemas(api)
            if read_before:
                await schemas.load()
            else:
                schemas._trees["rayjobs.ray.io"] = (None, schemas.clock())
            await Loop(TrainingJobReconciler(), api, Settings(), schemas=schemas).reconcile(body)
    asyncio.run(run())


@pytest.mark.parametrize("read_before", [True, False], ids=["read-at-start", "read-on-refusal"])
def test_the_operator_writes_only_the_rayjob_fields_the_installed_crd_declares(kuberay, real_llmops_kube,
                                                                              real_control_plane, read_before):
    version, _ = kuberay
    kube = real_llmops_kube
    namespace = f"schema-{uuid.uuid4().hex[:6]}"
    kube.create_namespace(namespace)
    body = kube.apply(_example_trainingjob(namespace), namespace)
    _one_pass(real_control_plane.kubeconfig, body, read_before)
    (rayjob,) = kube.list(RAYJOBS, namespace)
    live = kube.get(TRAINING_JOBS, namespace, body["metadata"]["name"])
    conditions = {c["type"]: c for c in live["status"]["conditions"]}
    assert conditions["Ready"]["reason"] != "EngineMissing", conditions["Ready"]
    missing = NEWER_FIELDS.get(version, set())
    assert ("preRunningDeadlineSeconds" in rayjob["spec"]) == ("spec.preRunningDeadlineSeconds" not in missing)
    if missing:
        dropped = conditions[FIELDS_DROPPED]
        assert dropped["status"] == "True" and "rayjobs.ray.io" in dropped["message"], dropped
        assert all(field in dropped["message"] for field in missing), dropped
    else:
        assert FIELDS_DROPPED not in conditions, conditions[FIELDS_DROPPED]
    kube.delete(resource_for("v1", "Namespace"), None, namespace)
