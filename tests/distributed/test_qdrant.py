"""Qdrant in local mode behind the backend interface: export, search, the same top-10 as FAISS exact."""

from __future__ import annotations

import numpy as np
import pytest

faiss = pytest.importorskip("faiss")
pytest.importorskip("qdrant_client")

from dcar.index.qdrant import QdrantBackend, export_shards  # noqa: E402
from dcar.errors import DcarError  # noqa: E402


def unit(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_local_qdrant_round_trip_matches_faiss_exact_top10(tmp_path):
    x, q = unit(3000, 32, 0), unit(50, 32, 1)
    categories = ["rose" if i % 3 == 0 else "tulip" for i in range(len(x))]
    shards = [(s, x[s : s + 1000], [{"category": c, "key": f"k{i}"} for i, c in enumerate(categories[s : s + 1000], s)])
              for s in range(0, 3000, 1000)]
    backend = QdrantBackend.open("catalog", dim=32, path=tmp_path / "qdrant")
    assert export_shards(backend, shards[:2]) == 2000
    assert export_shards(backend, shards) == 1000  # a rerun skips the shards already there
    assert backend.ntotal == 3000

    flat = faiss.IndexFlatIP(32)
    flat.add(x)
    f_scores, f_ids = flat.search(q, 10)
    scores, ids = backend.search(q, 10)
    assert np.array_equal(ids, f_ids)
    assert np.allclose(scores, f_scores, atol=1e-5)

    rose, rose_ids = backend.search(q, 10, where={"category": "rose"})  # a payload filter
    assert (rose_ids % 3 == 0).all()

    backend.save(tmp_path / "images.qdrant.json")
    assert "api" not in (tmp_path / "images.qdrant.json").read_text().lower()
    backend.close()
    again = QdrantBackend.load(tmp_path / "images.qdrant.json")  # the pointer file reopens it
    assert again.describe()["ntotal"] == 3000 and np.array_equal(again.search(q[:3], 10)[1], f_ids[:3])
    again.close()


def test_a_missing_collection_or_no_location_is_one_line(tmp_path):
    with pytest.raises(DcarError, match="does not exist"):
        QdrantBackend.open("nothing", path=tmp_path / "q")
    with pytest.raises(DcarError, match="--url or a local --path"):
        QdrantBackend.open("x", dim=4)
