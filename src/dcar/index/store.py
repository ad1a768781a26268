"""An index folder: embedding shards, Parquet metadata, vector indexes, and the model that made them.

INDEX_DIR/
  index.json                  format, dcar version, model (spec, weights digest, method, run,
                              fingerprint), dim, count, shards, backends, recall@10, skipped count
  shards/images-NNNNN.npy     float32 [rows, dim] image features of shard N (unit rows)
  shards/texts-NNNNN.npy      float32 [texts, dim] caption features of the shard's captioned rows
  shards/meta-NNNNN.parquet   key, path, category, caption, width, height, has_text per row
  shards/done-NNNNN.json      written last: the shard is complete (rows, texts, skipped images)
  images-G.faiss, texts-G.faiss   vector indexes of generation G (named in index.json)
  skipped.tsv                 unreadable catalog images: path, reason
  job.json                    only while a build or add is unfinished: what it is embedding

Item ids are row numbers over the shards in order. ``index.json`` is the commit point, written
atomically after everything it names: a killed build or add leaves the last committed index
readable and resumes at its first unfinished shard; finished shards are never embedded again.
``dcar index add`` writes new shards and adds their vectors to the existing vector index; old
shards are not touched.
"""

from __future__ import annotations

import bisect
import datetime
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

import dcar
from dcar.atomic import atomic_path, write_json_atomic, write_text_atomic
from dcar.errors import DcarError
from dcar.evaluation.cache import fingerprint, save_npy_atomic
from dcar.index.backend import EXACT_MAX, VectorBackend, backend_class
from dcar.index.catalog import CatalogItem

INDEX_FILE = "index.json"
JOB_FILE = "job.json"
SHARDS = "shards"
FORMAT = 1
SHARD_SIZE = 1024
META_COLUMNS = ("key", "path", "category", "caption", "width", "height", "has_text")
SPACES = ("images", "texts")


@dataclass
class JobReport:
    """What one build or add did: the numbers the CLI prints."""

    items: int  # catalog items given
    added: int  # rows now in the index from this job
    texts: int
    skipped: list[tuple[str, str]]  # (path, reason) of unreadable images
    shards_reused: int  # finished shards found on disk (a resumed job)
    shards_embedded: int
    already_indexed: int = 0  # add: items whose image was in the index already
    recall_at_10: dict | None = None


