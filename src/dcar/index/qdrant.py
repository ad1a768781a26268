"""Qdrant behind the index's backend interface (add / search / save / describe, ids = insertion
order, scores = inner products): for catalogs that need updates, payload filters and replication.

The same code runs on Qdrant's embedded local mode (``path=DIR`` or ``":memory:"``, exact search,
what the tests use) and on a server or cluster (``url=...``). An API key is read from
``QDRANT_API_KEY`` and sent only to the URL it was given with; it is never written to disk.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from dcar.atomic import write_json_atomic
from dcar.errors import DcarError

UPSERT_BATCH = 512


def _qdrant():
    try:
        import qdrant_client
        from qdrant_client import models
    except ImportError:
        raise DcarError('qdrant-client is not installed: pip install "dcar[scale]"') from None
    return qdrant_client, models


def connect(url: str | None = None, path: str | Path | None = None):
    """A client for the server at ``url``, or Qdrant's local mode in folder ``path`` (":memory:"
    for none)."""
    qdrant_client, _ = _qdrant()
    if (url is None) == (path is None):
        raise DcarError("give a Qdrant --url or a local --path (not both)")
    try:
        if url is not None:
            return qdrant_client.QdrantClient(url=url, api_key=os.environ.get("QDRANT_API_KEY") or None)
        if str(path) == ":memory:":
            return qdrant_client.QdrantClient(location=":memory:")
        return qdrant_client.QdrantClient(path=str(path))
    except (RuntimeError, ValueError, OSError) as err:  # e.g. a local folder another process holds
        raise DcarError(f"cannot open Qdrant at {url or path}: {str(err).splitlines()[0]}") from None


class QdrantBackend:
    """A Qdrant collection of unit vectors under dot-product distance (= FAISS inner product)."""

    name = "qdrant"

    def __init__(self, client, collection: str, location: dict[str, str]):
        self.client, self.collection, self.location = client, collection, location

    @classmethod
    def open(cls, collection: str, dim: int | None = None, url: str | None = None, path: str | Path | None = None,
             recreate: bool = False) -> "QdrantBackend":
        """Open ``collection`` (created with ``dim`` when missing; emptied first with ``recreate``)."""
        _, models = _qdrant()
        client = connect(url, path)
        exists = client.collection_exists(collection)
        if exists and recreate:
            client.delete_collection(collection)
            exists = False
        if not exists:
            if dim is None:
                raise DcarError(f"Qdrant collection {collection!r} does not exist at {url or path}")
            client.create_collection(collection, vectors_config=models.VectorParams(size=dim, distance=models.Distance.DOT))
        location = {"url": url} if url is not None else {"path": str(path)}
        return cls(client, collection, location)

    @property
    def dim(self) -> int:
        return int(self.client.get_collection(self.collection).config.params.vectors.size)

    @property
    def ntotal(self) -> int:
        return int(self.client.count(self.collection, exact=True).count)

    def add(self, vectors: np.ndarray, payloads: list[dict[str, Any]] | None = None, first_id: int | None = None) -> None:
        """Append ``vectors`` with ids continuing from :attr:`ntotal` (or from ``first_id``: an
        upsert, so writing the same ids again replaces them: a rerun export is idempotent)."""
        _, models = _qdrant()
        first = self.ntotal if first_id is None else first_id
        for start in range(0, len(vectors), UPSERT_BATCH):
            stop = min(len(vectors), start + UPSERT_BATCH)
            batch = models.Batch(
                ids=list(range(first + start, first + stop)),
                vectors=np.asarray(vectors[start:stop], dtype=np.float32).tolist(),
                payloads=payloads[start:stop] if payloads is not None else None,
            )
            self.client.upsert(self.collection, points=batch, wait=True)

    def search(self, queries: np.ndarray, k: int, where: dict[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(scores [Q, k], ids [Q, k])`` best first, -1 ids where fewer than k match; ``where``
        keeps only points whose payload has these exact values (e.g. ``{"category": "rose"}``)."""
        _, models = _qdrant()
        flt = None
        if where:
            flt = models.Filter(must=[models.FieldCondition(key=key, match=models.MatchValue(value=value))
                                      for key, value in where.items()])
        requests = [models.QueryRequest(query=np.asarray(q, dtype=np.float32).tolist(), limit=k, filter=flt)
                    for q in np.atleast_2d(queries)]
        scores = np.full((len(requests), k), -np.inf, dtype=np.float32)
        ids = np.full((len(requests), k), -1, dtype=np.int64)
        for row, response in enumerate(self.client.query_batch_points(self.collection, requests=requests)):
            for col, point in enumerate(response.points[:k]):
                scores[row, col], ids[row, col] = point.score, int(point.id)
        return scores, ids

    def save(self, path: Path) -> None:
        """The data lives in Qdrant; the file says where (no credentials)."""
        write_json_atomic({"engine": "qdrant", "collection": self.collection, **self.location}, path)

    @classmethod
    def load(cls, path: Path, kind: str = "qdrant", params: dict | None = None) -> "QdrantBackend":
        """Reopen the collection a pointer file written by :meth:`save` names."""
        try:
            where = json.loads(Path(path).read_text(encoding="utf-8"))
            collection = where["collection"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
            raise DcarError(f"{path}: unreadable Qdrant pointer ({err})") from None
        return cls.open(collection, url=where.get("url"), path=where.get("path"))

    @classmethod
    def create(cls, vectors: np.ndarray, kind: str = "auto", exact_max: int = 0) -> "QdrantBackend":
        raise DcarError("a Qdrant collection is made from a built index: `dcar index export INDEX --to qdrant`")

    def tune(self, vectors: np.ndarray, target: float = 0.95, seed: int = 0) -> None:
        """Qdrant tunes its own HNSW (and searches exactly in local mode): nothing to set here."""
        return None

    def describe(self) -> dict:
        return {"name": self.name, "kind": "qdrant", "ntotal": self.ntotal,
                "params": {"collection": self.collection, **self.location}}

    def close(self) -> None:
        self.client.close()


def export_shards(backend: QdrantBackend, shards: Iterable[tuple[int, np.ndarray, list[dict[str, Any]]]],
                  progress=None) -> int:
    """Upsert ``(first item id, vectors, payloads)`` shards; a shard whose last id is already in the
    collection was exported before and is skipped (a rerun after a kill resumes). Returns the
    number of points written."""
    written = 0
    for first, vectors, payloads in shards:
        last = first + len(vectors) - 1
        if len(vectors) and not backend.client.retrieve(backend.collection, ids=[last]):
            backend.add(vectors, payloads, first_id=first)
            written += len(vectors)
        if progress is not None:
            progress(len(vectors))
    return written


def export_index(folder: Path, backend: QdrantBackend, progress=None) -> int:
    """Upsert an index folder's image vectors with their metadata as payload (item id = point id)."""
    import pyarrow.parquet as pq

    from dcar.index.store import SHARDS, read_info

    info = read_info(folder)

    def shards():
        first = 0
        for shard in info["shards"]:
            vectors = np.load(folder / SHARDS / f"images-{shard['id']:05d}.npy", mmap_mode="r", allow_pickle=False)
            meta = pq.read_table(str(folder / SHARDS / f"meta-{shard['id']:05d}.parquet"),
                                 columns=["key", "path", "category", "caption"]).to_pylist()
            yield first, vectors, meta
            first += len(vectors)

    if backend.dim != info["dim"]:
        raise DcarError(f"Qdrant collection {backend.collection!r} holds dimension {backend.dim}, the index {info['dim']}")
    return export_shards(backend, shards(), progress)


def use_for_search(folder: Path, backend: QdrantBackend) -> None:
    """Point the index's image search at ``backend`` (a pointer file replaces the FAISS index)."""
    from dcar.index.store import INDEX_FILE, _locked, read_info

    with _locked(folder):
        info = read_info(folder)
        if backend.ntotal != info["count"]:
            raise DcarError(f"Qdrant collection {backend.collection!r} holds {backend.ntotal} vectors, the index {info['count']}")
        name = "images-qdrant.json"
        backend.save(folder / name)
        info["backends"]["images"] = {**backend.describe(), "file": name}  # the FAISS file stays, unused
        write_json_atomic(info, folder / INDEX_FILE)
