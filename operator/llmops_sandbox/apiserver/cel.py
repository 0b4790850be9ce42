"""x-kubernetes-validations, evaluated with cel-python (`celpy`).

A rule celpy cannot compile is skipped with a warning (once). Transition rules (those that mention
`oldSelf`) run only on updates, where an old value exists at the same place.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from .schema import _type_name, cause

log = logging.getLogger(__name__)

try:  # pragma: no cover - the sandbox extra installs it
    import celpy
    from celpy.evaluation import CELEvalError
except ImportError:  # pragma: no cover
    celpy = None
    CELEvalError = Exception

_OLD_SELF = re.compile(r"\boldSelf\b")
_MISSING = object()
_REASONS = {
    "FieldValueInvalid": "FieldValueInvalid",
    "FieldValueForbidden": "FieldValueForbidden",
    "FieldValueRequired": "FieldValueRequired",
    "FieldValueDuplicate": "FieldValueDuplicate",
}


def implementation() -> str:
    if celpy is None:
        return "none (cel-python missing: CEL rules are skipped)"
    try:
        from importlib.metadata import version
        return f"cel-python {version('cel-python')}"
    except Exception:  # pragma: no cover
        return "cel-python"


class CelValidator:
    def __init__(self) -> None:
        self._env = celpy.Environment() if celpy else None
        self._programs: dict[str, Any] = {}

    def program(self, expr: str) -> Any | None:
        if expr in self._programs:
            return self._programs[expr]
        prog = None
        if self._env is not None:
            try:
                prog = self._env.program(self._env.compile(expr))
            except Exception as err:  # celpy parse/compile errors
                log.warning("skipping CEL rule celpy cannot compile: %r: %s", expr, err)
        self._programs[expr] = prog
        return prog

    def validate(self, value: Any, schema: dict[str, Any] | None, old: Any = _MISSING,
                 path: str = "") -> list[dict]:
        errors: list[dict] = []
        if schema is not None and self._env is not None:
            self._walk(value, schema, old, path, errors)
        return errors

    def _walk(self, value: Any, schema: dict[str, Any], old: Any, path: str, errors: list[dict]) -> None:
        if value is None:
            return
        for rule in schema.get("x-kubernetes-validations") or []:
            self._check(rule, value, old, path, errors)
        if isinstance(value, dict):
            props = schema.get("properties") or {}
            additional = schema.get("additionalProperties")
            for key, item in value.items():
                sub = props.get(key) or (additional if isinstance(additional, dict) else None)
                if sub is None:
                    continue
                old_item = old.get(key, _MISSING) if isinstance(old, dict) else _MISSING
                self._walk(item, sub, old_item, f"{path}.{key}" if path else key, errors)
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            items = schema["items"]
            keys = schema.get("x-kubernetes-list-map-keys") or []
            old_by_key = {}
            if keys and isinstance(old, list):
                old_by_key = {tuple(o.get(k) for k in keys): o for o in old if isinstance(o, dict)}
            for i, item in enumerate(value):
                old_item = _MISSING
                if keys and isinstance(item, dict):
                    old_item = old_by_key.get(tuple(item.get(k) for k in keys), _MISSING)
                self._walk(item, items, old_item, f"{path}[{i}]", errors)

    def _check(self, rule: dict[str, Any], value: Any, old: Any, path: str, errors: list[dict]) -> None:
        expr = rule.get("rule", "")
        transition = bool(_OLD_SELF.search(expr))
        if transition and old is _MISSING:
            return
        prog = self.program(expr)
        if prog is None:
            return
        activation = {"self": celpy.json_to_cel(value)}
        if transition:
            activation["oldSelf"] = celpy.json_to_cel(old)
        try:
            result = prog.evaluate(activation)
        except CELEvalError as err:
            result = err
        except Exception as err:  # celpy gaps (unknown functions, ...): skip, like an uncompilable rule
            log.warning("skipping CEL rule %r: celpy failed: %s", expr, err)
            return
        if isinstance(result, CELEvalError):
            field = path or "<root>"
            text = str(result.args[0]) if result.args else str(result)
            match = re.match(r"no such member in mapping: '?([^']*)'?", text)
            if match:
                text = f"no such key: {match.group(1)}"
            errors.append(cause("FieldValueInvalid", field,
                                f'Invalid value: "{_type_name(value)}": {text} evaluating rule: {expr}'))
            return
        if bool(result):
            return
        message = rule.get("message")
        if not message and rule.get("messageExpression"):
            mprog = self.program(rule["messageExpression"])
            if mprog is not None:
                try:
                    message = str(mprog.evaluate(activation))
                except Exception:
                    message = None
        if not message:
            message = f"failed rule: {expr}"
        field = path
        if rule.get("fieldPath"):
            field = f"{path}{rule['fieldPath']}" if rule["fieldPath"].startswith((".", "[")) else \
                f"{path}.{rule['fieldPath']}"
        field = field or "<root>"
        reason = _REASONS.get(rule.get("reason", ""), "FieldValueInvalid")
        errors.append(cause(reason, field, f'Invalid value: "{_type_name(value)}": {message}'))


MISSING = _MISSING
