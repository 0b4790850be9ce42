"""The training run drift creates: a FineTune or TrainingJob manifest from the template ConfigMap (pure)."""

from __future__ import annotations

from typing import Any

import yaml

from llmops_operator.api.v1alpha1.common import API_VERSION, Resource
from llmops_operator.api.v1alpha1.finetune import FineTune
from llmops_operator.api.v1alpha1.retrain import TEMPLATE_KEY
from llmops_operator.api.v1alpha1.trainingjob import TrainingJob
from llmops_operator.builders.labels import RETRAINED_FROM
from llmops_operator.core.contract import InvalidSpec, parse

RUN_KINDS: dict[str, type[Resource]] = {"FineTune": FineTune, "TrainingJob": TrainingJob}

TEMPLATE_MISSING = "TemplateMissing"
TEMPLATE_INVALID = "TemplateInvalid"


class TemplateProblem(ValueError):
    """The template cannot be used; reason is TemplateMissing or TemplateInvalid, the message says what to fix."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def parse_template(config_map: dict[str, Any] | None, name: str) -> dict[str, Any]:
    """The run manifest the template ConfigMap `name` holds, checked against the run kind's schema."""
    where = f"spec.retrain.template: ConfigMap {name!r}"
    if config_map is None:
        raise TemplateProblem(TEMPLATE_MISSING, f"{where} does not exist in this namespace")
    raw = (config_map.get("data") or {}).get(TEMPLATE_KEY)
    if not raw:
        raise TemplateProblem(TEMPLATE_MISSING, f"{where} has no key {TEMPLATE_KEY}")
    try:
        manifest = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise TemplateProblem(TEMPLATE_INVALID, f"{where} key {TEMPLATE_KEY} is not YAML: {err}") from None
    if not isinstance(manifest, dict):
        raise TemplateProblem(TEMPLATE_INVALID, f"{where} key {TEMPLATE_KEY} must hold one object")
    kind = manifest.get("kind")
    if kind not in RUN_KINDS or manifest.get("apiVersion", API_VERSION) != API_VERSION:
        raise TemplateProblem(TEMPLATE_INVALID, f"{where}: kind must be FineTune or TrainingJob of {API_VERSION}, "
                                                f"not {manifest.get('apiVersion')} {kind}")
    if (manifest.get("metadata") or {}).get("name"):
        raise TemplateProblem(TEMPLATE_INVALID, f"{where}: leave metadata.name out, each run gets a generated name")
    _check_spec(manifest, kind, where)
    return manifest


def _check_spec(manifest: dict[str, Any], kind: str, where: str) -> None:
    probe = {**manifest, "apiVersion": API_VERSION, "metadata": {"name": "template"}}
    try:
        parse(RUN_KINDS[kind], probe)
    except InvalidSpec as err:
        raise TemplateProblem(TEMPLATE_INVALID, f"{where}: {err}") from None


def build_run(template: dict[str, Any], owner: Resource) -> dict[str, Any]:
    """The run to create: the template with generateName <owner>-retrain-, the retrained-from label and an
    owner reference (not a controller one: the run outlives nothing, but is not the owner's child)."""
    meta = dict(template.get("metadata") or {})
    meta.pop("namespace", None)
    meta["generateName"] = f"{owner.name}-retrain-"
    meta["labels"] = {**(meta.get("labels") or {}), RETRAINED_FROM: owner.name}
    meta["ownerReferences"] = [{"apiVersion": owner.api_version, "kind": owner.kind, "name": owner.name,
                                "uid": owner.metadata.uid, "controller": False, "blockOwnerDeletion": False}]
    return {**template, "apiVersion": API_VERSION, "metadata": meta}


def runs_of(owner: Resource, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs among `found` (labelled retrained-from the owner's name) that this very object owns."""
    uid = owner.metadata.uid
    return [r for r in found if any(ref.get("uid") == uid for ref in r["metadata"].get("ownerReferences") or [])]
