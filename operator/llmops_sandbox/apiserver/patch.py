"""PATCH flavours: JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic merge, server-side apply."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import jsonpointer

from .errors import ApiError

MERGE = "application/merge-patch+json"
JSON = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
APPLY_CBOR = "application/apply-patch+cbor"
KINDS = (MERGE, JSON, STRATEGIC, APPLY)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise ApiError(400, "json patch must be a list of operations")
    try:
        return jsonpatch.JsonPatch(operations).apply(copy.deepcopy(target))
    except jsonpatch.JsonPatchTestFailed as err:
        raise ApiError(422, f"the server rejected our request due to an error in our request: {err}",
                       "Invalid") from err
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as err:
        raise ApiError(422, f"the server rejected our request due to an error in our request: {err}",
                       "Invalid") from err
    except (KeyError, IndexError, TypeError) as err:
        raise ApiError(400, f"invalid json patch: {err}") from err


def _named(items: Any) -> bool:
    return isinstance(items, list) and bool(items) and all(isinstance(i, dict) and "name" in i for i in items)


def _strategic_order(target: list, patched: list) -> list:
    """Interleave the patch's items with the items only the live list has, as the real server does: both keep
    their own order; a patch item goes first unless both are in the live list and the live one came first."""
    position = {i.get("name"): n for n, i in enumerate(target) if isinstance(i, dict)}
    names = {i.get("name") for i in patched}
    left = [i for i in target if i.get("name") not in names]
    out, i, j = [], 0, 0
    while i < len(left) or j < len(patched):
        if j >= len(patched) or (i < len(left) and patched[j].get("name") in position
                                 and position[left[i].get("name")] < position[patched[j].get("name")]):
            out.append(left[i])
            i += 1
        else:
            out.append(patched[j])
            j += 1
    return out


def _merge_named(target: list, patch: list, strategic: bool) -> list:
    if strategic:
        merged = _merge_named(target, patch, False) if not any(p.get("$patch") for p in patch) else None
        if merged is not None:
            by_name = {i.get("name"): i for i in merged}
            return _strategic_order(target, [by_name[p["name"]] for p in patch])
    result = [copy.deepcopy(i) for i in target]
    index = {i.get("name"): n for n, i in enumerate(result) if isinstance(i, dict)}
    for item in patch:
        if strategic and item.get("$patch") == "delete":
            if item.get("name") in index:
                result = [r for r in result if r.get("name") != item.get("name")]
                index = {i.get("name"): n for n, i in enumerate(result)}
            continue
        if item["name"] in index:
            result[index[item["name"]]] = _deep_merge(result[index[item["name"]]], item, strategic)
        else:
            index[item["name"]] = len(result)
            result.append(_deep_merge({}, item, strategic))
    return result


def _deep_merge(target: Any, patch: Any, strategic: bool) -> Any:
    """Merge patch where lists of maps keyed by `name` merge by name; `$` directives are dropped."""
    if isinstance(patch, list):
        if _named(patch) and isinstance(target, list) and all(isinstance(i, dict) for i in target):
            return _merge_named(target, patch, strategic)
        return [_deep_merge({}, p, strategic) if isinstance(p, dict) else copy.deepcopy(p) for p in patch
                if not (isinstance(p, dict) and p.get("$patch") == "delete")]
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if not k.startswith("$")}
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            if key.startswith("$deleteFromPrimaryList/") and isinstance(result.get(key.split("/", 1)[1]), list):
                name = key.split("/", 1)[1]
                result[name] = [v for v in result[name] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _deep_merge(result.get(key), value, strategic)
    return result


def strategic_merge(target: Any, patch: Any) -> Any:
    return _deep_merge(target, patch, True)


def _remove_dropped(obj: Any, previous: Any, current: Any) -> Any:
    """Remove from `obj` what the manager applied before (`previous`) but no longer applies (`current`)."""
    if isinstance(previous, dict) and isinstance(obj, dict):
        out = dict(obj)
        for key, prev_value in previous.items():
            if key in ("apiVersion", "kind"):
                continue
            if not isinstance(current, dict) or key not in current:
                out.pop(key, None)
            elif key in out:
                out[key] = _remove_dropped(out[key], prev_value, current[key])
        return out
    if _named(previous) and isinstance(obj, list):
        now = {i.get("name"): i for i in current} if _named(current) else {}
        prev = {i["name"]: i for i in previous}
        out = []
        for item in obj:
            name = item.get("name") if isinstance(item, dict) else None
            if name in prev and name not in now:
                continue
            if name in prev and name in now:
                item = _remove_dropped(item, prev[name], now[name])
            out.append(item)
        return out
    return obj


def server_side_apply(target: dict[str, Any] | None, applied: dict[str, Any],
                      previous: dict[str, Any] | None) -> dict[str, Any]:
    """Apply `applied` for one field manager: drop what it stopped applying, then merge (named lists by name)."""
    base = copy.deepcopy(target) if target else {}
    if previous:
        base = _remove_dropped(base, previous, applied)
    return _deep_merge(base, applied, False)
