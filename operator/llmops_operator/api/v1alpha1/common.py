"""Blocks shared by every llmops.dev/v1alpha1 kind: metadata, conditions and the status contract.

Every model here is also a CRD schema (see ``api/crdgen.py``): field docstrings become the
descriptions ``kubectl explain`` prints, camelCase aliases become the wire names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import CoreSchema

GROUP = "llmops.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "llmops"


@dataclass(frozen=True)
class ExactlyOneOf:
    """The rule that exactly one of some optional fields of a block is set.

    Declared once on the model (`exactly_one = (exactly_one_of(...),)`), it is enforced twice from that one
    declaration: by the model's validator, and by the API server through the CEL rule the CRD carries."""

    fields: tuple[str, ...]
    """The fields' Python names."""
    where: str
    """The block's path as a person writes it in a manifest (model, source, baseModel), for the message."""

    def wire_names(self, model: type[BaseModel]) -> list[str]:
        return [model.model_fields[name].alias or name for name in self.fields]

    def message(self, model: type[BaseModel]) -> str:
        names = [f"{self.where}.{name}" for name in self.wire_names(model)]
        return f"set exactly one of {', '.join(names[:-1])} and {names[-1]}"

    def cel_rule(self, model: type[BaseModel]) -> dict[str, str]:
        has = [f"has(self.{name})" for name in self.wire_names(model)]
        rule = f"{has[0]} != {has[1]}" if len(has) == 2 else f"[{', '.join(has)}].filter(x, x).size() == 1"
        return cel(rule, self.message(model))

    def holds(self, obj: BaseModel) -> bool:
        return sum(getattr(obj, name) is not None for name in self.fields) == 1


def exactly_one_of(*fields: str, where: str) -> ExactlyOneOf:
    if len(fields) < 2:
        raise ValueError("exactly_one_of needs at least two fields")
    return ExactlyOneOf(fields=fields, where=where)


class KubeModel(BaseModel):
    """Base for spec blocks: camelCase on the wire, unknown fields rejected, docstrings as descriptions."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_attribute_docstrings=True,
        validate_assignment=False,
    )

    exactly_one: ClassVar[tuple[ExactlyOneOf, ...]] = ()
    """This block's exactly-one-of rules: each checked on validation and emitted as a CEL rule of the CRD."""

    @model_validator(mode="after")
    def _declared_exactly_one(self) -> "KubeModel":
        for rule in self.exactly_one:
            if not rule.holds(self):
                raise ValueError(rule.message(type(self)))
        return self

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        schema = handler(core_schema)
        if cls.exactly_one:
            target = handler.resolve_ref_schema(schema)
            declared = [rule.cel_rule(cls) for rule in cls.exactly_one]
            target["x-kubernetes-validations"] = [*target.get("x-kubernetes-validations", []), *declared]
        return schema

    def wire(self) -> dict[str, Any]:
        """The object as it travels to the API server: camelCase, no unset optionals."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class StatusModel(KubeModel):
    """Base for status blocks: written by the operator, so tolerant of fields a newer version added."""

    model_config = ConfigDict(extra="ignore")


def require_unique_names(items: list[Any] | None, prefix: str = "") -> None:
    """Raise naming the first `name` that two items share; `prefix` leads the message."""
    seen: set[str] = set()
    for item in items or []:
        if item.name in seen:
            raise ValueError(f"{prefix}{item.name!r} appears more than once")
        seen.add(item.name)


def list_map(*keys: str) -> dict[str, Any]:
    """Schema extra that makes a list a Kubernetes list-map keyed by ``keys`` (merge by key under SSA)."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": list(keys)}


def cel(rule: str, message: str, field_path: str | None = None) -> dict[str, str]:
    """One ``x-kubernetes-validations`` entry; the same rule is also enforced by the model's validators (an
    exactly-one-of rule is declared with `exactly_one_of` instead, which writes both)."""
    entry = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry


# ----- references ---------------------------------------------------------------------------------


class LocalObjectReference(KubeModel):
    """A reference to an object in the same namespace."""

    name: str = Field(min_length=1, max_length=253)
    """Name of the referenced object."""


class SecretKeyRef(KubeModel):
    """A key of a Secret in the same namespace."""

    name: str = Field(min_length=1, max_length=253)
    """Name of the Secret."""
    key: str = Field(min_length=1)
    """Key inside the Secret's data."""


# ----- conditions ---------------------------------------------------------------------------------

ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(StatusModel):
    """One observation of the object's state, in the Kubernetes API conventions' shape."""

    type: str
    """Condition type, such as Ready, Succeeded, BudgetExceeded or DriftDetected."""
    status: ConditionStatus
    """True, False or Unknown."""
    reason: str
    """A CamelCase reason a program can switch on."""
    message: str = ""
    """A human-readable explanation a person can act on."""
    last_transition_time: str
    """When status last changed (RFC 3339)."""
    observed_generation: int | None = None
    """The metadata.generation this condition was computed from."""


