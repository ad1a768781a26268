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
from typing import Callable, Sequence

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
    """Encode every readable image of ``paths`` on Ray (order kept; unreadable ones listed).

    ``encoder`` is the driver's copy (its transform goes to the decoding tasks, its fingerprint
    is what every actor must reproduce); ``make_encoder`` builds one inside each actor.
    """
    ray = _ray()
    start()
    n = len(paths)
    if n == 0:
        return ImageEmbeddings(np.zeros((0, 0), np.float32), np.zeros(0, bool), [])
    blocks = max(1, min(n // batch_size + 1, 4 * max(actors, decode_tasks or 1)))
    ds = ray.data.from_items([{"i": i, "path": str(p)} for i, p in enumerate(paths)], override_num_blocks=blocks)
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
    index, rows, ok, reasons = [], [], [], []
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        index.append(batch["i"])
        rows.append(batch["features"])
        ok.append(batch["ok"])
        reasons.append(batch["reason"])
        if progress is not None:
            progress(len(batch["i"]))
    order = np.argsort(np.concatenate(index), kind="stable")
    ok_all = np.concatenate(ok)[order]
    reason_all = np.concatenate(reasons)[order]
    dim = max(r.shape[1] for r in rows)
    feats = np.concatenate([r if r.shape[1] == dim else np.zeros((len(r), dim), np.float32) for r in rows])[order]
    skipped = [(int(i), str(paths[i]), str(reason_all[i])) for i in np.flatnonzero(~ok_all)]
    return ImageEmbeddings(features=np.ascontiguousarray(feats[ok_all]), ok=ok_all, skipped=skipped)


def ray_image_embedder(make_encoder: EncoderFactory, address: str | None = None, actors: int = 1) -> Callable:
    """An ``embed_images``-shaped function running on Ray (what `--ray` swaps in)."""
    start(address)
    gpus = 1 if _ray().cluster_resources().get("GPU", 0) >= actors else 0  # one actor per GPU where there are enough

    def embed(encoder, paths: Sequence[str], batch_size: int = 64, num_workers: int | None = None,
              progress: Progress | None = None) -> ImageEmbeddings:
        return embed_images_ray(make_encoder, encoder, paths, batch_size, actors, gpus, num_workers or None,
                                progress if callable(progress) else None)

    return embed