class Index:
    """A built index, opened for search. ``Index.build`` / ``Index.add`` write one."""

    def __init__(self, folder: Path, info: dict, table, backends: dict[str, VectorBackend]):
        self.folder, self.info, self.table, self.backends = folder, info, table, backends
        has_text = np.asarray(table.column("has_text").to_numpy(zero_copy_only=False), dtype=bool)
        self.text_items = np.flatnonzero(has_text)  # text row -> item id
        rows = [s["rows"] for s in info["shards"]]
        self._starts = np.concatenate([[0], np.cumsum(rows)]).astype(np.int64).tolist()
        self._vectors: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return int(self.info["count"])

    @property
    def dim(self) -> int:
        return int(self.info["dim"])

    @property
    def model(self) -> dict:
        return self.info["model"]

    # ------------------------------------------------------------------ reading
    @classmethod
    def open(cls, folder: str | Path) -> "Index":
        import pyarrow as pa

        folder = Path(folder)
        info = read_info(folder)
        parts = [_read_meta(folder, s["id"]) for s in info["shards"]]
        table = pa.concat_tables(parts) if parts else _empty_meta()
        if table.num_rows != info["count"]:
            raise DcarError(f"{folder}: metadata holds {table.num_rows} rows, index.json says {info['count']}")
        backends = {}
        for space, desc in info["backends"].items():
            backend = backend_class(desc.get("name", "faiss")).load(folder / desc["file"], desc["kind"], desc.get("params", {}))
            expected = info["count"] if space == "images" else info["texts"]
            if backend.ntotal != expected:
                raise DcarError(f"{folder / desc['file']}: holds {backend.ntotal} vectors, index.json says {expected}")
            backends[space] = backend
        return cls(folder, info, table, backends)

    def item(self, item_id: int) -> dict:
        """The metadata of one item (``KeyError`` for an id outside the index)."""
        if not 0 <= int(item_id) < len(self):
            raise KeyError(item_id)
        row = self.table.slice(int(item_id), 1).to_pylist()[0]
        return {"id": int(item_id), **row}

    def vector(self, item_id: int) -> np.ndarray:
        """The stored image feature of an item (shards are memory-mapped, read on demand)."""
        if not 0 <= int(item_id) < len(self):
            raise KeyError(item_id)
        s = bisect.bisect_right(self._starts, int(item_id)) - 1
        if s not in self._vectors:
            shard = self.info["shards"][s]["id"]
            self._vectors[s] = np.load(self.folder / SHARDS / f"images-{shard:05d}.npy", mmap_mode="r", allow_pickle=False)
        return np.array(self._vectors[s][int(item_id) - self._starts[s]], dtype=np.float32)

    def search(self, vectors: np.ndarray, k: int = 10, space: str = "images") -> tuple[np.ndarray, np.ndarray]:
        """Nearest items to each query row: ``(scores [Q, k'], item ids [Q, k'])``, best first.

        ``space="images"`` compares with the catalog images, ``"texts"`` with their captions
        (ids are still item ids). ``k'`` is ``k`` capped by what the space holds.
        """
        if space not in SPACES:
            raise DcarError(f"unknown search space {space!r}; choose images or texts")
        backend = self.backends.get(space)
        queries = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if queries.shape[1] != self.dim:
            raise DcarError(f"query vectors have dimension {queries.shape[1]}, the index {self.dim}")
        if backend is None or backend.ntotal == 0:
            empty = np.zeros((len(queries), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        scores, ids = backend.search(queries, k)
        if space == "texts":
            ids = np.where(ids >= 0, self.text_items[np.maximum(ids, 0)], -1)
        return scores, ids

    def hits(self, vectors: np.ndarray, k: int = 10, space: str = "images") -> list[list[dict]]:
        """:meth:`search` with each hit's metadata and score."""
        scores, ids = self.search(vectors, k, space)
        return [
            [{**self.item(int(i)), "score": float(s)} for s, i in zip(srow, irow) if i >= 0]
            for srow, irow in zip(scores, ids)
        ]

    def load_encoder(self, device: str | None = None):
        """The encoder that built this index (queries must be encoded by the same model)."""
        from dcar.api import load

        model = self.model
        encoder = load(model["run"] or model["spec"], device=device)
        if encoder.fingerprint() != model["fingerprint"]:
            raise DcarError(
                f"{self.folder}: built with {model['run'] or model['spec']} (weights {model['weights']}), "
                f"which now loads weights {encoder.weights}; rebuild the index"
            )
        return encoder

    # ------------------------------------------------------------------ writing
    @classmethod
    def build(cls, folder: str | Path, encoder, items: list[CatalogItem], kind: str = "auto",
              exact_max: int = EXACT_MAX, shard_size: int = SHARD_SIZE, batch_size: int = 64,
              workers: int | None = None, progress: bool = True, backend: str = "faiss", ray=None) -> JobReport:
        """Embed ``items`` with ``encoder`` (a :class:`dcar.api.Encoder`) into a new index; with
        ``ray`` (:class:`dcar.distributed.ray_embed.RayOptions`) the images are embedded on Ray."""
        folder = Path(folder)
        with _locked(folder):
            if (folder / INDEX_FILE).exists():
                raise DcarError(f"{folder}: already holds an index; add to it with `dcar index add` or choose another --out")
            job = _Job(folder, "build", encoder, items, first_shard=0, shard_size=shard_size)
            results = job.run(batch_size, workers, progress, ray)
            images, texts = _stack(results, "images", encoder.dim), _stack(results, "texts", encoder.dim)
            backends, recall = {}, {}
            for space, vectors in (("images", images), ("texts", texts)):
                if len(vectors):
                    backends[space] = backend_class(backend).create(vectors, kind, exact_max)
                    recall[space] = backends[space].tune(vectors)
            info = {
                "format": FORMAT,
                "dcar_version": dcar.__version__,
                "created": _now(),
                "model": encoder.describe(),
                "dim": encoder.dim,
                "count": 0,
                "texts": 0,
                "shards": [],
                "generation": 0,
                "backends": {},
                "recall_at_10": {},
                "skipped": 0,
            }
            report = job.report(results)
            report.recall_at_10 = recall
            _commit(folder, info, job, results, backends, recall)
        return report

    @classmethod
    def add(cls, folder: str | Path, items: list[CatalogItem], encoder=None, batch_size: int = 64,
            workers: int | None = None, progress: bool = True, device: str | None = None, ray=None) -> JobReport:
        """Append ``items`` (those not indexed yet) to an index; old shards stay as they are."""
        folder = Path(folder)
        with _locked(folder):
            index = cls.open(folder)
            encoder = encoder or index.load_encoder(device)
            if encoder.fingerprint() != index.model["fingerprint"]:
                raise DcarError(f"{folder}: built with another model ({index.model['run'] or index.model['spec']}); rebuild it")
            known = set(index.table.column("path").to_pylist())
            new = [it for it in items if it.path not in known]
            first = max((s["id"] for s in index.info["shards"]), default=-1) + 1
            job = _Job(folder, "add", encoder, new, first_shard=first, shard_size=index.info.get("shard_size", SHARD_SIZE))
            results = job.run(batch_size, workers, progress, ray)
            backends = dict(index.backends)
            for space in SPACES:
                vectors = _stack(results, space, index.dim)
                if space not in backends and len(vectors):
                    name = index.info["backends"]["images"].get("name", "faiss")
                    backends[space] = backend_class(name).create(vectors)  # the first captions: kind by size
                elif len(vectors):
                    backends[space].add(vectors)
            report = job.report(results)
            report.already_indexed = len(items) - len(new)
            _commit(folder, index.info, job, results, backends, index.info.get("recall_at_10", {}))
        return report


# ---------------------------------------------------------------------- the embedding job
class _Job:
    """Embeds items shard by shard; each finished shard is on disk, so a rerun skips it."""

    def __init__(self, folder: Path, kind: str, encoder, items: list[CatalogItem], first_shard: int, shard_size: int):
        self.folder, self.kind, self.encoder, self.items = folder, kind, encoder, items
        self.first, self.shard_size = first_shard, shard_size
        self.reused = 0
        key = fingerprint(encoder.fingerprint(), kind, first_shard, shard_size,
                          items=(f"{it.path}\t{it.category}\t{it.caption}" for it in items))
        self._claim(key)

    def _claim(self, key: str) -> None:
        """Resume the job recorded in job.json when it is this one; otherwise discard its shards."""
        path = self.folder / JOB_FILE
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            previous = None
        if previous is None or previous.get("key") != key:
            start = previous.get("first_shard", self.first) if previous else self.first
            for f in (self.folder / SHARDS).glob("*-*.*") if (self.folder / SHARDS).is_dir() else ():
                if _shard_number(f) >= min(start, self.first):
                    f.unlink()
        write_json_atomic({"kind": self.kind, "key": key, "first_shard": self.first, "items": len(self.items),
                           "shard_size": self.shard_size}, path)

    def run(self, batch_size: int, workers: int | None, progress: bool, ray=None) -> list[dict]:
        from tqdm.auto import tqdm

        from dcar.evaluation.embed import blockwise

        bar = tqdm(total=len(self.items), unit="image", desc=f"index {self.kind}", disable=not progress)

        def compute(start: int, stop: int) -> dict[str, np.ndarray]:
            return self._embed(start, stop, batch_size, workers, bar.update)

        def on_cached(n: int) -> None:
            self.reused += 1
            bar.update(min(n, bar.total - bar.n))

        try:
            cache = _ShardCache(self)
            on_ray = self._embed_on_ray(ray, cache, batch_size, workers, bar.update) if ray is not None else 0
            results = blockwise(len(self.items), self.shard_size, compute, cache, on_cached=on_cached)
            self.reused -= on_ray  # shards Ray just wrote were read back from the cache
            return results
        finally:
            bar.close()

    def _embed_on_ray(self, ray, cache: "_ShardCache", batch_size: int, workers: int | None, advance: Callable) -> int:
        """Embed every unfinished shard in one Ray job, writing each shard as it completes."""
        from dcar.distributed.ray_embed import embed_blocks_ray

        blocks = [(s, min(len(self.items), s + self.shard_size)) for s in range(0, len(self.items), self.shard_size)]
        missing = [b for b in range(len(blocks)) if not cache.finished(b)]
        paths = [it.path for it in self.items]
        for j, got in embed_blocks_ray(ray.make_encoder, self.encoder.retrieval, paths, [blocks[b] for b in missing],
                                       batch_size, ray.actors, ray.gpus_per_actor, workers, advance):
            start, stop = blocks[missing[j]]
            cache.put(missing[j], **self._shard(start, stop, got))
        return len(missing)

    def _embed(self, start: int, stop: int, batch_size: int, workers: int | None, advance: Callable) -> dict:
        from dcar.evaluation.embed import embed_images

        batch = self.items[start:stop]
        got = embed_images(self.encoder.retrieval, [it.path for it in batch], batch_size, workers, progress=advance)
        return self._shard(start, stop, got)

    def _shard(self, start: int, stop: int, got) -> dict:
        """A shard's arrays from its images' embeddings (``got``); captions are encoded here."""
        from dcar.evaluation.embed import embed_texts

        batch = self.items[start:stop]
        ok = np.flatnonzero(got.ok)
        captions = [batch[i].caption for i in ok]
        texts = [c for c in captions if c]
        dim = self.encoder.dim
        return {
            "images": got.features if len(ok) else np.zeros((0, dim), np.float32),
            "texts": embed_texts(self.encoder.retrieval, texts, progress=False) if texts else np.zeros((0, dim), np.float32),
            "item": ok + start,
            "skipped": np.array([f"{path}\t{why}" for _, path, why in got.skipped], dtype=str),
        }

    def report(self, results: list[dict]) -> JobReport:
        skipped = [tuple(str(s).split("\t", 1)) for r in results for s in r["skipped"]]
        return JobReport(
            items=len(self.items),
            added=sum(len(r["images"]) for r in results),
            texts=sum(len(r["texts"]) for r in results),
            skipped=skipped,
            shards_reused=self.reused,
            shards_embedded=len(results) - self.reused,
        )


class _ShardCache:
    """``blockwise``'s cache over the index's own shard files (block b is shard first + b)."""

    def __init__(self, job: _Job):
        self.job = job
        self.dir = job.folder / SHARDS
        self.dir.mkdir(parents=True, exist_ok=True)

    def _file(self, what: str, b: int, ext: str) -> Path:
        return self.dir / f"{what}-{self.job.first + b:05d}.{ext}"

    def finished(self, b: int) -> bool:
        return self._file("done", b, "json").is_file() and self.get(b) is not None

    def get(self, b: int) -> dict | None:
        done = self._file("done", b, "json")
        if not done.is_file():
            return None
        try:
            marker = json.loads(done.read_text(encoding="utf-8"))
            images = np.load(self._file("images", b, "npy"), allow_pickle=False)
            texts = np.load(self._file("texts", b, "npy"), allow_pickle=False)
        except (OSError, ValueError):  # damaged leftovers are embedded again, not trusted
            done.unlink(missing_ok=True)
            return None
        if len(images) != marker["rows"] or len(texts) != marker["texts"]:
            done.unlink(missing_ok=True)
            return None
        return {"images": images, "texts": texts, "skipped": np.array(marker["skipped"], dtype=str)}

    def put(self, b: int, images: np.ndarray, texts: np.ndarray, item: np.ndarray, skipped: np.ndarray) -> None:
        save_npy_atomic(images, self._file("images", b, "npy"))
        save_npy_atomic(texts, self._file("texts", b, "npy"))
        _write_meta([self.job.items[i] for i in item], self._file("meta", b, "parquet"))
        marker = {"rows": len(images), "texts": len(texts), "skipped": [str(s) for s in skipped]}
        write_json_atomic(marker, self._file("done", b, "json"))  # last: the shard is complete


def _write_meta(items: list[CatalogItem], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sizes = [image_size(it.path) for it in items]
    table = pa.table({
        "key": pa.array([it.key for it in items], pa.string()),
        "path": pa.array([it.path for it in items], pa.string()),
        "category": pa.array([it.category for it in items], pa.string()),
        "caption": pa.array([it.caption for it in items], pa.string()),
        "width": pa.array([w for w, _ in sizes], pa.int32()),
        "height": pa.array([h for _, h in sizes], pa.int32()),
        "has_text": pa.array([bool(it.caption) for it in items], pa.bool_()),
    })
    with atomic_path(path) as tmp:
        pq.write_table(table, str(tmp))


def _read_meta(folder: Path, shard: int):
    import pyarrow.parquet as pq

    path = folder / SHARDS / f"meta-{shard:05d}.parquet"
    try:
        return pq.read_table(str(path), columns=list(META_COLUMNS))
    except (OSError, ValueError) as err:
        raise DcarError(f"{path}: unreadable shard metadata ({err})") from None


def _empty_meta():
    import pyarrow as pa

    types = {"width": pa.int32(), "height": pa.int32(), "has_text": pa.bool_()}
    return pa.table({c: pa.array([], types.get(c, pa.string())) for c in META_COLUMNS})


def image_size(path: str) -> tuple[int, int]:
    """Width and height as displayed (EXIF rotation applied), read from the header only."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            w, h = im.size
            if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # rotated by 90 degrees
                w, h = h, w
            return int(w), int(h)
    except Exception:  # noqa: BLE001 - the image decoded once already; a header oddity is not fatal
        return 0, 0


# ---------------------------------------------------------------------- commit
def _commit(folder: Path, info: dict, job: _Job, results: list[dict], backends: dict, recall: dict) -> None:
    """Write the vector indexes of a new generation, then index.json (the commit), then clean up."""
    info = dict(info)
    generation = int(info.get("generation", 0)) + 1
    old_files = [d["file"] for d in info.get("backends", {}).values()]
    info["backends"] = {}
    for space, backend in backends.items():
        name = f"{space}-{generation}.faiss"
        backend.save(folder / name)
        info["backends"][space] = {**backend.describe(), "file": name}
    shards = list(info["shards"])
    for b, r in enumerate(results):
        shards.append({"id": job.first + b, "rows": len(r["images"]), "texts": len(r["texts"])})
    skipped = [str(s) for r in results for s in r["skipped"]]
    info.update(
        shards=shards,
        count=sum(s["rows"] for s in shards),
        texts=sum(s["texts"] for s in shards),
        generation=generation,
        shard_size=job.shard_size,
        recall_at_10=recall,
        skipped=int(info.get("skipped", 0)) + len(skipped),
        updated=_now(),
    )
    previous = (folder / "skipped.tsv").read_text(encoding="utf-8") if (folder / "skipped.tsv").exists() else "path\treason\n"
    write_text_atomic(previous + "".join(s + "\n" for s in skipped), folder / "skipped.tsv")
    write_json_atomic(info, folder / INDEX_FILE)
    (folder / JOB_FILE).unlink(missing_ok=True)
    for name in old_files:
        if name not in {d["file"] for d in info["backends"].values()}:
            (folder / name).unlink(missing_ok=True)


def read_info(folder: Path) -> dict:
    path = folder / INDEX_FILE
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        hint = " (an unfinished build: rerun `dcar index build` to resume it)" if (folder / JOB_FILE).exists() else ""
        raise DcarError(f"{folder}: not an index (no {INDEX_FILE}){hint}") from None
    except (OSError, json.JSONDecodeError) as err:
        raise DcarError(f"{path}: unreadable ({err})") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise DcarError(f"{path}: not a dcar index of format {FORMAT}")
    return info


def _stack(results: list[dict], space: str, dim: int) -> np.ndarray:
    parts = [r[space] for r in results if len(r[space])]
    return np.concatenate(parts).astype(np.float32, copy=False) if parts else np.zeros((0, dim), np.float32)


def _shard_number(path: Path) -> int:
    try:
        return int(path.name.split("-", 1)[1].split(".", 1)[0])
    except (IndexError, ValueError):
        return -1


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _locked(folder: Path):
    """One writer per index folder: a second `dcar index build/add` is refused with one line naming
    the first (the output lock every dcar job takes, see :mod:`dcar.locking`)."""
    from dcar.locking import output_lock

    return output_lock(folder, "folder")
