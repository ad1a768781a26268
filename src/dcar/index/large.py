"""FAISS indexes past one machine's RAM: IVF-PQ sized to a memory budget, built in parts (one per
worker or per batch of shards) from the same trained empty index, merged into one on-disk index,
and searched memory-mapped.

The recipe is FAISS's own (``index_factory``, ``faiss.contrib.ondisk.merge_ondisk``), as in
autofaiss and clip-retrieval; dcar adds the sizing rule and the file layout:

  trained.faiss          the empty index after k-means / PQ training (shared by every part)
  part-NNNNN.faiss       the vectors of some shards, added with their global item ids
  merged.faiss           the index, its inverted lists in merged.ivfdata (read memory-mapped)

Memory of an IVF-PQ index over n vectors of dimension d with nlist lists and m one-byte codes:
n * (m + 8) bytes of lists (code + 64-bit id) + nlist * d * 4 bytes of centroids (+ the HNSW
graph over the centroids when nlist is large). :func:`plan_ivfpq` picks the largest m whose
index fits the budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from dcar.atomic import atomic_path
from dcar.errors import DcarError
from dcar.index.backend import _faiss

PQ_BYTES = (64, 48, 32, 24, 16, 12, 8, 4)  # bytes per vector, best recall first (at most dim / 2)
PQ_ITERATIONS = 10  # k-means iterations per sub-quantizer (FAISS: 25); training time is linear in it
PQ_POINTS_PER_CENTROID = 64  # PQ k-means sample: 64 x 256 rows per sub-quantizer (FAISS: 256 x 256)
HNSW_QUANTIZER_FROM = 4096  # lists: beyond this, assigning vectors to a flat quantizer dominates
TRAIN_POINTS_PER_LIST = 40  # k-means sample: FAISS warns below 39 points per centroid
MAX_TRAIN = 400_000


@dataclass(frozen=True)
class IvfPqPlan:
    """An IVF-PQ layout for n vectors of dimension dim, and what it will cost."""

    n: int
    dim: int
    nlist: int
    m: int  # PQ bytes per vector

    @property
    def factory(self) -> str:
        coarse = f"IVF{self.nlist}_HNSW32" if self.nlist >= HNSW_QUANTIZER_FROM else f"IVF{self.nlist}"
        return f"{coarse},PQ{self.m}np"  # np: no polysemous training (slow, and unused by search)

    @property
    def bytes(self) -> int:
        """Estimated index size in memory (or on disk): lists + centroids (+ their HNSW links)."""
        hnsw = self.nlist * 32 * 2 * 4 if self.nlist >= HNSW_QUANTIZER_FROM else 0
        return self.n * (self.m + 8) + self.nlist * self.dim * 4 + hnsw + 256 * self.dim * 4

    @property
    def train_size(self) -> int:
        return min(self.n, max(TRAIN_POINTS_PER_LIST * self.nlist, 10_000), MAX_TRAIN)


def default_nlist(n: int) -> int:
    """About 2 * sqrt(n) lists, a power of two (FAISS suggests 4-16 sqrt(n) for flat lists; with
    PQ codes a list is cheap to scan, and fewer lists keep k-means and assignment affordable)."""
    return int(min(65536, max(16, 2 ** round(math.log2(2 * math.sqrt(max(n, 1)))))))


def plan_ivfpq(n: int, dim: int, memory_budget: int, nlist: int | None = None) -> IvfPqPlan:
    """The IVF-PQ layout with the most PQ bytes per vector that fits ``memory_budget`` bytes."""
    nlist = nlist or default_nlist(n)
    for m in PQ_BYTES:
        if dim % m == 0 and 2 * m <= dim:
            plan = IvfPqPlan(n, dim, nlist, m)
            if plan.bytes <= memory_budget:
                return plan
    smallest = IvfPqPlan(n, dim, nlist, min((m for m in PQ_BYTES if dim % m == 0), default=1))
    raise DcarError(
        f"{n:,} vectors of dimension {dim} need at least {smallest.bytes / 2**30:.2f} GiB as IVF-PQ "
        f"(PQ{smallest.m}); the memory budget is {memory_budget / 2**30:.2f} GiB: raise it or shard the catalog"
    )


def train(plan: IvfPqPlan, sample: np.ndarray, seed: int = 0):
    """An empty IVF-PQ index trained on ``sample`` (unit float32 rows; inner product metric)."""
    faiss = _faiss()
    index = faiss.index_factory(plan.dim, plan.factory, faiss.METRIC_INNER_PRODUCT)
    ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
    ivf.cp.seed = ivf.pq.cp.seed = seed
    ivf.pq.cp.niter = PQ_ITERATIONS
    ivf.pq.cp.max_points_per_centroid = PQ_POINTS_PER_CENTROID
    ivf.cp.max_points_per_centroid = max(TRAIN_POINTS_PER_LIST, len(sample) // plan.nlist + 1)
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    return index


def sample_rows(chunks: Iterable[np.ndarray], total: int, size: int, seed: int = 0) -> np.ndarray:
    """A uniform sample of ``size`` rows from arrays streamed in order (never all in memory)."""
    rng = np.random.default_rng(seed)
    wanted = np.sort(rng.choice(total, size=min(size, total), replace=False))
    out, start = [], 0
    for chunk in chunks:
        lo, hi = np.searchsorted(wanted, [start, start + len(chunk)])
        if hi > lo:
            out.append(np.asarray(chunk[wanted[lo:hi] - start], dtype=np.float32))
        start += len(chunk)
    return np.concatenate(out)


def build_part(trained, chunks: Iterable[tuple[int, np.ndarray]], path: Path) -> int:
    """Add ``(first_id, vectors)`` chunks to a copy of the trained index and save it as one part."""
    faiss = _faiss()
    index = faiss.clone_index(trained)
    for first, vectors in chunks:
        ids = np.arange(first, first + len(vectors), dtype=np.int64)
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
    with atomic_path(path) as tmp:
        faiss.write_index(index, str(tmp))
    return int(index.ntotal)


def merge_parts(trained, parts: list[Path], out: Path) -> int:
    """Merge the parts' inverted lists into ``out`` (+ ``out.ivfdata`` beside it, on disk)."""
    faiss = _faiss()
    from faiss.contrib.ondisk import merge_ondisk

    index = faiss.clone_index(trained)
    data = out.with_suffix(".ivfdata")
    data.unlink(missing_ok=True)
    merge_ondisk(index, [str(p) for p in parts], str(data))
    with atomic_path(out) as tmp:
        faiss.write_index(index, str(tmp))
    return int(index.ntotal)


