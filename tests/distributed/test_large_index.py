"""IVF-PQ under a memory budget, built in parts, merged on disk and searched memory-mapped."""

from __future__ import annotations

import numpy as np
import pytest

faiss = pytest.importorskip("faiss")

from dcar.index import large as li  # noqa: E402
from dcar.errors import DcarError  # noqa: E402


def clustered(n: int, dim: int, seed: int = 0, centres: int = 200) -> np.ndarray:
    """Unit vectors around random centres: catalog-like structure (uniform noise has none)."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, dim)).astype(np.float32)
    x = c[rng.integers(0, centres, n)] + 0.35 * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    return flat.search(queries, k)[1]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def test_the_plan_takes_the_most_pq_bytes_that_fit_and_refuses_an_impossible_budget():
    n, dim = 10_000_000, 128
    roomy = li.plan_ivfpq(n, dim, 2 * 2**30)
    assert roomy.m == 64 and roomy.bytes <= 2 * 2**30 and roomy.factory == "IVF8192_HNSW32,PQ64np"
    tight = li.plan_ivfpq(n, dim, 300 * 2**20)
    assert tight.m == 16 and tight.bytes <= 300 * 2**20 < li.IvfPqPlan(n, dim, tight.nlist, 24).bytes
    with pytest.raises(DcarError, match="memory budget"):
        li.plan_ivfpq(n, dim, 50 * 2**20)


def test_parts_merged_on_disk_search_like_one_index_and_keep_recall(tmp_path):
    n, dim = 50_000, 32
    x = clustered(n, dim)
    shards = []
    for s, start in enumerate(range(0, n, 10_000)):  # five embedding shards, as an index folder has
        shards.append(tmp_path / f"images-{s:05d}.npy")
        np.save(shards[-1], x[start : start + 10_000])
    plan = li.plan_ivfpq(n, dim, 2 * 2**20)
    assert plan.m == 16 and plan.bytes <= 2 * 2**20
    sample = li.sample_rows((c for _, c in li.shard_chunks(shards)), n, plan.train_size)
    assert sample.shape == (plan.train_size, dim)
    trained = li.train(plan, sample)

    chunks = list(li.shard_chunks(shards))
    parts = [tmp_path / "part-00000.faiss", tmp_path / "part-00001.faiss"]  # two workers' parts
    assert li.build_part(trained, chunks[:2], parts[0]) + li.build_part(trained, chunks[2:], parts[1]) == n
    assert li.merge_parts(trained, parts, tmp_path / "merged.faiss") == n
    merged = li.open_mmap(tmp_path / "merged.faiss", nprobe=16)

    whole = faiss.clone_index(trained)  # the same trained index, every vector added in one process
    whole.add_with_ids(x, np.arange(n, dtype=np.int64))
    faiss.extract_index_ivf(whole).nprobe = 16
    queries = clustered(200, dim, seed=1)
    d_merged, i_merged = merged.search(queries, 10)
    d_whole, i_whole = whole.search(queries, 10)
    assert np.array_equal(i_merged, i_whole) and np.allclose(d_merged, d_whole)
    part = li.open_mmap(parts[1], nprobe=16)  # a plain index file, its lists mapped by FAISS
    assert part.ntotal == 30_000 and set(np.unique(part.search(queries, 10)[1])) <= set(range(20_000, n)) | {-1}
    r = recall(i_merged, exact_top(x, queries, 10))
    print(f"IVF-PQ {plan.factory} on 50k x {dim}: recall@10 {r:.3f} at nprobe 16")
    assert r >= 0.5  # 16 bytes per vector: approximate, but far from chance (10 / 50,000)
