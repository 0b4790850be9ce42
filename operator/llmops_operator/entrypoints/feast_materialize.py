"""The materialize Job of a FeatureView: `python -m llmops_operator.entrypoints.feast_materialize --config <file>`.

1. waits until the registry holds the current definition of the view (the apply Job may still run);
2. refreshes the Parquet copy of a CSV source;
3. materializes into the online store up to now: the first run from now - lookback
   (FeatureStore.materialize), later runs from where the last one ended (materialize_incremental);
4. measures what was loaded from the source rows of the window, read through Feast's offline
   store: rows = entities whose latest values were written, freshness lag = end of the window -
   newest event time at or before it;
5. drift: the first materialization stores the reference (the source rows of the drift reference
   window, binned: scoring/drift.py) next to the registry; every run scores the newest window
   against it and keeps the scores beside it;
6. reads a few of the window's entities back with get_online_features and fails when none is served;
7. reports lastMaterialized, rows, freshnessLag and the drift block (status/featureview.py reads
   them) plus the per-feature scores and the online check into the progress ConfigMap.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

from llmops_operator.api.v1alpha1.units import parse_duration
from llmops_operator.entrypoints import feast_repo
from llmops_operator.entrypoints.feast_repo import Definition, FeastRepoError
from llmops_operator.entrypoints.report import Reporter, finish
from llmops_operator.scoring import drift

REGISTRY_WAIT_SECONDS = 600.0
"""How long to wait for the apply Job to register the current definition."""
REGISTRY_POLL_SECONDS = 2.0
REFERENCE_SAMPLE = 100_000
"""Most source rows the drift reference is fitted on (a seeded random sample beyond that)."""
ONLINE_CHECK_ENTITIES = 5
NUMERIC_TYPES = ("Float32", "Float64", "Int32", "Int64")


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    first: bool


def current_definition(view: Any, definition: Definition) -> bool:
    """Whether the registered view is the one the definition describes (not an older apply)."""
    spec = definition.view
    return ([f.name for f in view.features] == [f["name"] for f in spec["schema"]]
            and sorted(view.entities) == sorted(spec["entities"])
            and int(view.ttl.total_seconds() if view.ttl else 0) == spec["ttl_seconds"]
            and view.batch_source.name == spec["source"]
            and (view.tags or {}) == (spec.get("tags") or {}))


def wait_for_view(store: Any, definition: Definition, timeout: float = REGISTRY_WAIT_SECONDS) -> Any:
    from feast.errors import FeatureViewNotFoundException

    deadline = time.monotonic() + timeout
    while True:
        store.refresh_registry()
        try:
            view = store.get_feature_view(definition.name)
            if current_definition(view, definition):
                return view
        except FeatureViewNotFoundException:
            pass
        if time.monotonic() >= deadline:
            raise FeastRepoError(f"feature view {definition.name}: the registry does not hold the current definition "
                                 f"after {timeout:.0f}s (has the apply Job failed?)")
        time.sleep(REGISTRY_POLL_SECONDS)


def plan_window(view: Any, now: datetime, lookback_seconds: float) -> Window:
    """From the end of the last materialization (or now - lookback the first time) to now."""
    intervals = getattr(view, "materialization_intervals", None) or []
    if intervals:
        last = max(end for _, end in intervals)
        return Window(last if last.tzinfo else last.replace(tzinfo=timezone.utc), now, False)
    return Window(now - timedelta(seconds=lookback_seconds), now, True)


def materialize(store: Any, definition: Definition, window: Window) -> None:
    names = [definition.name]
    if window.first:
        store.materialize(start_date=window.start, end_date=window.end, feature_views=names)
    else:
        store.materialize_incremental(end_date=window.end, feature_views=names)


def source_rows(store: Any, view: Any, definition: Definition, start: datetime | None, end: datetime) -> Any:
    """The view's source rows with start <= event time <= end, through Feast's offline store, as pandas."""
    source = view.batch_source
    job = store.provider.offline_store.pull_all_from_table_or_query(
        config=store.config, data_source=source, join_key_columns=definition.join_keys,
        feature_name_columns=[f["name"] for f in definition.features], timestamp_field=source.timestamp_field,
        created_timestamp_column=source.created_timestamp_column or None, start_date=start, end_date=end)
    frame = job.to_df()
    column = frame[source.timestamp_field]
    times = column.dt.tz_localize("UTC") if column.dt.tz is None else column.dt.tz_convert("UTC")
    frame[source.timestamp_field] = times
    keep = times <= end if start is None else (times >= start) & (times <= end)
    return frame[keep]


def freshness(frame: Any, timestamp_field: str, end: datetime) -> str | None:
    if frame.empty:
        return None
    return feast_repo.go_duration((end - frame[timestamp_field].max().to_pydatetime()).total_seconds())


def _split(definition: Definition) -> tuple[list[str], list[str]]:
    numeric = [f["name"] for f in definition.features if f["dtype"] in NUMERIC_TYPES]
    categorical = [f["name"] for f in definition.features if f["dtype"] not in NUMERIC_TYPES]
    return numeric, categorical


def fit_reference(frame: Any, definition: Definition, window: tuple[datetime, datetime]) -> dict[str, Any]:
    """The stored drift reference: binned numeric and categorical features of a sample of `frame`."""
    if len(frame) > REFERENCE_SAMPLE:
        frame = frame.sample(REFERENCE_SAMPLE, random_state=0)
    numeric, categorical = _split(definition)
    reference: dict[str, Any] = {"createdAt": feast_repo.rfc3339(window[1]), "rows": len(frame),
                                 "window": [feast_repo.rfc3339(window[0]), feast_repo.rfc3339(window[1])]}
    if numeric:
        values = frame[numeric].to_numpy(dtype=np.float64, na_value=np.nan)
        reference["numeric"] = drift.numeric_to_json(drift.fit_numeric(values, numeric))
    if categorical:
        columns = {n: frame[n].tolist() for n in categorical}
        reference["categorical"] = drift.categorical_to_json(drift.fit_categorical(columns))
    return reference


def score_window(reference: dict[str, Any], frame: Any, method: str) -> dict[str, float]:
    """Per-feature scores of `frame` against the stored reference."""
    scores: dict[str, float] = {}
    if "numeric" in reference:
        fitted = drift.numeric_from_json(reference["numeric"])
        values = frame[list(fitted.names)].to_numpy(dtype=np.float64, na_value=np.nan)
        scores.update(drift.numeric_drift(fitted, values, method))
    if "categorical" in reference:
        fitted_cats = drift.categorical_from_json(reference["categorical"])
        scores.update(drift.categorical_drift(fitted_cats, {n: frame[n].tolist() for n in fitted_cats.names}, method))
    return scores


def _reference_names(reference: dict[str, Any]) -> set[str]:
    return {n for block in ("numeric", "categorical") for n in reference.get(block, {}).get("names", [])}


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, value: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(value, sort_keys=True))
    temporary.replace(path)


def measure_drift(store: Any, view: Any, definition: Definition, window: Window, current: Any) -> dict[str, Any]:
    """The drift report of this run: {"drift": status block, "driftScores": {...}}, or {} when not measured."""
    settings = definition.raw.get("drift")
    if not settings:
        return {}
    method, threshold = settings.get("method", "psi"), float(settings.get("threshold", 0.2))
    reference_path, latest_path = definition.drift_path("reference"), definition.drift_path("latest")
    reference = _read_json(reference_path)
    if reference is None or _reference_names(reference) != {f["name"] for f in definition.features}:
        since = window.end - timedelta(seconds=parse_duration(settings.get("referenceWindow", "168h")))
        rows = source_rows(store, view, definition, since, window.end)
        if rows.empty:
            return {}
        reference = fit_reference(rows, definition, (since, window.end))
        _write_json(reference_path, reference)
    if current.empty:  # nothing new since the last run: its scores still hold
        return _read_json(latest_path) or {}
    scores = score_window(reference, current, method)
    length = feast_repo.go_duration((window.end - window.start).total_seconds())
    block = drift.drift_status(scores, method, threshold, length, feast_repo.rfc3339(window.end))
    result = {"drift": block, "driftScores": {n: round(s, 6) for n, s in scores.items()}}
    _write_json(latest_path, result)
    return result


def online_check(store: Any, definition: Definition, current: Any) -> dict[str, int]:
    """Read up to ONLINE_CHECK_ENTITIES entities of the window back from the online store."""
    keys = definition.join_keys
    sample = current.drop_duplicates(subset=keys).head(ONLINE_CHECK_ENTITIES)
    if sample.empty:
        return {"checked": 0, "served": 0}
    rows = [{k: v.item() if hasattr(v, "item") else v for k, v in row.items()}  # numpy scalars -> Python
            for row in sample[keys].to_dict("records")]
    refs = [f"{definition.name}:{f['name']}" for f in definition.features]
    served = store.get_online_features(features=refs, entity_rows=rows).to_dict()
    names = [f["name"] for f in definition.features]
    count = sum(all(served[n][i] is not None for n in names) for i in range(len(rows)))
    if count == 0:
        raise FeastRepoError(f"online store: none of {len(rows)} entities loaded into {definition.name} is served "
                             f"(checked {rows[:2]}...)")
    return {"checked": len(rows), "served": count}


def run(definition: Definition, reporter: Reporter, now: datetime | None = None) -> dict[str, Any]:
    """One materialization; the final report (also sent through `reporter`)."""
    feast_repo.resume_report(reporter)
    reporter.update("progress", {"stage": "WaitingForRegistry"})
    store = feast_repo.open_store(definition)
    view = wait_for_view(store, definition)
    feast_repo.convert_csv(definition)
    window = plan_window(view, now or datetime.now(timezone.utc), definition.raw["materialize"]["lookback_seconds"])
    reporter.update("progress", {"stage": "Materializing", "start": feast_repo.rfc3339(window.start)}, force=True)
    materialize(store, definition, window)
    current = source_rows(store, view, definition, window.start, window.end)
    timestamp = view.batch_source.timestamp_field
    newest = current if not current.empty else source_rows(store, view, definition, None, window.end)
    final: dict[str, Any] = {
        "lastMaterialized": feast_repo.rfc3339(window.end),
        "rows": int(current.drop_duplicates(subset=definition.join_keys).shape[0]),
        "materialization": {"start": feast_repo.rfc3339(window.start), "end": feast_repo.rfc3339(window.end),
                            "first": window.first, "sourceRows": int(len(current))},
        "online": online_check(store, definition, current),
        **measure_drift(store, view, definition, window, current),
    }
    lag = freshness(newest, timestamp, window.end)
    if lag:
        final["freshnessLag"] = lag
    reporter.update("progress", {"stage": "Done"})
    reporter.state.update(final)
    reporter.flush()
    return final


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llmops-feast-materialize", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the featureview.json the operator wrote")
    args = parser.parse_args(argv)
    try:
        definition = feast_repo.load_definition(Path(args.config))
    except FeastRepoError as err:
        print(f"llmops feast-materialize: {err}", file=sys.stderr)
        return 2
    reporter = Reporter(definition.raw.get("report"))
    return finish("llmops feast-materialize", lambda: run(definition, reporter), reporter, (FeastRepoError,))


if __name__ == "__main__":
    sys.exit(main())