def open_mmap(path: Path, nprobe: int | None = None):
    """Open an index for search with its inverted lists memory-mapped, not read into RAM."""
    faiss = _faiss()
    # A merged index keeps its lists in OnDiskInvertedLists, which map their .ivfdata file by
    # themselves (adding IO_FLAG_MMAP there crashes FAISS); a plain file is mapped by the flag.
    flags = faiss.IO_FLAG_READ_ONLY if path.with_suffix(".ivfdata").exists() else faiss.IO_FLAG_MMAP
    try:
        index = faiss.read_index(str(path), flags)
    except RuntimeError as err:
        raise DcarError(f"{path}: unreadable FAISS index ({str(err).splitlines()[0]})") from None
    if nprobe is not None:
        faiss.extract_index_ivf(index).nprobe = nprobe
    return index


def shard_chunks(files: list[Path]) -> Iterator[tuple[int, np.ndarray]]:
    """``(first item id, vectors)`` of each .npy shard, memory-mapped, ids continuing across files."""
    first = 0
    for f in files:
        vectors = np.load(f, mmap_mode="r", allow_pickle=False)
        yield first, vectors
        first += len(vectors)


class ShardVectors:
    """The exact vectors of an index's .npy shards, memory-mapped: rows fetched by item id."""

    def __init__(self, files: list[Path]):
        self.arrays = [np.load(f, mmap_mode="r", allow_pickle=False) for f in files]
        self.starts = np.cumsum([0] + [len(a) for a in self.arrays])

    def __len__(self) -> int:
        return int(self.starts[-1])

    def rows(self, ids: np.ndarray) -> np.ndarray:
        shard = np.searchsorted(self.starts, ids, side="right") - 1
        out = np.empty((len(ids), self.arrays[0].shape[1]), dtype=np.float32)
        for s in np.unique(shard):
            mine = shard == s
            out[mine] = self.arrays[s][ids[mine] - self.starts[s]]
        return out


def search_refined(index, vectors: ShardVectors, queries: np.ndarray, k: int, factor: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """IVF-PQ candidates (``factor * k`` per query) re-scored with the exact vectors read from the
    memory-mapped shards: PQ's memory per vector in RAM, near-exact ranking, a few hundred row
    reads per query (from the page cache once warm)."""
    _, candidates = index.search(np.ascontiguousarray(queries, dtype=np.float32), k * factor)
    scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    ids = np.full((len(queries), k), -1, dtype=np.int64)
    for row, (q, cand) in enumerate(zip(queries, candidates)):
        cand = cand[cand >= 0]
        exact = vectors.rows(cand) @ q
        best = np.argsort(-exact, kind="stable")[:k]
        scores[row, : len(best)], ids[row, : len(best)] = exact[best], cand[best]
    return scores, ids
