"""Milvus (server or Milvus Lite) as a VectorIndex uses it: collections, index, rows, alias; pymilvus imported lazily.

Shared by the ingest runtime (builds collections), the operator (drops them on delete) and the
`llmops search` command. A Milvus Lite database is a file that one process at a time may open,
so every user opens it through `connect`, which always closes the client.
"""

from __future__ import annotations

import re
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from llmops_operator.core.uris import local_path

OWNER_PROPERTY = "llmops.owner"
"""Collection property naming the VectorIndex (namespace/name) that created the collection."""
CREATION_PROPERTY = "llmops.creation"
"""Collection property set once, by the create call that made it: a failed create drops only its own collection."""
PROPERTY_PREFIX = "llmops."
SOURCE_MAX_LENGTH = 1024
TEXT_MAX_LENGTH = 65535
ID_MAX_LENGTH = 64
LITE_GRPC_OPTIONS = {"grpc.keepalive_permit_without_calls": 0, "grpc.keepalive_time_ms": 300000}
QUERY_BATCH = 1000
"""Rows per page when reading a whole collection (Milvus caps one query at 16384)."""


class MilvusError(RuntimeError):
    """Milvus refused or could not do what the VectorIndex asks; the message says what and where."""


def is_lite(uri: str) -> bool:
    return not uri.startswith(("http://", "https://", "tcp://"))


def client_uri(uri: str, pvc_root: str | None = None) -> str:
    """What MilvusClient takes: a server URL as it is, a Milvus Lite database as a local path (parent created)."""
    if uri.startswith("tcp://"):
        return "http://" + uri.removeprefix("tcp://")
    if not is_lite(uri):
        return uri
    path = local_path(uri, pvc_root)
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(path)


def lite_path(uri: str, pvc_root: str | None = None) -> Path | None:
    """The database file of a Milvus Lite URI (None for a server)."""
    return local_path(uri, pvc_root) if is_lite(uri) else None


@contextmanager
def connect(uri: str, token: str | None = None, pvc_root: str | None = None) -> Iterator[Any]:
    """A MilvusClient for `uri`, closed on exit so the next process can open a Milvus Lite file."""
    from pymilvus import MilvusClient
    from pymilvus.exceptions import MilvusException

    target = client_uri(uri, pvc_root)
    # Milvus Lite serves gRPC in this process with the server's default ping policy; pymilvus's 10 s
    # keepalive pings on an idle channel (a long embedding batch) can earn a GOAWAY "too_many_pings".
    options = {"grpc_options": LITE_GRPC_OPTIONS} if is_lite(uri) else {}
    try:
        client = MilvusClient(uri=target, token=token or "", **options)
    except MilvusException as err:
        hint = (" (a Milvus Lite database can be open in one process at a time: is an ingest Job or search running?)"
                if is_lite(uri) else "")
        raise MilvusError(f"cannot open Milvus at {uri} ({target}): {err.message}{hint}") from None
    try:
        yield client
    finally:
        client.close()
        if is_lite(uri):
            release_lite(target)


def release_lite(path: str) -> None:
    """Stop this process's Milvus Lite server for `path`: closing the client alone keeps the file locked until exit."""
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(path)


LITE_INDEXES = ("FLAT", "BRUTE_FORCE", "AUTOINDEX")
LITE_FAISS_INDEXES = ("HNSW", "HNSW_SQ", "IVF_FLAT", "IVF_SQ8")
"""Index types Milvus Lite builds: these always, those with faiss-cpu installed (milvus_lite/index/factory.py).
Milvus Lite accepts any index_type at create time and fails only when it builds a segment's index, so the
ingest checks the type first."""


def check_lite_index(index_type: str) -> None:
    """Raise MilvusError when Milvus Lite (in this process's environment) cannot build `index_type`."""
    from milvus_lite.index.factory import is_faiss_available

    supported = LITE_INDEXES + (LITE_FAISS_INDEXES if is_faiss_available() else ())
    if index_type not in supported:
        hint = " (install faiss-cpu for HNSW and IVF_FLAT)" if index_type in LITE_FAISS_INDEXES else ""
        raise MilvusError(f"index.type {index_type}: Milvus Lite cannot build it{hint}; "
                          f"it builds {', '.join(supported)}")


