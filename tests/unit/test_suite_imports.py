"""The suites run in one pytest process, where every folder's conftest is a module named `conftest`: a test that
imports one by its bare name gets whichever was imported first, and fails only when the suites run together. (A
package's own `from .conftest import ...` names it fully and is safe.)"""

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
