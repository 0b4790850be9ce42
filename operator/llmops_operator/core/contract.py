"""The pure contract between the reconcile loop and each kind's builders and reducers.

Everything here is plain data and parsing: importing it loads no I/O library, so builders, reducers and
`llmops render` use it without the operator's runtime.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, get_args

from pydantic import ValidationError

from llmops_operator.api.v1alpha1.common import Resource
from llmops_operator.core import conditions as cond
from llmops_operator.core.pricing import PriceCatalog
from llmops_operator.core.settings import Settings


class InvalidSpec(ValueError):
    """The spec cannot be acted on; the message names the field and says what to do."""


@dataclass(frozen=True)
class Context:
    """Everything a pure builder or reducer may read besides the object itself."""

    settings: Settings
    catalog: PriceCatalog
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    decision: Any = None
    """This pass's decision, for kinds whose children follow what was measured (`Reconciler.decide`): made once
    per pass and read by children(), status() and act(). None outside a pass (`llmops render`, prune)."""
    installed: frozenset[str] = frozenset()
    """Optional engine CRDs (`plural.group`) this pass found installed (`Reconciler.probe`), for kinds whose
    children depend on them; empty outside a pass and for kinds that probe nothing."""

    @classmethod
    def default(cls, settings: Settings | None = None) -> "Context":
        settings = settings or Settings()
        return cls(settings=settings, catalog=settings.catalog)


@dataclass
class Observation:
    """What a reducer concludes: the conditions it owns (Ready included), the phase, other status fields."""

    conditions: list[cond.Observed]
    phase: str
    fields: dict[str, Any] = field(default_factory=dict)


def describe_validation_error(err: ValidationError) -> str:
    """One line per problem, each naming the field in wire (camelCase) form: `spec.resources.workers: ...`."""
    lines = []
    for problem in err.errors():
        loc = ".".join(str(p) for p in problem["loc"])
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"{loc}: {message}" if loc else message)
    return "; ".join(lines)


def owner_body(obj: Resource) -> dict[str, Any]:
    """What an owner reference needs of `obj` (apiVersion, kind, name, namespace, uid), rebuilt from the parsed
    object for code that holds the model rather than the body the API returned."""
    return {"apiVersion": obj.api_version, "kind": obj.kind,
            "metadata": {"name": obj.name, "namespace": obj.namespace, "uid": obj.metadata.uid}}


def parse(resource: type[Resource], body: dict[str, Any]) -> Resource:
    """The typed object, or InvalidSpec naming each bad field."""
    try:
        obj = resource.model_validate(_without_status(body), by_alias=True, by_name=False)
    except ValidationError as err:
        raise InvalidSpec(describe_validation_error(err)) from None
    obj.status = _previous_status(resource, body.get("status"))
    return obj


def _without_status(body: dict[str, Any]) -> dict[str, Any]:
    # Status is the operator's own output: never let a stale or foreign status block a reconcile.
    return {k: v for k, v in dict(body).items() if k != "status"}


def _previous_status(resource: type[Resource], status: Any) -> Any:
    """The last status written, for reducers that act on it (a spent budget); None when absent or unreadable."""
    if not isinstance(status, dict) or not status:
        return None
    status_model = next(a for a in get_args(resource.model_fields["status"].annotation) if a is not type(None))
    try:
        return status_model.model_validate(status, by_alias=True, by_name=False)
    except ValidationError:
        return None


Refs = dict[tuple[str, str], dict[str, Any] | None]
"""Referenced objects by (kind, name) in the owner's namespace: the live body, or None when missing."""


def invalid_observation(message: str) -> Observation:
    return Observation(conditions=cond.invalid_spec(message), phase="Invalid")
