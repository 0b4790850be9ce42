"""The Feast repository of a FeatureView inside its Jobs: config files -> RepoConfig, Feast objects, source rows.

builders/feast.py writes two files into the Jobs' ConfigMap: feature_store.yaml (Feast's own
repository config, with paths as the pod sees them under /mnt/pvc) and featureview.json (the
objects in Feast's names plus the runtimes' settings). This module turns them into a Feast
repository directory on the Feast claim and into Feast objects. Feast is imported only where it
is used (it takes seconds to import), so the pure helpers stay cheap.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml

from llmops_operator.core.uris import DEFAULT_PVC_ROOT, is_remote, local_path

FEASTIGNORE = "# The operator applies objects through the SDK; nothing here is a feature definition.\n*.py\n"
REPO_DIR = "repo"
SOURCES_DIR = "sources"
DRIFT_DIR = "drift"
FEAST_TYPES = ("Float32", "Float64", "Int32", "Int64", "String", "Bool")


class FeastRepoError(ValueError):
    """The definition cannot be turned into Feast objects (bad file, missing source, unknown type)."""


@dataclass(frozen=True)
class Definition:
    """featureview.json with the paths resolved for this machine."""

    raw: dict[str, Any]
    repo_config: dict[str, Any]
    store_dir: Path

    @property
    def view(self) -> dict[str, Any]:
        return self.raw["feature_view"]

    @property
    def name(self) -> str:
        return self.view["name"]

    @property
    def features(self) -> list[dict[str, str]]:
        return self.view["schema"]

    @property
    def join_keys(self) -> list[str]:
        return [k for entity in self.raw["entities"] for k in entity["join_keys"]]

    @property
    def owner(self) -> str:
        obj = self.raw.get("object") or {}
        return f"{obj.get('namespace')}/{obj.get('name')}"

    @property
    def file_source(self) -> dict[str, Any] | None:
        return self.raw["data_source"].get("file_source")

    @property
    def repo_dir(self) -> Path:
        return self.store_dir / REPO_DIR

    def drift_path(self, suffix: str) -> Path:
        return self.store_dir / DRIFT_DIR / f"{self.name}.{suffix}.json"


def pod_path(path: str, pvc_root: str | None = None) -> Path:
    """A path as the pod sees it (/mnt/pvc/<claim>/...) -> where the claim is mounted here (LLMOPS_PVC_ROOT)."""
    prefix = DEFAULT_PVC_ROOT.rstrip("/") + "/"
    if path.startswith(prefix):
        return local_path("pvc://" + path.removeprefix(prefix), pvc_root)
    return Path(path)


def resolve_repo_config(config: dict[str, Any], pvc_root: str | None = None) -> dict[str, Any]:
    """feature_store.yaml with the registry and online store paths moved to where the claim is mounted."""
    resolved = json.loads(json.dumps(config))
    for block in ("registry", "online_store"):
        section = resolved.get(block)
        if isinstance(section, dict) and isinstance(section.get("path"), str) and "://" not in section["path"]:
            section["path"] = str(pod_path(section["path"], pvc_root))
    return resolved


def load_definition(config_path: Path, pvc_root: str | None = None) -> Definition:
    """featureview.json and the feature_store.yaml beside it (its name is the definition's repoConfig)."""
    try:
        raw = json.loads(config_path.read_text())
        repo_file = config_path.parent / raw.get("repoConfig", "feature_store.yaml")
        repo_config = yaml.safe_load(repo_file.read_text())
    except (OSError, ValueError, yaml.YAMLError) as err:
        raise FeastRepoError(f"cannot read the Feast definition {config_path}: {err}") from err
    for key in ("entities", "data_source", "feature_view"):
        if key not in raw:
            raise FeastRepoError(f"{config_path}: no {key!r} in the definition")
    if not isinstance(repo_config, dict) or "registry" not in repo_config:
        raise FeastRepoError(f"{repo_file}: not a Feast repository config (no registry)")
    resolved = resolve_repo_config(repo_config, pvc_root)
    registry = resolved["registry"]
    registry_path = registry["path"] if isinstance(registry, dict) else registry
    return Definition(raw, resolved, Path(registry_path).parent)


def write_repo(definition: Definition) -> Path:
    """The repository directory: feature_store.yaml (resolved paths) and a .feastignore."""
    repo = definition.repo_dir
    repo.mkdir(parents=True, exist_ok=True)
    (repo / "feature_store.yaml").write_text(yaml.safe_dump(definition.repo_config, sort_keys=False))
    (repo / ".feastignore").write_text(FEASTIGNORE)
    return repo


def open_store(definition: Definition) -> Any:
    from feast import FeatureStore

    return FeatureStore(repo_path=str(write_repo(definition)))


def source_path(definition: Definition) -> str:
    """Where the FileSource reads: the file itself, or for CSV the Parquet copy next to the registry."""
    source = definition.file_source
    if source.get("convert_from") == "csv":
        return str(definition.store_dir / SOURCES_DIR / f"{source['name']}.parquet")
    return source["path"] if is_remote(source["path"]) else str(local_path(source["path"]))


def convert_csv(definition: Definition) -> Path | None:
    """Write the Parquet copy of a CSV source when it is missing or older than the CSV; its path."""
    source = definition.file_source
    if not source or source.get("convert_from") != "csv":
        return None
    import pandas as pd

    csv, parquet = local_path(source["path"]), Path(source_path(definition))
    if not csv.is_file():
        raise FeastRepoError(f"source.file.path: {source['path']} is not a file ({csv})")
    if parquet.is_file() and parquet.stat().st_mtime >= csv.stat().st_mtime:
        return parquet
    try:
        frame = pd.read_csv(csv)
    except (ValueError, pd.errors.ParserError) as err:
        raise FeastRepoError(f"source.file.path: {source['path']}: not readable as CSV: {err}") from err
    frame = typed_columns(frame, definition)
    parquet.parent.mkdir(parents=True, exist_ok=True)
    temporary = parquet.with_suffix(".parquet.tmp")
    frame.to_parquet(temporary, index=False)
    temporary.replace(parquet)  # a materialize Job reading beside us never sees half a file
    return parquet


def typed_columns(frame: Any, definition: Definition) -> Any:
    """Timestamps as UTC datetimes and features in their Feast types, each column checked by name."""
    import pandas as pd

    source = definition.file_source
    required = [source["timestamp_field"], *definition.join_keys, *(f["name"] for f in definition.features)]
    if source.get("created_timestamp_column"):
        required.append(source["created_timestamp_column"])
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise FeastRepoError(f"source.file.path: {source['path']} has no column {', '.join(missing)} "
                             f"(it has {', '.join(map(str, frame.columns))})")
    for column in (source["timestamp_field"], source.get("created_timestamp_column")):
        if column:
            try:
                frame[column] = pd.to_datetime(frame[column], utc=True)
            except (ValueError, TypeError) as err:
                raise FeastRepoError(f"source.file.path: column {column} holds a value that is not a time: "
                                     f"{err}") from err
    numpy_types = {"Float32": "float32", "Float64": "float64", "Int32": "int32", "Int64": "int64", "Bool": "bool"}
    for feature in definition.features:
        if feature["dtype"] in numpy_types:
            try:
                frame[feature["name"]] = frame[feature["name"]].astype(numpy_types[feature["dtype"]])
            except (ValueError, TypeError) as err:
                raise FeastRepoError(f"features[{feature['name']}]: column does not hold {feature['dtype']}: "
                                     f"{err}") from err
    return frame


def feast_objects(definition: Definition, store: Any) -> tuple[list[Any], Any, Any]:
    """(entities, the data source when this view owns it else None, the feature view)."""
    from feast import Entity, FeatureView, Field, FileSource, ValueType
    from feast import types as feast_types
    from feast.data_format import ParquetFormat

    entities = [Entity(name=e["name"], join_keys=e["join_keys"], value_type=ValueType[e["value_type"]],
                       tags=e.get("tags") or {}) for e in definition.raw["entities"]]
    file = definition.file_source
    if file:
        source = FileSource(name=file["name"], path=source_path(definition), file_format=ParquetFormat(),
                            timestamp_field=file["timestamp_field"],
                            created_timestamp_column=file.get("created_timestamp_column") or "")
        owned = source
    else:
        source, owned = referenced_source(definition, store), None
    view = definition.view
    for feature in view["schema"]:
        if feature["dtype"] not in FEAST_TYPES:
            raise FeastRepoError(f"features[{feature['name']}]: unknown dtype {feature['dtype']!r}")
    feature_view = FeatureView(
        name=view["name"], entities=entities, ttl=timedelta(seconds=view["ttl_seconds"]), online=view["online"],
        source=source, tags=view.get("tags") or {},
        schema=[Field(name=f["name"], dtype=getattr(feast_types, f["dtype"])) for f in view["schema"]],
    )
    return entities, owned, feature_view


def referenced_source(definition: Definition, store: Any) -> Any:
    from feast.errors import DataSourceObjectNotFoundException

    name = definition.raw["data_source"]["reference"]
    try:
        return store.get_data_source(name)
    except DataSourceObjectNotFoundException as err:
        raise FeastRepoError(f"source.dataSource.name: no data source {name!r} in Feast project "
                             f"{definition.repo_config['project']}") from err


def resume_report(reporter: Any) -> None:
    """Start from what the progress ConfigMap already says (apply and materialize Jobs share it).

    Each flush replaces the whole report, so without this an apply Job would wipe the last
    materialization's rows, freshness and drift from status until the next run. Best effort.
    """
    target = reporter.target
    if target is None:
        return
    from llmops_operator.entrypoints.report import CONFIGMAP

    try:
        current = reporter.client().get(CONFIGMAP, target["namespace"], target["configMap"])
        previous = json.loads(((current or {}).get("data") or {}).get(target["key"]) or "{}")
    except Exception as err:  # noqa: BLE001 - reporting is best effort by design (entrypoints/report.py)
        print(f"llmops: cannot read the previous report, starting afresh: {err}", file=sys.stderr, flush=True)
        return
    if isinstance(previous, dict):
        reporter.state.update({k: v for k, v in previous.items() if k != "progress"})


def go_duration(seconds: float) -> str:
    """A non-negative number of seconds as a Go-style duration: 0s, 45s, 5m, 1h5m, 50h0m3s -> 50h3s."""
    total = max(0, int(math.floor(seconds)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    text = "".join(f"{value}{unit}" for value, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if value)
    return text or "0s"


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
