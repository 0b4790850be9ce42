"""openAPIV3Schema structural validation and pruning, with the real server's error wording."""

from __future__ import annotations

import json
import re
from typing import Any

ROOT_KEEP = ("apiVersion", "kind", "metadata")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _show(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return '"' + _type_name(value) + '"'
    return json.dumps(value)


def cause(kind: str, field: str, message: str) -> dict[str, Any]:
    return {"reason": kind, "message": message, "field": field}


# -- pruning ----------------------------------------------------------------------------------------
def prune(value: Any, schema: dict[str, Any] | None, root: bool = False, path: str = "",
          removed: list[str] | None = None) -> Any:
    """Drop fields the schema does not know, in place (their paths go to `removed`); returns the value."""
    if removed is None:
        removed = []
    if schema is None:
        return value
    if isinstance(value, dict):
        if schema.get("x-kubernetes-preserve-unknown-fields") and "properties" not in schema \
                and "additionalProperties" not in schema:
            return value
        props = schema.get("properties")
        additional = schema.get("additionalProperties")
        embedded = schema.get("x-kubernetes-embedded-resource")
        for key in list(value):
            if root and key in ROOT_KEEP:
                continue
            if embedded and key in ROOT_KEEP:
                continue
            if props is not None and key in props:
                prune(value[key], props[key], False, _join(path, key), removed)
            elif isinstance(additional, dict):
                prune(value[key], additional, False, _join(path, key), removed)
            elif additional is True or schema.get("x-kubernetes-preserve-unknown-fields"):
                continue
            else:
                removed.append(_join(path, key))
                del value[key]
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            prune(item, schema["items"], False, f"{path}[{i}]", removed)
    return value


# -- validation -------------------------------------------------------------------------------------
def validate(value: Any, schema: dict[str, Any] | None, path: str = "", root: bool = False) -> list[dict]:
    """Causes (reason, message, field) for every violation under `path`."""
    if schema is None:
        return []
    errors: list[dict] = []
    _validate(value, schema, path, errors, root)
    return errors


def _check_type(value: Any, schema: dict[str, Any]) -> bool:
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, (int, str)) and not isinstance(value, bool)
    expected = schema.get("type")
    if not expected:
        return True
    if expected == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or \
            (isinstance(value, float) and value.is_integer())
    if expected == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected == "string":
        return isinstance(value, str)
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "array":
        return isinstance(value, list)
    if expected == "object":
        return isinstance(value, dict)
    return True


def _validate(value: Any, schema: dict[str, Any], path: str, errors: list[dict], root: bool) -> None:
    where = path or "<root>"
    if not _typed(value, schema, where, errors):
        return
    if "enum" in schema and value not in schema["enum"]:
        supported = ", ".join(json.dumps(v) for v in schema["enum"])
        errors.append(cause("FieldValueNotSupported", where,
                            f"Unsupported value: {_show(value)}: supported values: {supported}"))
    if isinstance(value, str):
        _check_string(value, schema, where, errors)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        _bounds(value, schema, where, errors)
    if isinstance(value, list):
        _check_list(value, schema, path, errors)
    if isinstance(value, dict):
        _check_object(value, schema, path, errors, root)


def _typed(value: Any, schema: dict[str, Any], where: str, errors: list[dict]) -> bool:
    """Whether `value` has the schema's type (null where allowed counts, and needs no further checks: False)."""
    if value is None:
        if not (schema.get("nullable") or not (schema.get("type") or schema.get("x-kubernetes-int-or-string"))):
            errors.append(cause("FieldValueTypeInvalid", where,
                                f'Invalid value: "null": {where} in body must be of type {schema.get("type")}: "null"'))
        return False
    if not _check_type(value, schema):
        expected = "integer,string" if schema.get("x-kubernetes-int-or-string") else schema.get("type")
        got = _type_name(value)
        errors.append(cause("FieldValueTypeInvalid", where,
                            f'Invalid value: "{got}": {where} in body must be of type {expected}: "{got}"'))
        return False
    return True


