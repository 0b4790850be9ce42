"""No function or module of the operator or the sandbox grows too long to read at once.

Read from the source with the AST: a function counts from its `def` line to its last line (nested functions
and methods each count on their own, and also inside the function that holds them), a module counts every line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "llmops_operator"
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400


def modules(root: Path = PACKAGE) -> list[Path]:
    return sorted(path for path in root.rglob("*.py") if "__pycache__" not in path.parts)


def long_functions(source: str, limit: int = MAX_FUNCTION_LINES) -> list[tuple[str, int, int]]:
    """(name, first line, length) of every function or method longer than `limit` lines."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            if length > limit:
                found.append((node.name, node.lineno, length))
    return sorted(found, key=lambda item: item[1])


def test_the_package_is_where_the_test_looks():
    assert (PACKAGE / "__init__.py").is_file() and len(modules()) > 50


def test_no_function_is_longer_than_the_limit():
    offenders = [f"{path.relative_to(PACKAGE)}:{line} {name} ({length} lines)"
                 for path in modules() for name, line, length in long_functions(path.read_text())]
    assert not offenders, f"functions over {MAX_FUNCTION_LINES} lines: split them\n" + "\n".join(offenders)


def test_no_module_is_longer_than_the_limit():
    offenders = [f"{path.relative_to(PACKAGE)} ({count} lines)" for path in modules()
                 if (count := len(path.read_text().splitlines())) > MAX_MODULE_LINES]
    assert not offenders, f"modules over {MAX_MODULE_LINES} lines: split them by concern\n" + "\n".join(offenders)


SANDBOX = PACKAGE.parent / "llmops_sandbox"


def test_the_sandbox_keeps_the_same_limits():
    checked = list(modules(SANDBOX))
    assert len(checked) > 20
    offenders = [f"{path.relative_to(SANDBOX)}:{line} {name} ({length} lines)"
                 for path in checked for name, line, length in long_functions(path.read_text())]
    offenders += [f"{path.relative_to(SANDBOX)} ({count} lines)" for path in checked
                  if (count := len(path.read_text().splitlines())) > MAX_MODULE_LINES]
    assert not offenders, "split these by concern:\n" + "\n".join(offenders)


@pytest.mark.parametrize("body_lines,flagged", [(59, False), (60, True)])
def test_the_function_count_includes_the_def_line(body_lines, flagged):
    source = "def f():\n" + "    x = 1\n" * body_lines + "\n\nclass C:\n    async def g(self):\n        pass\n"
    assert bool(long_functions(source)) is flagged
