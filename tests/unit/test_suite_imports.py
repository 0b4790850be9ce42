"""The suites run in one pytest process, where every folder's conftest is a module named `conftest`: a test that
imports one by its bare name gets whichever was imported first, and fails only when the suites run together. (A
package's own `from .conftest import ...` names it fully and is safe.) Likewise two test modules with one basename in
folders that are not packages: the second fails to collect, again only when the suites run together."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_no_test_module_imports_a_conftest_by_name():
    offenders = []
    for path in [*ROOT.joinpath("tests").rglob("*.py"), *ROOT.joinpath("e2e").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 else
                     [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
            if "conftest" in names:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, "share fixtures or a helper module instead: " + ", ".join(offenders)


def test_test_module_basenames_are_unique_across_suites():
    seen: dict[str, Path] = {}
    clashes = []
    for path in sorted([*ROOT.joinpath("tests").rglob("test_*.py"), *ROOT.joinpath("e2e").rglob("test_*.py")]):
        if path.parent.joinpath("__init__.py").exists():
            continue  # a package's module has a dotted name of its own
        if path.name in seen:
            clashes.append(f"{seen[path.name].relative_to(ROOT)} and {path.relative_to(ROOT)}")
        seen.setdefault(path.name, path)
    assert not clashes, "rename one of each: " + ", ".join(clashes)
