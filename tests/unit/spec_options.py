"""Building specs in tests: `kind_builder(with_("a.b", 1), with_("c", None))` sets a.b and removes c."""

from __future__ import annotations

from typing import Any, Callable


def with_(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """An option that sets the dotted `path` of a spec to `value`, creating parents; None removes the key."""
    def option(spec: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node = spec
        for key in parents:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return option