def collection_schema(fields: dict[str, str], dimension: int, description: str) -> Any:
    from pymilvus import CollectionSchema, DataType, FieldSchema

    return CollectionSchema([
        FieldSchema(fields["primary"], DataType.VARCHAR, is_primary=True, max_length=ID_MAX_LENGTH),
        FieldSchema(fields["vector"], DataType.FLOAT_VECTOR, dim=dimension),
        FieldSchema(fields["text"], DataType.VARCHAR, max_length=TEXT_MAX_LENGTH),
        FieldSchema(fields["source"], DataType.VARCHAR, max_length=SOURCE_MAX_LENGTH),
    ], description=description)


def vector_dimension(client: Any, name: str, vector_field: str) -> int | None:
    for field in client.describe_collection(name)["fields"]:
        if field["name"] == vector_field:
            return int(field["params"]["dim"])
    return None


def owner_of(client: Any, name: str) -> str | None:
    """The VectorIndex (namespace/name) that created collection `name`; None for a collection llmops did not create."""
    return properties(client, name).get(OWNER_PROPERTY)


def _holder(owner: str | None) -> str:
    return f"VectorIndex {owner}" if owner else "something other than llmops (it has no llmops.owner property)"


def ensure_collection(client: Any, name: str, fields: dict[str, str], dimension: int, index: dict[str, Any],
                      properties: dict[str, str]) -> bool:
    """Create the collection with its index unless it exists (then check its owner and dimension); True when created.

    `properties` names the owner (OWNER_PROPERTY). An existing collection of another owner is never written to, and
    a create that fails drops the collection only when this very call created it."""
    from pymilvus.exceptions import MilvusException

    owner = properties[OWNER_PROPERTY]
    if name in client.list_aliases().get("aliases", []):
        raise MilvusError(f"collection {name}: an alias already has this name; it is never written to")
    if client.has_collection(name):
        if owner_of(client, name) != owner:
            raise MilvusError(f"collection {name} belongs to {_holder(owner_of(client, name))}, not VectorIndex "
                              f"{owner}: it is never written to or dropped; choose another milvus.collection")
        existing = vector_dimension(client, name, fields["vector"])
        if existing != dimension:
            raise MilvusError(f"collection {name} holds {existing}-dimensional vectors, not {dimension}: "
                              "drop it or change the VectorIndex so it builds a new collection")
        load(client, name)
        return False
    creation = uuid.uuid4().hex
    index_params = client.prepare_index_params()
    index_params.add_index(**index)
    try:
        client.create_collection(name, schema=collection_schema(fields, dimension, "llmops.dev VectorIndex"),
                                 index_params=index_params, properties={**properties, CREATION_PROPERTY: creation})
    except MilvusException as err:
        drop_if_created(client, name, creation)
        raise MilvusError(f"index.type {index['index_type']} with params {index.get('params') or {}} and metric "
                          f"{index['metric_type']}: this Milvus cannot build it: {err.message}") from None
    check_index(client, name, index, creation)
    return True


def drop_if_created(client: Any, name: str, creation: str) -> bool:
    """Drop `name` only when the create call that set `creation` made it (never a collection another caller made)."""
    if client.has_collection(name) and properties(client, name).get(CREATION_PROPERTY) == creation:
        client.drop_collection(name)
        return True
    return False


def index_state(client: Any, name: str, vector_field: str) -> dict[str, Any]:
    """index_type, state (Finished, InProgress, Failed) and indexedRows of the vector index."""
    described = client.describe_index(name, vector_field) or {}
    return {"type": described.get("index_type"), "state": described.get("state"),
            "indexedRows": described.get("indexed_rows")}


def check_index(client: Any, name: str, index: dict[str, Any], creation: str) -> None:
    built = (client.describe_index(name, index["field_name"]) or {}).get("index_type")
    if built != index["index_type"]:
        drop_if_created(client, name, creation)
        raise MilvusError(f"index.type {index['index_type']}: this Milvus built {built or 'no index'} instead; "
                          "choose an index type it supports (FLAT and AUTOINDEX work everywhere)")


def properties(client: Any, name: str) -> dict[str, str]:
    return {k: v for k, v in (client.describe_collection(name).get("properties") or {}).items()
            if k.startswith(PROPERTY_PREFIX)}


def set_properties(client: Any, name: str, values: dict[str, str]) -> None:
    client.alter_collection_properties(name, properties=values)


def all_ids(client: Any, name: str, id_field: str) -> set[str]:
    return {row[id_field] for row in iterate(client, name, [id_field])}


