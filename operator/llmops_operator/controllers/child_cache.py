"""What the operator last wrote to each child, so that a pass which would write the same thing again writes nothing.

The child watches feed kopf indexes: for each labelled child of a watched kind, its controller's uid and its
resourceVersion. A child the index shows under this owner's controller reference needs no GET before it is
written; one whose manifest is the one last applied, and which nobody changed since (the resourceVersion the
apply returned), is not written at all: the pass reuses what that apply returned. A child the index does not
show (a new one, or a foreign object holding the name) takes the careful way: GET, check the controller, apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

ChildKey = tuple[str, str, str, str]
"""(apiVersion, kind, namespace, name) of a child."""


def child_key(child: dict[str, Any]) -> ChildKey:
    meta = child["metadata"]
    return child["apiVersion"], child["kind"], meta.get("namespace") or "", meta["name"]


@dataclass(frozen=True)
class Seen:
    """A child as its watch last saw it."""

    controller_uid: str | None
    resource_version: str | None


@dataclass(frozen=True)
class Applied:
    desired: dict[str, Any]
    live: dict[str, Any]


class ChildCache:
    def __init__(self) -> None:
        self._indexes: dict[tuple[str, str], Mapping[Any, Any]] = {}
        self._applied: dict[str, dict[ChildKey, Applied]] = {}

    def watch(self, api_version: str, kind: str, index: Mapping[Any, Any]) -> None:
        """Read children of this kind from `index`: (namespace, name) -> values of `seen_by_watch`."""
        self._indexes[(api_version, kind)] = index

    def seen(self, child: dict[str, Any]) -> Seen | None:
        """The child as its watch last saw it; None when unwatched or not seen (then nothing is known)."""
        api_version, kind, namespace, name = child_key(child)
        index = self._indexes.get((api_version, kind))
        values = list(index.get((namespace, name), ())) if index is not None else []
        return values[0] if len(values) == 1 else None

    def unchanged(self, owner_uid: str, desired: dict[str, Any], seen: Seen) -> dict[str, Any] | None:
        """The live object our last apply of this very manifest returned, if nobody changed the child since."""
        applied = self._applied.get(owner_uid, {}).get(child_key(desired))
        if applied is None or applied.desired != desired:
            return None
        live_version = (applied.live.get("metadata") or {}).get("resourceVersion")
        return applied.live if live_version and live_version == seen.resource_version else None

    def remember(self, owner_uid: str, desired: dict[str, Any], live: dict[str, Any]) -> None:
        """Keep what an apply returned, less the field-ownership records no pass reads (most of its size)."""
        meta = live.get("metadata") or {}
        if "managedFields" in meta:
            live = {**live, "metadata": {key: value for key, value in meta.items() if key != "managedFields"}}
        self._applied.setdefault(owner_uid, {})[child_key(desired)] = Applied(desired, live)

    def forget(self, owner_uid: str) -> None:
        self._applied.pop(owner_uid, None)


def seen_by_watch(body: Mapping[str, Any]) -> dict[tuple[str, str], Seen]:
    """The index entry of one watched child: (namespace, name) -> its controller's uid and resourceVersion."""
    meta = body.get("metadata") or {}
    refs = meta.get("ownerReferences") or []
    controller = next((r for r in refs if r.get("controller")), {})
    return {(meta.get("namespace") or "", meta.get("name")): Seen(controller.get("uid"), meta.get("resourceVersion"))}
