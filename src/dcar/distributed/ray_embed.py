"""Embedding images on Ray Data: decoding in CPU tasks, encoding in a pool of actors.

:func:`embed_images_ray` is a drop-in for :func:`dcar.evaluation.embed.embed_images` (same
``ImageEmbeddings``: features of the readable images in input order, the unreadable ones listed
with their reason), so `dcar embed --ray` and `dcar index build --ray` keep their shards, caches
and resume exactly as on one machine. Without an address a local Ray starts on this machine; with
one (``ray://host:10001`` or ``host:6379``) the same code runs on the cluster, whose nodes need
dcar installed. Each actor loads the model itself and must get the weights the driver has: a spec
that is a fresh random initialisation on every load is refused.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np

from dcar.errors import DcarError
from dcar.evaluation.embed import ImageEmbeddings, Progress, _normalised

EncoderFactory = Callable[[], object]  # () -> RetrievalEncoder, picklable (runs in each actor)

LOCAL_OBJECT_STORE = 512 * 1024**2  # a local Ray on a shared machine: keep its shared memory small


def _ray():
    try:
        import ray
    except ImportError:
        raise DcarError('Ray is not installed: pip install "dcar[scale]"') from None
    return ray


def start(address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect to the cluster at ``address``, or start a local Ray (once per process)."""
    ray = _ray()
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    env = {"env_vars": {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}} if os.environ.get("PYTHONPATH") else None
    try:
        if address:
            ray.init(address=address, runtime_env=env, log_to_driver=False)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, object_store_memory=LOCAL_OBJECT_STORE,
                     runtime_env=env, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise DcarError(f"cannot start Ray{f' at {address}' if address else ''}: {str(err).splitlines()[0]}") from None
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False  # the caller shows one bar over the whole job
    logging.getLogger("ray.data").setLevel(logging.WARNING)


def stop() -> None:
    ray = _ray()
    if ray.is_initialized():
        ray.shutdown()


def _decode(batch: dict[str, np.ndarray], transform: Callable) -> dict[str, np.ndarray]:
    """CPU task: paths -> preprocessed pixels; an unreadable image gives ok=False and its reason."""
    from PIL import Image

    from dcar.data.images import UnreadableImage, load_image

    blank = np.zeros(tuple(transform(Image.new("RGB", (8, 8))).shape), dtype=np.float32)
    pixels, ok, reasons = [], [], []
    for path in batch["path"]:
        try:
            pixels.append(transform(load_image(str(path))).numpy())
            ok.append(True)
            reasons.append("")
        except UnreadableImage as err:
            pixels.append(blank)
            ok.append(False)
            reasons.append(err.reason)
        except (OSError, ValueError, RuntimeError) as err:  # preprocessing of an odd image
            pixels.append(blank)
            ok.append(False)
            reasons.append(f"preprocessing failed: {type(err).__name__}: {err}")
    return {"i": batch["i"], "pixels": np.stack(pixels), "ok": np.array(ok), "reason": np.array(reasons, dtype=object)}


@dataclass
class RayOptions:
    """How `--ray` embeds: where (``address``; None: a local Ray), with how many encoding actors,
    and the picklable ``make_encoder`` each actor builds its model with."""

    make_encoder: EncoderFactory
    address: str | None = None
    actors: int = 1
    gpus_per_actor: float = 0

    def started(self) -> "RayOptions":
        """Start or join Ray; one GPU per actor when the cluster has a GPU for each."""
        start(self.address)
        if _ray().cluster_resources().get("GPU", 0) >= self.actors:
            self.gpus_per_actor = 1
        return self


class _Encode:
    """Actor: holds the model; pixels -> unit float32 features (zeros for rows that failed)."""

    def __init__(self, make_encoder: EncoderFactory, fingerprint: str):
        self.encoder = make_encoder()
        if self.encoder.fingerprint() != fingerprint:
            raise DcarError("a Ray worker loaded other weights than the driver (a random-init model spec?); "
                            "save the model to a folder and give that")

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        ok = np.asarray(batch["ok"], dtype=bool)
        feats = None
        if ok.any():
            good = _normalised(self.encoder.encode_images(torch.from_numpy(np.ascontiguousarray(batch["pixels"][ok]))))
            feats = np.zeros((len(ok), good.shape[1]), dtype=np.float32)
            feats[ok] = good
        else:
            feats = np.zeros((len(ok), 1), dtype=np.float32)
        return {"i": batch["i"], "features": feats, "ok": ok, "reason": batch["reason"]}