def iterate(client: Any, name: str, output_fields: list[str], limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Rows of the collection page by page (at most `limit`)."""
    iterator = client.query_iterator(name, batch_size=QUERY_BATCH, limit=limit if limit else -1, filter="",
                                     output_fields=output_fields)
    try:
        while page := iterator.next():
            yield from page
    finally:
        iterator.close()


def upsert(client: Any, name: str, rows: list[dict[str, Any]]) -> None:
    if rows:
        client.upsert(name, rows)


def delete_ids(client: Any, name: str, ids: list[str], batch: int = QUERY_BATCH) -> None:
    for start in range(0, len(ids), batch):
        client.delete(name, ids=ids[start:start + batch])


def row_count(client: Any, name: str) -> int:
    """Rows a query sees (get_collection_stats may still count deleted rows until compaction)."""
    rows = client.query(name, filter="", output_fields=["count(*)"])
    return int(rows[0]["count(*)"])


def served_collection(client: Any, alias: str) -> str | None:
    """The collection `alias` points at, or None (listing first: describing a missing alias logs an error)."""
    if alias not in client.list_aliases().get("aliases", []):
        return None
    return client.describe_alias(alias).get("collection_name") or None


def load(client: Any, name: str) -> None:
    """Load the collection into memory for queries (a reopened Milvus Lite database starts with it released)."""
    from pymilvus.client.types import LoadState

    if client.get_load_state(name).get("state") != LoadState.Loaded:
        client.load_collection(name)


def check_alias_owner(client: Any, alias: str, owner: str) -> str | None:
    """The collection `alias` serves when it is `owner`'s (None when the alias is free); MilvusError otherwise.

    An alias has no properties of its own: it belongs to whoever owns the collection it serves."""
    if alias in client.list_collections():  # has_collection() is also True for an alias
        raise MilvusError(f"milvus.collection {alias}: a collection (not an alias) already has this name; "
                          "choose another milvus.collection")
    served = served_collection(client, alias)
    if served is not None and owner_of(client, served) != owner:
        raise MilvusError(f"milvus.collection {alias}: the alias serves {served}, which belongs to "
                          f"{_holder(owner_of(client, served))}; it is never moved by VectorIndex {owner}: "
                          "choose another milvus.collection")
    return served


def point_alias(client: Any, alias: str, collection: str, owner: str) -> str | None:
    """Point `alias` at `collection` (create or alter) when both are `owner`'s; the collection it pointed at before."""
    previous = check_alias_owner(client, alias, owner)
    if owner_of(client, collection) != owner:
        raise MilvusError(f"collection {collection} belongs to {_holder(owner_of(client, collection))}; "
                          f"the alias {alias} is never pointed at it for VectorIndex {owner}")
    if previous == collection:
        return previous
    if previous is None:
        client.create_alias(collection, alias)
    else:
        client.alter_alias(collection, alias)
    return previous


def owned_collections(client: Any, alias: str, owner: str) -> list[str]:
    """Physical collections `<alias>_<hash>` created for `owner` (namespace/name)."""
    pattern = re.compile(rf"{re.escape(alias)}_[0-9a-f]{{8}}")
    return [name for name in client.list_collections()
            if pattern.fullmatch(name) and properties(client, name).get(OWNER_PROPERTY) == owner]


def drop_index(client: Any, alias: str, owner: str) -> list[str]:
    """Drop the alias (when it points at an owned collection) and every owned collection; the names dropped."""
    owned = owned_collections(client, alias, owner)
    dropped = []
    if served_collection(client, alias) in owned:
        client.drop_alias(alias)
        dropped.append(f"alias {alias}")
    for name in owned:
        client.drop_collection(name)
        dropped.append(name)
    return dropped


def search(client: Any, alias: str, vectors: list[list[float]], limit: int, fields: dict[str, str],
           params: dict[str, Any] | None = None) -> list[list[dict]]:
    """The `limit` nearest rows to each vector: [{id, distance, source, text}]; `params` are the index's search
    parameters (ef for HNSW)."""
    hits = client.search(alias, data=vectors, limit=limit, anns_field=fields["vector"],
                         output_fields=[fields["source"], fields["text"]],
                         search_params={"params": dict(params or {})})
    return [[{"id": h["id"], "distance": h["distance"], "source": h["entity"][fields["source"]],
              "text": h["entity"][fields["text"]]} for h in row] for row in hits]
