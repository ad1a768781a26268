"""Vector search behind one small interface, so that another engine (a vector database) can slot in.

:class:`VectorBackend` is what :class:`~dcar.index.store.Index` needs: add vectors (their ids are
their insertion order), search by inner product, save, describe. :class:`FaissBackend` is the
default: exact ``IndexFlatIP`` up to ``exact_max`` vectors, where one query stays a few
milliseconds; beyond, an inverted file (IVF-Flat; IVF-PQ past ``PQ_ABOVE`` vectors) whose
``nprobe`` is raised until recall@10 against exact search reaches ``RECALL_TARGET`` on a sample of
the catalog's own vectors. HNSW is available by name. Vectors are L2-normalised, so inner product
is cosine similarity.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Protocol

import numpy as np

from dcar.atomic import atomic_path
from dcar.errors import DcarError

EXACT_MAX = 200_000  # flat search of one query over 200k x 512 floats is ~10 ms on one core
PQ_ABOVE = 5_000_000  # beyond this, full vectors in the IVF lists cost more memory than is sensible
RECALL_TARGET = 0.95
RECALL_QUERIES = 500
KINDS = ("auto", "flat", "ivf", "ivfpq", "hnsw")


class VectorBackend(Protocol):
    """A vector index: ids are insertion order, scores are inner products (higher is closer)."""

    name: str

    @property
    def ntotal(self) -> int: ...

    def add(self, vectors: np.ndarray) -> None: ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(scores [Q, k] float32, ids [Q, k] int64)``; ids of -1 where fewer than k exist."""

    def save(self, path: Path) -> None: ...

    def describe(self) -> dict: ...


def _faiss():
    try:
        import faiss
    except ImportError:
        raise DcarError('faiss is not installed: pip install "dcar[serve]"') from None
    return faiss


class FaissBackend:
    name = "faiss"

    def __init__(self, index, kind: str):
        self.index, self.kind = index, kind

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @classmethod
    def create(cls, vectors: np.ndarray, kind: str = "auto", exact_max: int = EXACT_MAX) -> "FaissBackend":
        """An index over ``vectors`` ([N, D] float32, unit rows); ``auto`` picks by size."""
        faiss = _faiss()
        n, dim = vectors.shape
        if kind not in KINDS:
            raise DcarError(f"unknown index kind {kind!r}; choose one of: {', '.join(KINDS)}")
        if kind == "auto":
            kind = "flat" if n <= exact_max else ("ivf" if n <= PQ_ABOVE else "ivfpq")
        if kind == "flat":
            index = faiss.IndexFlatIP(dim)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 80
        else:
            index = _trained_ivf(faiss, vectors, kind)
        backend = cls(index, kind)
        backend.add(vectors)
        return backend

    @classmethod
    def load(cls, path: Path, kind: str, params: dict) -> "FaissBackend":
        faiss = _faiss()
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as err:
            raise DcarError(f"{path}: unreadable FAISS index ({str(err).splitlines()[0]})") from None
        backend = cls(index, kind)
        backend.set_params(params)
        return backend

    def add(self, vectors: np.ndarray) -> None:
        if len(vectors):
            self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = max(1, min(k, self.ntotal)) if self.ntotal else 1
        scores, ids = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return scores, ids

    def save(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            _faiss().write_index(self.index, str(tmp))

    def params(self) -> dict:
        if self.kind in ("ivf", "ivfpq"):
            return {"nlist": int(self.index.nlist), "nprobe": int(self.index.nprobe)}
        if self.kind == "hnsw":
            return {"efSearch": int(self.index.hnsw.efSearch)}
        return {}

    def set_params(self, params: dict) -> None:
        if "nprobe" in params:
            self.index.nprobe = int(params["nprobe"])
        if "efSearch" in params:
            self.index.hnsw.efSearch = int(params["efSearch"])

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind, "ntotal": self.ntotal, "params": self.params()}

    def tune(self, vectors: np.ndarray, target: float = RECALL_TARGET, seed: int = 0) -> float | None:
        """Raise nprobe / efSearch until recall@10 against exact search reaches ``target``; returns
        the recall reached (None for an exact index).

        The queries are a sample of the indexed vectors with each one's own entry left out of
        both result lists, so they behave like new queries near the catalog rather than like
        look-ups of a stored point (which an approximate index finds all too easily).
        """
        if self.kind == "flat":
            return None
        rng = np.random.default_rng(seed)
        own = np.sort(rng.choice(len(vectors), size=min(RECALL_QUERIES, len(vectors)), replace=False))
        queries = np.ascontiguousarray(vectors[own], dtype=np.float32)
        truth = _without_own(exact_neighbours(vectors, queries, 11), own)
        knob, limit = ("nprobe", int(self.index.nlist)) if self.kind != "hnsw" else ("efSearch", 4096)
        value = 8 if self.kind != "hnsw" else 16
        while True:
            self.set_params({knob: min(value, limit)})
            recall = recall_at_k(_without_own(self.search(queries, 11)[1], own), truth)
            if recall >= target or value >= limit:
                return recall
            value *= 2


def _without_own(ids: np.ndarray, own: np.ndarray, k: int = 10) -> np.ndarray:
    """Each row's first ``k`` ids other than the query's own id."""
    return np.stack([row[row != o][:k] for row, o in zip(ids, own)])


# Backends by the name recorded in index.json; another engine (e.g. a vector database) is one
# class with create / load / add / search / save / describe and one entry here.
BACKENDS: dict[str, type] = {"faiss": FaissBackend}


def backend_class(name: str) -> type:
    if name == "qdrant":  # optional: qdrant-client is imported only by an index that uses it
        from dcar.index.qdrant import QdrantBackend

        return QdrantBackend
    try:
        return BACKENDS[name]
    except KeyError:
        raise DcarError(f"unknown vector backend {name!r}; known: {', '.join(BACKENDS)}") from None


def _trained_ivf(faiss, vectors: np.ndarray, kind: str):
    n, dim = vectors.shape
    nlist = int(min(65536, max(16, 2 ** round(math.log2(math.sqrt(n))))))
    quantizer = faiss.IndexFlatIP(dim)
    if kind == "ivfpq":
        m = next((m for m in (64, 32, 16, 8, 4, 2) if dim % m == 0 and m <= dim), 1)  # sub-quantizers
        index = faiss.IndexIVFPQ(quantizer, dim, nlist, m, 8, faiss.METRIC_INNER_PRODUCT)
    else:
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.max_points_per_centroid = 64  # k-means on a sample: 64 points per list are enough
    index.train(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def set_search_threads(n: int) -> None:
    """FAISS's OpenMP threads. A server answers one query per request and runs requests in
    parallel threads: one OpenMP thread each avoids thread hand-offs that cost far more than a
    single small search (measured here: 16 ms vs 0.2 ms for one query over 20k vectors on a busy
    2-core machine). Builds keep the default (all cores)."""
    _faiss().omp_set_num_threads(n)


def exact_neighbours(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Ids of the exact top-``k`` by inner product (FAISS flat search, no index kept)."""
    faiss = _faiss()
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return flat.search(queries, min(k, len(vectors)))[1]


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each query's exact top-k that the approximate search also returned."""
    k = truth.shape[1]
    hits = [len(set(f[:k].tolist()) & set(t.tolist())) for f, t in zip(found, truth)]
    return float(np.mean(hits) / k) if hits else 1.0
