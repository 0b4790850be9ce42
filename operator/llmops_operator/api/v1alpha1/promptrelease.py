"""PromptRelease: versioned prompt templates and how traffic is split between a stable and a canary version.

Each released version becomes a content-hashed ConfigMap and a small routing ConfigMap carries the
weights; InferenceServices read status.stable / status.canary to mount them.
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from llmops_operator.api.v1alpha1.common import (
    KindInfo, KubeModel, PrinterColumn, Resource, ResourceStatus, StatusModel, age_column, cel, list_map,
    ready_columns,
)

VERSION_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
VARIABLE_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def placeholders(template: str) -> list[str]:
    """The variable names a template uses, as `{{ name }}`, in order of first use."""
    return list(dict.fromkeys(_PLACEHOLDER.findall(template)))


class ModelParameters(KubeModel):
    """Generation parameters sent with every request that uses this version."""

    temperature: float = Field(default=0.7, ge=0, le=2)
    """Sampling temperature. Defaults to 0.7."""
    max_tokens: int = Field(default=256, ge=1, le=131_072)
    """Most tokens generated per request. Defaults to 256."""
    top_p: float | None = Field(default=None, gt=0, le=1)
    """Nucleus sampling probability mass; the model server's default when absent."""
    stop: list[str] | None = Field(default=None, max_length=8)
    """Sequences that end generation."""


class PromptVersion(KubeModel):
    """One version of the prompt: its template and the parameters it is sent with."""

    name: str = Field(min_length=1, max_length=40, pattern=VERSION_NAME)
    """Version name, unique in the release, such as v1 or 2026-05-01."""
    template: str = Field(min_length=1, max_length=65_536)
    """The prompt template; variables are written {{ name }}."""
    variables: list[str] | None = Field(default=None, max_length=32)
    """Variables the template expects; each must appear in the template as {{ name }}. Unchecked when absent."""
    parameters: ModelParameters = Field(default_factory=ModelParameters)
    """Generation parameters."""

    @field_validator("variables")
    @classmethod
    def _variable_names(cls, variables: list[str] | None) -> list[str] | None:
        for name in variables or ():
            if not re.fullmatch(VARIABLE_NAME, name):
                raise ValueError(f"variable {name!r} is not an identifier (letters, digits, underscore)")
        return variables

    @model_validator(mode="after")
    def _variables_used(self) -> "PromptVersion":
        if self.variables is None:
            return self
        used = placeholders(self.template)
        missing = [v for v in self.variables if v not in used]
        undeclared = [v for v in used if v not in self.variables]
        if missing:
            raise ValueError(f"variables {missing} do not appear in the template as {{{{ name }}}}")
        if undeclared:
            raise ValueError(f"the template uses {undeclared}, which are not in variables")
        return self


class CanarySpec(KubeModel):
    """The candidate version and the share of traffic it gets."""

    version: str = Field(min_length=1, max_length=40)
    """Name of the canary version (one of versions)."""
    weight: int = Field(default=10, ge=0, le=100)
    """Percent of requests (0..100) sent to the canary; the stable version gets the rest. Defaults to 10."""


class RolloutSpec(KubeModel):
    """Which version serves, and which one is being tried."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel("!has(self.canary) || self.canary.version != self.stable",
            "rollout.canary.version must differ from rollout.stable", ".canary.version"),
    ]}}

    stable: str = Field(min_length=1, max_length=40)
    """Name of the version that serves by default (one of versions)."""
    canary: CanarySpec | None = None
    """A candidate version and its traffic share; absent when only the stable version serves."""
    strategy: Literal["random", "sticky"] = "random"
    """How the runtime picks a version per request: random (by weight) or sticky (by a hash of stickyKey, so a user
    keeps seeing the same version). Defaults to random."""
    sticky_key: str = Field(default="x-user-id", min_length=1, max_length=128)
    """Request header hashed by the sticky strategy. Defaults to x-user-id."""

    @model_validator(mode="after")
    def _canary_differs(self) -> "RolloutSpec":
        if self.canary is not None and self.canary.version == self.stable:
            raise ValueError("rollout.canary.version must differ from rollout.stable")
        return self


class PromptReleaseSpec(KubeModel):
    """The prompt's versions and its rollout."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel("self.versions.exists(v, v.name == self.rollout.stable)",
            "rollout.stable must name one of versions", ".rollout.stable"),
        cel("!has(self.rollout.canary) || self.versions.exists(v, v.name == self.rollout.canary.version)",
            "rollout.canary.version must name one of versions", ".rollout.canary.version"),
    ]}}

    versions: list[PromptVersion] = Field(min_length=1, max_length=32, json_schema_extra=list_map("name"))
    """The prompt's versions; names are unique."""
    rollout: RolloutSpec
    """Which versions serve and how traffic is split between them."""

    @field_validator("versions")
    @classmethod
    def _unique_names(cls, versions: list[PromptVersion]) -> list[PromptVersion]:
        names = [v.name for v in versions]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"version names must be unique: {twice[0]!r} appears more than once")
        return versions

    @model_validator(mode="after")
    def _rollout_names_versions(self) -> "PromptReleaseSpec":
        names = {v.name for v in self.versions}
        if self.rollout.stable not in names:
            raise ValueError("rollout.stable must name one of versions")
        if self.rollout.canary is not None and self.rollout.canary.version not in names:
            raise ValueError("rollout.canary.version must name one of versions")
        return self

    def version(self, name: str) -> PromptVersion:
        return next(v for v in self.versions if v.name == name)


class ReleasedVersion(StatusModel):
    """A released version and the ConfigMap holding it."""

    version: str
    """Version name."""
    config_map: str
    """ConfigMap holding the version (template and parameters), content-hashed."""
    weight: int | None = None
    """Percent of traffic the version gets."""


class PromptReleaseStatus(ResourceStatus):
    """Observed state of a PromptRelease."""

    stable: ReleasedVersion | None = None
    """The stable version, its ConfigMap and weight."""
    canary: ReleasedVersion | None = None
    """The canary version, its ConfigMap and weight; absent when no canary runs."""
    routing_config_map: str | None = None
    """ConfigMap holding the traffic split (routing.json) the runtime reads."""


class PromptRelease(Resource):
    """PromptRelease versions prompt templates and rolls a new version out as a weighted canary beside the stable one."""

    info: ClassVar[KindInfo] = KindInfo(
        kind="PromptRelease", plural="promptreleases", short_names=["prel"],
        columns=[
            *ready_columns(),
            PrinterColumn(name="Stable", json_path=".status.stable.version"),
            PrinterColumn(name="Canary", json_path=".status.canary.version"),
            PrinterColumn(name="Weight", json_path=".status.canary.weight", type="integer",
                          description="Percent of traffic sent to the canary"),
            age_column(),
        ],
    )

    kind: Literal["PromptRelease"] = "PromptRelease"
    spec: PromptReleaseSpec
    status: PromptReleaseStatus | None = None
