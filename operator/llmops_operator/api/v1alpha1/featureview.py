"""FeatureView: a Feast feature view (entities, source, schema, TTL) applied to a registry and materialized.

The operator renders the Feast repository configuration (feature_store.yaml) and a JSON definition
of the view in Feast's own names; a Job applies them with the Feast SDK and a Job or CronJob
materializes the view into the online store.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from llmops_operator.api.v1alpha1.common import (
    DriftStatus, KindInfo, KubeModel, PrinterColumn, Resource, ResourceStatus, age_column, cel, drift_column,
    exactly_one_of, list_map, ready_columns,
)
from llmops_operator.api.v1alpha1.retrain import RetrainSpec, RetrainStatus
from llmops_operator.api.v1alpha1.units import Duration

FEAST_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
"""Feast project names may hold letters, digits and underscores only; the same is kept for columns."""
CRON_PATTERN = r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|(\S+\s+){4}\S+)$"
JOIN_KEY_MESSAGE = "every joinKey of an entity must differ from the feature names"

FeastName = Annotated[str, Field(min_length=1, max_length=63, pattern=FEAST_NAME_PATTERN)]
ValueType = Literal["Float32", "Float64", "Int32", "Int64", "String", "Bool"]


class EntitySpec(KubeModel):
    """A Feast Entity: the key features are looked up by."""

    name: FeastName
    """Entity name, such as driver."""
    join_keys: list[FeastName] = Field(min_length=1, max_length=8)
    """Columns of the source that identify the entity, such as driver_id."""
    value_type: ValueType = "Int64"
    """Type of the join keys. Defaults to Int64."""


class FileSourceSpec(KubeModel):
    """A Feast FileSource: a Parquet file (or a CSV file, converted to Parquet by the apply Job)."""

    path: str = Field(min_length=1, max_length=1024)
    """pvc://claim/path, file:///path or s3://bucket/key of the file."""
    timestamp_field: FeastName = "event_timestamp"
    """Column with each row's event time (point-in-time joins, materialization windows). Defaults to event_timestamp."""
    created_timestamp_column: FeastName | None = None
    """Column with the row's creation time, used to pick the latest of duplicate rows."""
    format: Literal["parquet", "csv"] = "parquet"
    """File format. Feast's FileSource reads Parquet: csv is converted to Parquet next to the registry at apply time. Defaults to parquet."""


class DataSourceRef(KubeModel):
    """A data source already registered in the Feast project (by `feast apply` elsewhere)."""

    name: str = Field(min_length=1, max_length=253)
    """Name of the Feast data source."""


class FeatureSourceSpec(KubeModel):
    """Where the feature rows come from. Exactly one of file and dataSource."""

    exactly_one = (exactly_one_of("file", "data_source", where="source"),)

    file: FileSourceSpec | None = None
    """A file the operator registers as a Feast FileSource named after this object."""
    data_source: DataSourceRef | None = None
    """An existing Feast data source in the project."""


class FeatureSpec(KubeModel):
    """One feature: a column of the source (Feast Field)."""

    name: FeastName
    """Column name in the source and feature name in Feast."""
    dtype: ValueType
    """Feast type of the feature."""


class MaterializeSpec(KubeModel):
    """Loading the view into the online store."""

    schedule: str | None = Field(default=None, max_length=64, pattern=CRON_PATTERN)
    """Cron schedule (CronJob syntax) of incremental materialization. Unset: materialize once per spec change."""
    lookback: Duration = "24h"
    """How far back the first materialization reaches; later runs continue from where the last one ended. Defaults to 24h."""


class DriftSpec(KubeModel):
    """How drift of the feature values is measured."""

    reference_window: Duration = "168h"
    """The window of source rows that serves as the reference distribution. Defaults to 168h (7 days)."""
    threshold: float = Field(default=0.2, gt=0, le=10)
    """Score above which a feature counts as drifted. Defaults to 0.2."""
    method: Literal["psi", "js", "ks"] = "psi"
    """Population stability index, Jensen-Shannon distance or the Kolmogorov-Smirnov statistic, each on the
    reference's quantile bins. Defaults to psi."""