def _check_string(value: str, schema: dict[str, Any], where: str, errors: list[dict]) -> None:
    if "pattern" in schema and re.search(schema["pattern"], value) is None:
        errors.append(cause("FieldValueInvalid", where,
                            f"Invalid value: {_show(value)}: {where} in body should match '{schema['pattern']}'"))
    if "minLength" in schema and len(value) < schema["minLength"]:
        errors.append(cause("FieldValueInvalid", where,
                            f"Invalid value: {_show(value)}: {where} in body should be at least "
                            f"{schema['minLength']} chars long"))
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.append(cause("FieldValueTooLong", where,
                            f"Too long: may not be more than {schema['maxLength']} bytes"))


def _check_list(value: list, schema: dict[str, Any], path: str, errors: list[dict]) -> None:
    where = path or "<root>"
    _count_bounds(len(value), schema, "Items", "items", where, errors)
    items = schema.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            _validate(item, items, f"{path}[{i}]", errors, False)


def _check_object(value: dict, schema: dict[str, Any], path: str, errors: list[dict], root: bool) -> None:
    where = path or "<root>"
    props = schema.get("properties") or {}
    for req in schema.get("required", []) or []:
        if req not in value:
            errors.append(cause("FieldValueRequired", _join(path, req), "Required value"))
    additional = schema.get("additionalProperties")
    for key, item in value.items():
        if root and key in ROOT_KEEP:
            continue
        if key in props:
            _validate(item, props[key], _join(path, key), errors, False)
        elif isinstance(additional, dict):
            _validate(item, additional, _join(path, key), errors, False)
    _count_bounds(len(value), schema, "Properties", "properties", where, errors)


def _count_bounds(count: int, schema: dict[str, Any], suffix: str, noun: str, where: str, errors: list[dict]) -> None:
    """minItems/maxItems or minProperties/maxProperties, with the real server's messages (its maximum says items)."""
    low, high = schema.get(f"min{suffix}"), schema.get(f"max{suffix}")
    if low is not None and count < low:
        errors.append(cause("FieldValueInvalid", where,
                            f"Invalid value: {count}: {where} in body should have at least {low} {noun}"))
    if high is not None and count > high:
        errors.append(cause("FieldValueTooMany", where, f"Too many: {count}: must have at most {high} items"))


def _bounds(value: float, schema: dict[str, Any], where: str, errors: list[dict]) -> None:
    shown = _show(value)
    if "minimum" in schema:
        low = schema["minimum"]
        if schema.get("exclusiveMinimum") is True and value <= low:
            errors.append(cause("FieldValueInvalid", where,
                                f"Invalid value: {shown}: {where} in body should be greater than {low}"))
        elif value < low:
            errors.append(cause("FieldValueInvalid", where,
                                f"Invalid value: {shown}: {where} in body should be greater than or equal to {low}"))
    if "maximum" in schema:
        high = schema["maximum"]
        if schema.get("exclusiveMaximum") is True and value >= high:
            errors.append(cause("FieldValueInvalid", where,
                                f"Invalid value: {shown}: {where} in body should be less than {high}"))
        elif value > high:
            errors.append(cause("FieldValueInvalid", where,
                                f"Invalid value: {shown}: {where} in body should be less than or equal to {high}"))
    if "multipleOf" in schema and schema["multipleOf"] and value % schema["multipleOf"] != 0:
        errors.append(cause("FieldValueInvalid", where,
                            f"Invalid value: {shown}: {where} in body should be a multiple of {schema['multipleOf']}"))


def subschema(schema: dict[str, Any] | None, *keys: str) -> dict[str, Any] | None:
    for key in keys:
        if schema is None:
            return None
        schema = (schema.get("properties") or {}).get(key)
    return schema
