"""`dcar index export --to qdrant` (local mode): the collection holds the index's vectors and
metadata, and with --use the index searches through Qdrant with the same top-10 as FAISS exact."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from cli_helpers import run_cli
from dcar.index import Index

pytest.importorskip("qdrant_client")


def test_export_to_local_qdrant_then_search_there(built_index, tmp_path, capsys):
    index = tmp_path / "idx"
    shutil.copytree(built_index, index)
    before = Index.open(index)
    queries = np.stack([before.vector(i) for i in range(len(before))])
    f_scores, f_ids = before.search(queries, 10)
    assert before.backends["images"].describe()["kind"] == "flat"  # the reference: FAISS exact
    del before

    store = tmp_path / "qdrant"
    code, _, err = run_cli(["index", "export", str(index), "--to", "qdrant", "--path", str(store), "--collection", "cat"], capsys)
    assert code == 0, err
    assert "exported 16 vectors" in err
    code, _, err = run_cli(["index", "export", str(index), "--to", "qdrant", "--path", str(store), "--collection", "cat", "--use"], capsys)
    assert code == 0, err
    assert "exported 0 vectors" in err and "(16 in it)" in err  # a rerun skips the finished shards
    info = json.loads((index / "index.json").read_text())
    assert info["backends"]["images"]["name"] == "qdrant"

    after = Index.open(index)
    q_scores, q_ids = after.search(queries, 10)
    assert np.array_equal(q_ids, f_ids)
    assert np.allclose(q_scores, f_scores, atol=1e-5)
    hit = after.hits(queries[:1], 1)[0][0]
    assert hit["id"] == 0 and hit["path"].endswith(".png")  # metadata still comes from the index's Parquet
    after.backends["images"].close()

    from dcar.index.qdrant import QdrantBackend  # the payload carries the metadata for filtered search

    backend = QdrantBackend.open("cat", path=store)
    category = backend.client.retrieve("cat", ids=[0])[0].payload["category"]
    _, ids = backend.search(queries[:4], 10, where={"category": category})
    assert all(after.item(int(i))["category"] == category for i in ids.ravel() if i >= 0)
    backend.close()


def test_export_refuses_a_wrong_target_in_one_line(built_index, capsys):
    code, _, err = run_cli(["index", "export", str(built_index), "--to", "milvus", "--path", ":memory:"], capsys)
    assert code == 2 and "only qdrant" in err
