"""meta.k8s.io/v1 Table output (what `kubectl get` prints), from CRD additionalPrinterColumns."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Callable

from .registry import Resource

TABLE_ACCEPT = re.compile(r"as=Table", re.I)


def wants_table(accept: str) -> bool:
    """True when the first acceptable media type asks for a Table."""
    for part in accept.split(","):
        if "as=Table" in part and "g=meta.k8s.io" in part:
            return True
        if part.strip().startswith("application/json") and "as=" not in part:
            return False
    return False


def human_duration(seconds: float) -> str:
    s = int(max(seconds, 0))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    d = h // 24
    if d < 8:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    if d < 365 * 2:
        return f"{d}d"
    return f"{d // 365}y"


def age(timestamp: str | None) -> str | None:
    if not timestamp:
        return None
    try:
        then = dt.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return timestamp
    return human_duration((dt.datetime.now(dt.timezone.utc) - then).total_seconds())


_TOKEN = re.compile(r"""\.([A-Za-z0-9_\-$]+)|\[(\d+)\]|\[\?\(@\.([A-Za-z0-9_.\-]+)\s*==\s*["']([^"']*)["']\)\]|\[\*\]|\['([^']+)'\]""")


def jsonpath(obj: Any, path: str) -> Any:
    """A small JSONPath: `.a.b`, `.a[0]`, `.a[*].b`, `.a[?(@.type=="Ready")].status`, `.a['x.y']`."""
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    if path.startswith("$"):
        path = path[1:]
    values = [obj]
    pos = 0
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if not m:
            return None
        pos = m.end()
        key, index, fkey, fval, quoted = m.groups()
        nxt = []
        for v in values:
            if key is not None or quoted is not None:
                k = key if key is not None else quoted
                if isinstance(v, dict) and k in v:
                    nxt.append(v[k])
            elif index is not None:
                if isinstance(v, list) and int(index) < len(v):
                    nxt.append(v[int(index)])
            elif fkey is not None:
                if isinstance(v, list):
                    for item in v:
                        field = item
                        for part in fkey.split("."):
                            field = field.get(part) if isinstance(field, dict) else None
                        if field is not None and str(field if not isinstance(field, bool) else str(field).lower()) == fval:
                            nxt.append(item)
            else:  # [*]
                if isinstance(v, list):
                    nxt.extend(v)
                elif isinstance(v, dict):
                    nxt.extend(v.values())
        values = nxt
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def _cell(value: Any, ctype: str) -> Any:
    if value is None:
        return None
    if ctype == "date":
        return age(value) if isinstance(value, str) else value
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if ctype == "integer" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    if ctype == "string" and isinstance(value, (dict,)):
        return str(value)
    return value


def _involved(obj: dict[str, Any]) -> str:
    about = obj.get("involvedObject") or {}
    return f"{str(about.get('kind', '')).lower()}/{about.get('name', '')}"


def _count(*fields: str) -> Callable[[dict[str, Any]], int]:
    return lambda obj: sum(len(obj.get(f) or {}) for f in fields)


def _age_of(*paths: str) -> Callable[[dict[str, Any]], str]:
    def cell(obj: dict[str, Any]) -> str:
        stamp = next((v for v in (jsonpath(obj, p) for p in paths) if v), None)
        return age(stamp) if stamp else "<unknown>"
    return cell


NAME = {"name": "Name", "type": "string", "format": "name", "cell": lambda obj: obj["metadata"]["name"],
        "description": "Name must be unique within a namespace."}
AGE = {"name": "Age", "type": "string", "cell": _age_of(".metadata.creationTimestamp"),
       "description": "CreationTimestamp is a timestamp representing the server time when this object was created."}

BUILTIN_COLUMNS: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("", "namespaces"): [NAME, {"name": "Status", "type": "string", "jsonPath": ".status.phase"}, AGE],
    ("", "configmaps"): [NAME, {"name": "Data", "type": "string", "cell": _count("data", "binaryData")}, AGE],
    ("", "secrets"): [NAME, {"name": "Type", "type": "string", "jsonPath": ".type"},
                      {"name": "Data", "type": "string", "cell": _count("data")}, AGE],
    ("", "events"): [
        {"name": "Last Seen", "type": "string", "cell": _age_of(".lastTimestamp", ".eventTime")},
        {"name": "Type", "type": "string", "jsonPath": ".type"},
        {"name": "Reason", "type": "string", "jsonPath": ".reason"},
        {"name": "Object", "type": "string", "cell": _involved},
        {"name": "Subobject", "type": "string", "jsonPath": ".involvedObject.fieldPath", "priority": 1},
        {"name": "Source", "type": "string", "jsonPath": ".source.component", "priority": 1},
        {"name": "Message", "type": "string", "jsonPath": ".message"},
        {"name": "First Seen", "type": "string", "cell": _age_of(".firstTimestamp", ".eventTime"), "priority": 1},
        {"name": "Count", "type": "string", "jsonPath": ".count", "priority": 1},
        dict(NAME, priority=1),
    ],
}
"""Every column of built-in kinds that have their own, in the real API server's order and priorities (priority 1
shows with `kubectl get -o wide`)."""


def _all_columns(res: Resource) -> list[dict[str, Any]]:
    if res.key in BUILTIN_COLUMNS:
        return BUILTIN_COLUMNS[res.key]
    custom = res.printer_columns
    return [NAME, *custom] + ([AGE] if res.crd is None or not custom else [])


def columns(res: Resource) -> list[dict[str, Any]]:
    return [{"name": col["name"], "type": col.get("type", "string"), "format": col.get("format", ""),
             "description": col.get("description", ""), "priority": col.get("priority", 0)}
            for col in _all_columns(res)]


def row(res: Resource, obj: dict[str, Any], include: str = "Metadata") -> dict[str, Any]:
    cells: list[Any] = []
    for col in _all_columns(res):
        value = col["cell"](obj) if "cell" in col else jsonpath(obj, col.get("jsonPath", ""))
        cells.append(_cell(value, col.get("type", "string")))
    out: dict[str, Any] = {"cells": cells}
    if include == "Object":
        out["object"] = obj
    elif include != "None":
        out["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                         "metadata": obj["metadata"]}
    return out


def table(res: Resource, objs: list[dict[str, Any]], resource_version: str, include: str = "Metadata",
          with_columns: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
                           "metadata": {"resourceVersion": resource_version},
                           "rows": [row(res, o, include) for o in objs]}
    if with_columns:
        out["columnDefinitions"] = columns(res)
    return out