class FeatureViewSpec(KubeModel):
    """A Feast feature view: its project, entities, source, schema, TTL, materialization and drift monitoring."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel("self.entities.all(e, e.joinKeys.all(k, !self.features.exists(f, f.name == k)))", JOIN_KEY_MESSAGE),
    ]}}

    project: FeastName = Field(json_schema_extra={"x-kubernetes-validations": [
        cel("self == oldSelf", "project is immutable"),
    ]})
    """Feast project (letters, digits and underscores). Immutable."""
    entities: list[EntitySpec] = Field(min_length=1, max_length=4, json_schema_extra=list_map("name"))
    """Entities the view is keyed by."""
    source: FeatureSourceSpec
    """Where the rows come from."""
    features: list[FeatureSpec] = Field(min_length=1, max_length=128, json_schema_extra=list_map("name"))
    """The features (columns) of the view."""
    ttl: Duration = "24h"
    """How long a feature value stays valid after its event time (Feast ttl). Defaults to 24h."""
    online: bool = True
    """Serve the view from the online store (and materialize it). Defaults to true."""
    materialize: MaterializeSpec = Field(default_factory=MaterializeSpec)
    """Materialization into the online store."""
    drift: DriftSpec | None = None
    """Drift monitoring of the feature values. Unset: drift is not measured."""
    image: str | None = Field(default=None, max_length=512)
    """Container image of the apply and materialize Jobs. Defaults to the operator's runtime image."""
    retrain: RetrainSpec | None = None
    """Create a FineTune or TrainingJob from a template when feature drift is detected (needs drift). Unset: never."""
    deletion_policy: Literal["Retain", "Delete"] = "Delete"
    """What happens to the Feast objects when the FeatureView is deleted: Delete removes the feature view (and its online store table), its own file source and the entities no other view uses from the registry; Retain keeps them. Source data is never touched. Defaults to Delete."""

    @model_validator(mode="after")
    def _join_keys_are_not_features(self) -> "FeatureViewSpec":
        features = {f.name for f in self.features}
        if any(k in features for e in self.entities for k in e.join_keys):
            raise ValueError(JOIN_KEY_MESSAGE)
        return self


class FeatureViewStatus(ResourceStatus):
    """Observed state of a FeatureView."""

    registered: bool = False
    """Whether the current definition is applied to the Feast registry."""
    last_materialized: str | None = None
    """End of the last successful materialization window (RFC 3339)."""
    freshness_lag: str | None = None
    """At the last materialization, how far its end was ahead of the newest event loaded (a duration such as 1h5m)."""
    rows: int | None = None
    """Rows the last materialization loaded into the online store."""
    drift: DriftStatus | None = None
    """Largest drift score over the features; absent until measured."""
    retrain: RetrainStatus | None = None
    """The runs drift has created (spec.retrain)."""


class FeatureView(Resource):
    """FeatureView registers a Feast feature view and keeps its online store materialized and its drift measured."""

    info: ClassVar[KindInfo] = KindInfo(
        kind="FeatureView", plural="featureviews", short_names=["fv"], requires="features",
        columns=[
            *ready_columns(),
            PrinterColumn(name="Freshness", json_path=".status.lastMaterialized", type="date",
                          description="Time since the end of the last materialization window"),
            drift_column(),
            PrinterColumn(name="Lag", json_path=".status.freshnessLag", priority=1,
                          description="Newest event loaded vs the end of the last materialization window"),
            age_column(),
        ],
    )

    kind: Literal["FeatureView"] = "FeatureView"
    spec: FeatureViewSpec
    status: FeatureViewStatus | None = None

    @property
    def feast_name(self) -> str:
        """The name Feast knows the view (and its FileSource) by: the object name with - and . as _."""
        return self.name.replace("-", "_").replace(".", "_")
