"""Child names carry the owner's kind, so objects of different kinds with one name never share a child."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from llmops_operator.api.v1alpha1 import API_VERSION
from llmops_operator.cli.render import render_paths

EXAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "examples"


def _renamed(value: Any, names: set[str], to: str) -> Any:
    """`value` with every `name: <one of names>` (the objects and the references to them) set to `to`."""
    if isinstance(value, dict):
        return {k: (to if k == "name" and v in names else _renamed(v, names, to)) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v, names, to) for v in value]
    return value


def examples_all_named(tmp_path: Path, name: str) -> Path:
    """One example object of each kind (two of one kind with one name would be one object), all named `name`."""
    docs, kinds = [], set()
    for doc in (d for p in sorted(EXAMPLES.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d):
        if doc.get("apiVersion") == API_VERSION and doc["kind"] in kinds:
            continue
        kinds.add(doc["kind"])
        docs.append(doc)
    names = {d["metadata"]["name"] for d in docs if d.get("apiVersion") == API_VERSION}
    target = tmp_path / "same-name.yaml"
    target.write_text(yaml.safe_dump_all([_renamed(d, names, name) for d in docs]))
    return target


def test_objects_of_every_kind_with_one_name_have_disjoint_children(tmp_path):
    children = render_paths([examples_all_named(tmp_path, "shared")])
    owners = {c["metadata"]["labels"]["app.kubernetes.io/name"] for c in children}
    assert {"trainingjob", "finetune", "vectorindex", "featureview", "guardrail", "promptrelease"} <= owners
    keys = Counter((c["kind"], c["metadata"]["name"]) for c in children)
    assert [key for key, count in keys.items() if count > 1] == []
    progress = sorted(c["metadata"]["name"] for c in children if c["metadata"]["name"].endswith("-progress"))
    assert progress == ["shared-ft-progress", "shared-fv-progress", "shared-tj-progress", "shared-vidx-progress"]
    accounts = sorted(c["metadata"]["name"] for c in children if c["kind"] == "ServiceAccount")
    assert accounts == ["shared-ft-reporter", "shared-fv-reporter", "shared-tj-reporter", "shared-vidx-reporter"]
