"""The apply Job of a FeatureView: `python -m llmops_operator.entrypoints.feast_apply --config featureview.json`.

1. writes the Feast repository (feature_store.yaml with this machine's paths, a .feastignore)
   into <project dir>/repo on the Feast claim;
2. converts a CSV source to Parquet next to the registry (Feast's FileSource reads Parquet);
3. applies the entities, the FileSource (when the view owns it) and the feature view with
   FeatureStore.apply, which also creates the view's online store table;
4. reads the view back from the registry and reports what is registered.

With `--delete` it removes what this object registered instead: the feature view (and its online
table), its own FileSource and the entities it tagged that no other view uses, then its Parquet
copy and drift files. Objects another FeatureView or another tool owns are left alone. The
operator's finalizer runs this mode (see `removal_command`).
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from llmops_operator.entrypoints import feast_repo
from llmops_operator.entrypoints.feast_repo import Definition, FeastRepoError
from llmops_operator.entrypoints.report import Reporter, finish

MODULE = "llmops_operator.entrypoints.feast_apply"
OWNER_TAG = "llmops.dev/featureview"


def registered_objects(store: Any, definition: Definition) -> dict[str, Any]:
    """What the registry holds for this view, read back after apply."""
    view = store.get_feature_view(definition.name)
    return {"project": store.project, "featureView": view.name, "featureService": view.name,
            "entities": list(view.entities),
            "dataSource": view.batch_source.name, "features": [f.name for f in view.features],
            "ttlSeconds": int(view.ttl.total_seconds()) if view.ttl else 0, "online": view.online}


def apply(definition: Definition, reporter: Reporter) -> dict[str, Any]:
    """Register the definition; the final report (also sent through `reporter`)."""
    feast_repo.resume_report(reporter)
    reporter.update("progress", {"stage": "Applying"})
    converted = feast_repo.convert_csv(definition)
    store = feast_repo.open_store(definition)
    entities, source, view = feast_repo.feast_objects(definition, store)
    store.apply([*entities, *([source] if source else []), view, own_service(view)])
    final = {"registry": {**registered_objects(store, definition),
                          "appliedAt": feast_repo.rfc3339(datetime.now(timezone.utc))}}
    if converted:
        final["registry"]["parquet"] = str(converted)
    reporter.update("progress", {"stage": "Applied"})
    reporter.state.update(final)
    reporter.flush()
    return final


def own_service(view: Any) -> Any:
    """The feature service every view registers under its own name, holding all its features: what a
    TrainingJob's dataset.featureService.service names to train on the view."""
    from feast import FeatureService

    return FeatureService(name=view.name, features=[view], tags=dict(view.tags or {}))


def _owned_by(obj: Any, owner: str) -> bool:
    return (getattr(obj, "tags", None) or {}).get(OWNER_TAG) == owner


def removable(store: Any, definition: Definition) -> list[Any]:
    """The registry objects of this FeatureView that can go: its view, own source, entities no one else uses."""
    from feast.errors import FeatureViewNotFoundException

    owner, project = definition.owner, store.project
    try:
        view = store.get_feature_view(definition.name)
    except FeatureViewNotFoundException:
        return []
    if not _owned_by(view, owner):
        raise FeastRepoError(f"feature view {definition.name} in project {project} is tagged "
                             f"{OWNER_TAG}={(view.tags or {}).get(OWNER_TAG)!r}, not {owner}: left in place")
    others = [v for v in store.list_feature_views() if v.name != view.name]
    used_entities = {e for v in others for e in v.entities}
    used_sources = {v.batch_source.name for v in others}
    doomed: list[Any] = [view, *_own_service_of(store, view.name, owner)]
    own_source = definition.file_source
    if own_source and view.batch_source.name == own_source["name"] and own_source["name"] not in used_sources:
        doomed.append(view.batch_source)
    for name in view.entities:
        entity = store.get_entity(name)
        if name not in used_entities and _owned_by(entity, owner):
            doomed.append(entity)
    return doomed


def _own_service_of(store: Any, name: str, owner: str) -> list[Any]:
    from feast.errors import FeatureServiceNotFoundException

    try:
        service = store.get_feature_service(name)
    except FeatureServiceNotFoundException:
        return []
    return [service] if _owned_by(service, owner) else []


def local_files(definition: Definition) -> list[Path]:
    """Files this runtime wrote for the view besides the registry: Parquet copy, drift reference and last scores."""
    files = [definition.drift_path("reference"), definition.drift_path("latest")]
    if definition.file_source and definition.file_source.get("convert_from") == "csv":
        files.append(Path(feast_repo.source_path(definition)))
    return files


def remove(definition: Definition) -> dict[str, Any]:
    """Take this FeatureView out of the Feast registry and online store; what was removed."""
    registry = Path(definition.repo_config["registry"]["path"])
    removed: list[str] = []
    if registry.is_file():
        store = feast_repo.open_store(definition)
        doomed = removable(store, definition)
        if doomed:
            store.apply([], objects_to_delete=doomed, partial=False)
        removed = [f"{type(obj).__name__} {obj.name}" for obj in doomed]
    for path in local_files(definition):
        if path.is_file():
            path.unlink()
            removed.append(f"file {path}")
    return {"removed": removed, "project": definition.repo_config.get("project")}


def removal_command(config_path: str, python: str = sys.executable) -> list[str]:
    """The command line that removes the FeatureView whose definition is at `config_path`."""
    return [python, "-m", MODULE, "--config", config_path, "--delete"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llmops-feast-apply", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the featureview.json the operator wrote")
    parser.add_argument("--delete", action="store_true", help="remove this view from the registry instead")
    args = parser.parse_args(argv)
    try:
        definition = feast_repo.load_definition(Path(args.config))
    except FeastRepoError as err:
        print(f"llmops feast-apply: {err}", file=sys.stderr)
        return 2
    reporter = Reporter(None if args.delete else definition.raw.get("report"))
    work = (lambda: remove(definition)) if args.delete else (lambda: apply(definition, reporter))
    return finish("llmops feast-apply", work, reporter, (FeastRepoError,))


if __name__ == "__main__":
    sys.exit(main())
