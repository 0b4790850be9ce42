"""`eventually` and friends for tests that drive an API server from the outside."""

from __future__ import annotations

import time
from typing import Any, Callable, TypeVar

from llmops_operator.k8s.blocking import BlockingClient as Kube  # noqa: F401  (re-exported for the tests)

T = TypeVar("T")


def eventually(check: Callable[[], T], timeout: float = 20.0, interval: float = 0.05, what: str = "") -> T:
    """Poll `check` until it returns a truthy value or stops raising AssertionError; fail with the last reason."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            result = check()
            if result:
                return result
            last = f"returned {result!r}"
        except AssertionError as err:
            last = err
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {what or check.__name__}: {last}")
        time.sleep(interval)


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    if not obj:
        return None
    return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == type_), None)