# ----- the cost, drift and safety blocks ------------------------------------------------------------


class CostStatus(StatusModel):
    """What the object costs, computed from its resources and the price catalog."""

    currency: str = "USD"
    """ISO 4217 currency of every amount in this block."""
    hourly_rate: float | None = None
    """Current cost per hour while running."""
    accrued: float = 0.0
    """Cost accrued so far."""
    estimate: float | None = None
    """Estimated total cost (for jobs: resources x maximum duration)."""
    budget: float | None = None
    """The budget from spec, echoed for printer columns and dashboards."""
    per_1k_tokens: float | None = None
    """For serving: cost per 1,000 tokens served."""
    updated_at: str | None = None
    """When this block was computed (RFC 3339)."""


class DriftStatus(StatusModel):
    """How far live data has moved from the reference captured at release time."""

    metric: Literal["psi", "js", "ks", "embedding"] = "psi"
    """Drift statistic: population stability index, Jensen-Shannon distance, Kolmogorov-Smirnov, or embedding distance."""
    score: float | None = None
    """The largest drift score over the monitored signals."""
    threshold: float | None = None
    """Score above which the data counts as drifted."""
    drifted: bool = False
    """Whether score is above threshold."""
    window: str | None = None
    """The live window the score was computed over, such as 1h."""
    feature: str | None = None
    """The signal or feature with the largest score."""
    evaluated_at: str | None = None
    """When drift was last evaluated (RFC 3339)."""
    samples: int | None = None
    """How many live samples the score was computed from, where the kind counts them."""


class SafetyStatus(StatusModel):
    """How safe the object is, from guardrail verdicts."""

    score: float | None = Field(default=None, ge=0, le=1)
    """Safety score between 0 (unsafe) and 1 (safe)."""
    evaluated: int = 0
    """How many texts the score was computed from."""
    by_rule: dict[str, int] = Field(default_factory=dict)
    """Verdict counts per guardrail rule."""
    detection_rate: float | None = Field(default=None, ge=0, le=1)
    """Self-test: share of the built-in attacks the policy's checks cover that they caught."""
    false_positive_rate: float | None = Field(default=None, ge=0, le=1)
    """Self-test: share of the built-in benign texts (attack look-alikes) that some check hit."""
    evaluated_at: str | None = None
    """When safety was last evaluated (RFC 3339)."""


class ResourceStatus(StatusModel):
    """The status contract every llmops.dev kind honours."""

    observed_generation: int | None = None
    """The metadata.generation the operator last reconciled."""
    phase: str | None = None
    """A one-word summary derived from conditions, for printer columns only."""
    conditions: list[Condition] = Field(default_factory=list, json_schema_extra=list_map("type"))
    """Observations of the object's state; Ready aggregates them."""


# ----- the top-level object -------------------------------------------------------------------------


class PrinterColumn(BaseModel):
    name: str
    json_path: str
    type: Literal["string", "integer", "number", "boolean", "date"] = "string"
    description: str = ""
    priority: int = 0


class KindInfo(BaseModel):
    """What the CRD needs beyond the schema: names, scope and printer columns."""

    kind: str
    plural: str
    short_names: list[str]
    columns: list[PrinterColumn]
    requires: str | None = None
    """The extra of the Python package that the kind's engine needs, for documentation."""

    @property
    def singular(self) -> str:
        return self.kind.lower()


def ready_columns() -> list[PrinterColumn]:
    return [
        PrinterColumn(name="Ready", json_path='.status.conditions[?(@.type=="Ready")].status'),
        PrinterColumn(name="Phase", json_path=".status.phase"),
    ]


def cost_column() -> PrinterColumn:
    return PrinterColumn(name="Cost", json_path=".status.cost.accrued", type="number",
                         description="Cost accrued so far, in status.cost.currency")


def drift_column() -> PrinterColumn:
    return PrinterColumn(name="Drift", json_path=".status.drift.score", type="number",
                         description="Largest drift score over monitored signals")


def safety_column() -> PrinterColumn:
    return PrinterColumn(name="Safety", json_path=".status.safety.score", type="number",
                         description="Safety score, 0 (unsafe) to 1 (safe)")


def age_column() -> PrinterColumn:
    return PrinterColumn(name="Age", json_path=".metadata.creationTimestamp", type="date")


class ObjectMeta(BaseModel):
    """The subset of metadata the operator reads; everything else passes through untouched."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    name: str
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class Resource(BaseModel):
    """A whole llmops.dev object: apiVersion, kind, metadata, spec, status."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    info: ClassVar[KindInfo]

    api_version: str = API_VERSION
    kind: str
    metadata: ObjectMeta
    spec: KubeModel
    status: ResourceStatus | None = None

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace or "default"
