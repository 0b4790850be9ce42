"""The package's layers point one way, and the pure layers load no I/O library.

The import graph is read from the source (every import statement, lazy ones included), so a new module
that imports upwards, or a cycle between modules, fails here before it reaches a review.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

OPERATOR = Path(__file__).resolve().parents[2] / "operator"
PACKAGE = "llmops_operator"

LAYERS: dict[str, int] = {
    "api": 0,
    "core": 1,            # parse, Context, Observation, InvalidSpec, conditions, settings, prices, URIs
    "scoring": 2,         # pure maths: cost, drift, evaluation metrics, budgets
    "guardrails": 3,      # the guardrail engine (pure text processing)
    "builders": 4,        # pure child manifests
    "status": 5,          # pure reducers
    "observability": 6,   # tracing and the operator's Prometheus metrics
    "k8s": 7,             # the API client
    "backends": 8,        # clients of engines: Milvus, Prometheus, embedding and model loading
    "controllers": 9,     # kopf glue
    "entrypoints": 9,     # what runs inside Jobs and RayJobs
    "servers": 9,         # the guardrail transformer and the sandbox predictor
    "cli": 10,
}
"""Rank of each subpackage: a module may import only from a lower rank or its own subpackage."""

PURE = ("api", "core", "scoring", "guardrails", "builders", "status")
IO_LIBRARIES = ("aiohttp", "kopf", "opentelemetry", "prometheus_client", "kubernetes", "httpx")


def module_name(path: Path) -> str:
    parts = path.relative_to(OPERATOR).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """Modules of the project that `path` imports, at any depth of the file (lazy imports count)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in OPERATOR.rglob("*.py")}
    known = set(files)
    graph = {name: imported_modules(path, known) - {name} for name, path in files.items()}
    # `from package import module` also names the package itself: keep the module only.
    return {name: {t for t in targets if not any(o.startswith(t + ".") for o in targets)}
            for name, targets in graph.items()}


def subpackage(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != PACKAGE or len(parts) < 2:
        return None
    return parts[1]


def test_every_subpackage_has_a_layer():
    present = {p.name for p in (OPERATOR / PACKAGE).iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert present == set(LAYERS), "give a new subpackage a rank in LAYERS (and a line in README's layout)"


def test_no_import_points_up_or_sideways():
    wrong = []
    for source, targets in import_graph().items():
        here = subpackage(source)
        for target in targets:
            there = subpackage(target)
            if here in LAYERS and there in LAYERS and here != there and LAYERS[there] >= LAYERS[here]:
                wrong.append(f"{source} -> {target}")
    assert wrong == []


def test_the_operator_never_imports_the_sandbox():
    into_sandbox = [f"{s} -> {t}" for s, targets in import_graph().items() if s.startswith(PACKAGE)
                    for t in targets if t.startswith("llmops_sandbox")]
    assert into_sandbox == []


def test_no_import_cycle_between_modules():
    graph = import_graph()
    cycles = [component for component in strongly_connected(graph) if len(component) > 1]
    assert cycles == []


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components, iteratively (the graph is a few hundred modules)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(component)
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return components


def test_cycle_detection_sees_a_cycle():
    assert sorted(map(sorted, strongly_connected({"a": {"b"}, "b": {"a"}, "c": {"a"}}))) == [["a", "b"], ["c"]]


@pytest.mark.parametrize("layer", PURE)
def test_pure_layers_load_no_io_library(layer):
    modules = sorted(m for m in import_graph() if subpackage(m) == layer)
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({IO_LIBRARIES!r}))))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            env={"PYTHONPATH": str(OPERATOR), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_purity_check_sees_an_io_import(tmp_path):
    (tmp_path / "impure.py").write_text("import aiohttp\n")
    script = "import impure, sys; print('aiohttp' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                            env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert result.stdout.strip() == "True"