def _pipeline(make_encoder: EncoderFactory, encoder, rows: list[dict], batch_size: int, actors: int,
              gpus_per_actor: float, decode_tasks: int | None):
    """The Ray Data job: rows {i, path} -> decoding tasks -> encoding actors."""
    ray = _ray()
    start()
    blocks = max(1, min(len(rows) // batch_size + 1, 4 * max(actors, decode_tasks or 1)))
    ds = ray.data.from_items(rows, override_num_blocks=blocks)
    tasks = ray.data.TaskPoolStrategy(size=decode_tasks) if decode_tasks else ray.data.TaskPoolStrategy()
    # Ray's CPUs are logical: CPU actors take at most what leaves one CPU to decode with, or the
    # actors would hold every CPU and the decoding tasks would never be scheduled.
    cpus = float(ray.cluster_resources().get("CPU", 1))
    actor_cpus = 0 if gpus_per_actor else min(1.0, max(0.1, (cpus - 1) / actors))
    ds = ds.map_batches(_decode, fn_kwargs={"transform": encoder.image_transform()}, batch_size=batch_size,
                        num_cpus=1, compute=tasks, batch_format="numpy")
    ds = ds.map_batches(_Encode, fn_constructor_args=(make_encoder, encoder.fingerprint()), batch_size=batch_size,
                        compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=actor_cpus,
                        num_gpus=gpus_per_actor, batch_format="numpy")
    return ds.iter_batches(batch_size=None, batch_format="numpy")


def embed_blocks_ray(
    make_encoder: EncoderFactory,
    encoder,
    paths: Sequence[str],
    blocks: list[tuple[int, int]],
    batch_size: int = 64,
    actors: int = 1,
    gpus_per_actor: float = 0,
    decode_tasks: int | None = None,
    progress: Progress | None = None,
) -> Iterator[tuple[int, ImageEmbeddings]]:
    """Embed the images of several ``[start, stop)`` blocks of ``paths`` in one Ray job (actors
    start once), yielding ``(block number, embeddings of that block)`` as soon as each block's
    last row is done, so the caller can write it: a kill loses only the blocks in flight.

    ``encoder`` is the driver's copy (its transform goes to the decoding tasks, its fingerprint
    is what every actor must reproduce); ``make_encoder`` builds one inside each actor.
    """
    rows = [{"i": i, "path": str(paths[i])} for start, stop in blocks for i in range(start, stop)]
    if not rows:
        return
    starts = np.array([start for start, _ in blocks])
    order = np.argsort(starts)
    got: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]] = {}
    left = {b: stop - start for b, (start, stop) in enumerate(blocks)}
    for batch in _pipeline(make_encoder, encoder, rows, batch_size, actors, gpus_per_actor, decode_tasks):
        owner = order[np.searchsorted(starts[order], batch["i"], side="right") - 1]
        for b in np.unique(owner):
            mine = owner == b
            got.setdefault(int(b), []).append((batch["i"][mine], batch["features"][mine], batch["ok"][mine], batch["reason"][mine]))
            left[int(b)] -= int(mine.sum())
            if left[int(b)] == 0:
                yield int(b), _assemble(got.pop(int(b)), paths, blocks[int(b)][0])
        if progress is not None:
            progress(len(batch["i"]))


def _assemble(parts, paths: Sequence[str], first: int) -> ImageEmbeddings:
    index = np.concatenate([p[0] for p in parts])
    order = np.argsort(index, kind="stable")
    ok = np.concatenate([p[2] for p in parts])[order]
    reasons = np.concatenate([p[3] for p in parts])[order]
    dim = max(p[1].shape[1] for p in parts)
    feats = np.concatenate([p[1] if p[1].shape[1] == dim else np.zeros((len(p[1]), dim), np.float32) for p in parts])[order]
    skipped = [(int(i), str(paths[first + i]), str(reasons[i])) for i in np.flatnonzero(~ok)]
    features = np.ascontiguousarray(feats[ok]) if ok.any() else np.zeros((0, 0), np.float32)
    return ImageEmbeddings(features=features, ok=ok, skipped=skipped)


def embed_images_ray(
    make_encoder: EncoderFactory,
    encoder,
    paths: Sequence[str],
    batch_size: int = 64,
    actors: int = 1,
    gpus_per_actor: float = 0,
    decode_tasks: int | None = None,
    progress: Progress | None = None,
) -> ImageEmbeddings:
    """Encode every readable image of ``paths`` on Ray (order kept; unreadable ones listed), as
    :func:`dcar.evaluation.embed.embed_images` does in one process."""
    if not paths:
        return ImageEmbeddings(np.zeros((0, 0), np.float32), np.zeros(0, bool), [])
    blocks = embed_blocks_ray(make_encoder, encoder, paths, [(0, len(paths))], batch_size, actors, gpus_per_actor,
                              decode_tasks, progress)
    return next(iter(blocks))[1]


def ray_image_embedder(options: RayOptions) -> Callable:
    """An ``embed_images``-shaped function running on Ray (what `dcar embed --ray` swaps in)."""
    options.started()

    def embed(encoder, paths: Sequence[str], batch_size: int = 64, num_workers: int | None = None,
              progress: Progress | None = None) -> ImageEmbeddings:
        return embed_images_ray(options.make_encoder, encoder, paths, batch_size, options.actors,
                                options.gpus_per_actor, num_workers or None, progress if callable(progress) else None)

    return embed
