"""Training texts from a Feast feature service: point-in-time correct rows turned into text for a causal LM.

The run config's dataset.featureService carries the FeatureView's Feast repository files under
`repository` (builders/feast.reader_files: the feature_store.yaml its Jobs mount and the Feast
objects of featureview.json). The reader opens that store, joins the service's features onto the entities file with
`get_historical_features` (each entity row gets the newest values at or before its
event_timestamp, within the view's TTL), and renders every row as one training text:

- with dataset.textField: that column's text;
- otherwise the service's features as "name: value" pairs in the service's order.

With a label, " => <label>: <value>" ends the text, so the model learns to predict it. Missing
feature values are left out; a row with no text, or with a label but no label value, is dropped.
Rendering is pure; Feast and pandas are imported only where they are used.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping


FIELD = "dataset.featureService"
EVENT_TIMESTAMP = "event_timestamp"
LABEL_SEPARATOR = " => "
PAIR_SEPARATOR = ", "


class FeatureRowsError(ValueError):
    """The feature service, the entities file or a named column does not fit the spec; names the field."""


@dataclass(frozen=True)
class Rendering:
    """How a row becomes a text: one column as it is, or the feature columns as pairs; then the label."""

    features: tuple[str, ...]
    text_column: str | None = None
    label: str | None = None


def missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, NaT and pandas.NA are not equal to themselves
    except (TypeError, ValueError):
        return False


def format_value(value: Any) -> str:
    """A value as a short, stable string: floats with 6 significant digits, numpy scalars as Python ones."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "inf" if math.isinf(value) else f"{value:.6g}"
    return str(value).strip()


def row_text(row: Mapping[str, Any], rendering: Rendering) -> str:
    """One row's training text, or "" when it carries nothing to learn from."""
    if rendering.text_column:
        value = row.get(rendering.text_column)
        body = "" if missing(value) else format_value(value)
    else:
        body = PAIR_SEPARATOR.join(f"{name}: {format_value(row[name])}" for name in rendering.features
                                   if not missing(row.get(name)))
    if not body or rendering.label is None:
        return body
    answer = row.get(rendering.label)
    return "" if missing(answer) else f"{body}{LABEL_SEPARATOR}{rendering.label}: {format_value(answer)}"


def row_texts(rows: Iterable[Mapping[str, Any]], rendering: Rendering) -> list[str]:
    """The texts of the rows, in order, without the empty ones."""
    return [text for text in (row_text(row, rendering) for row in rows) if text]


def rendering_for(columns: Iterable[str], features: Iterable[str], text_field: str | None,
                  label: str | None) -> Rendering:
    """Check the spec's column names against the joined rows' columns; the label is never a feature pair."""
    columns = list(columns)
    for spec_field, name in (("dataset.textField", text_field), (f"{FIELD}.label", label)):
        if name is not None and name not in columns:
            raise FeatureRowsError(f"{spec_field}: no column {name!r} in the feature service rows "
                                   f"(they have {', '.join(columns)})")
    return Rendering(features=tuple(f for f in features if f != label), text_column=text_field, label=label)


def check_entities(columns: Iterable[str], join_keys: Iterable[str], uri: str) -> None:
    columns = set(columns)
    absent = [c for c in (*join_keys, EVENT_TIMESTAMP) if c not in columns]
    if absent:
        raise FeatureRowsError(f"{FIELD}.entitiesUri: {uri} has no column {', '.join(absent)} "
                               f"(it needs the join keys and {EVENT_TIMESTAMP}; it has {', '.join(sorted(columns))})")


def read_entities(uri: str) -> Any:
    """The entities Parquet file (or a directory of them) as a DataFrame, event_timestamp as UTC times."""
    import pandas as pd

    from llmops_operator.entrypoints.dataset_files import parquet_tables

    try:
        tables = parquet_tables(uri)
    except FileNotFoundError as err:
        raise FeatureRowsError(f"{FIELD}.entitiesUri: {err}") from err
    frame = pd.concat([t.to_pandas() for t in tables], ignore_index=True)
    if EVENT_TIMESTAMP in frame.columns:
        frame[EVENT_TIMESTAMP] = pd.to_datetime(frame[EVENT_TIMESTAMP], utc=True)
    return frame


def open_definition(repository: Mapping[str, str], pvc_root: str | None = None) -> Any:
    """The FeatureView's repository files (as its Jobs mount them) -> feast_repo.Definition."""
    from llmops_operator.builders.feast import DEFINITION_KEY
    from llmops_operator.entrypoints.feast_repo import load_definition

    with tempfile.TemporaryDirectory(prefix="llmops-feast-") as where:
        for name, text in repository.items():
            (Path(where) / name).write_text(text)
        return load_definition(Path(where) / DEFINITION_KEY, pvc_root)


def feature_service(store: Any, name: str) -> Any:
    from feast.errors import FeatureServiceNotFoundException

    try:
        return store.get_feature_service(name)
    except FeatureServiceNotFoundException:
        known = sorted(s.name for s in store.list_feature_services())
        raise FeatureRowsError(f"{FIELD}.service: no feature service {name!r} in Feast project "
                               f"{store.project} (it has: {', '.join(known) or 'none'})") from None


def service_features(service: Any) -> list[str]:
    """The service's feature columns as get_historical_features names them (no view prefix), in order."""
    return [f.name for projection in service.feature_view_projections for f in projection.features]


def historical_rows(block: Mapping[str, Any], pvc_root: str | None = None) -> tuple[Any, list[str]]:
    """(the point-in-time joined rows as a DataFrame, the service's feature columns)."""
    import yaml
    from feast import FeatureStore

    definition = open_definition(block["repository"], pvc_root)
    entities = read_entities(block["entitiesUri"])
    check_entities(entities.columns, definition.join_keys, block["entitiesUri"])
    # A private repository directory: every Ray worker reads at once, and feast_repo.write_repo would have them
    # rewrite the shared one under each other's feet (the registry and stores are absolute paths anyway).
    with tempfile.TemporaryDirectory(prefix="llmops-feast-repo-") as repo:
        (Path(repo) / "feature_store.yaml").write_text(yaml.safe_dump(definition.repo_config, sort_keys=False))
        store = FeatureStore(repo_path=repo)
        service = feature_service(store, block["service"])
        frame = store.get_historical_features(entity_df=entities, features=service).to_df()
    return frame.sort_values([EVENT_TIMESTAMP, *definition.join_keys], kind="stable"), service_features(service)


def feature_service_texts(dataset: Mapping[str, Any], pvc_root: str | None = None) -> list[str]:
    """The training texts of a dataset with featureService (the run config's camelCase dict)."""
    block = dataset["featureService"]
    frame, features = historical_rows(block, pvc_root)
    rendering = rendering_for(frame.columns, features, dataset.get("textField"), block.get("label"))
    texts = row_texts(frame.to_dict("records"), rendering)
    if not texts:
        raise FeatureRowsError(f"{FIELD}: service {block['service']!r} gave no non-empty row for the "
                               f"{len(frame)} entities in {block['entitiesUri']}")
    return texts
