"""Turn image files and captions into L2-normalised float32 features with any RetrievalEncoder.

Images go through a torch DataLoader whose worker processes decode JPEGs and run the model's
preprocessing while the main process encodes the previous batch. An image that cannot be decoded
is skipped (no row) and reported with its path and reason, never fatal.

Long jobs run block by block through :func:`blockwise`; with a :class:`BlockCache` each finished
block is saved, so a killed job resumes at the first unfinished block.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from dcar.data.images import UnreadableImage, load_image
from dcar.evaluation.cache import BlockCache
from dcar.evaluation.encoders import RetrievalEncoder

Progress = Callable[[int], None]


@dataclass
class ImageEmbeddings:
    """Features of the readable images, in input order, and what was skipped."""

    features: np.ndarray  # [n_ok, E] float32, rows L2-normalised
    ok: np.ndarray  # [n] bool: row i of the input produced a feature row
    skipped: list[tuple[int, str, str]] = field(default_factory=list)  # (input index, path, reason)


class _ImageFiles(Dataset):
    """Decoded, preprocessed images; failures come back as (index, None, reason)."""

    def __init__(self, paths: Sequence[str], transform: Callable):
        self.paths, self.transform = list(paths), transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        try:
            return i, self.transform(load_image(self.paths[i])), ""
        except UnreadableImage as err:
            return i, None, err.reason
        except (OSError, ValueError, RuntimeError) as err:  # preprocessing of an odd image
            return i, None, f"preprocessing failed: {type(err).__name__}: {err}"


def _collate(batch):
    good = [(i, x) for i, x, _ in batch if x is not None]
    failed = [(i, why) for i, x, why in batch if x is None]
    index = torch.tensor([i for i, _ in good], dtype=torch.long)
    pixels = torch.stack([x for _, x in good]) if good else None
    return index, pixels, failed


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def embed_images(
    encoder: RetrievalEncoder,
    paths: Sequence[str],
    batch_size: int = 64,
    num_workers: int | None = None,
    progress: bool | Progress = True,
) -> ImageEmbeddings:
    """Encode every readable image of ``paths`` (order kept; unreadable ones skipped and listed)."""
    workers = default_workers() if num_workers is None else num_workers
    loader = DataLoader(
        _ImageFiles(paths, encoder.image_transform()),
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=_collate,
        pin_memory=torch.cuda.is_available(),
        prefetch_factor=4 if workers else None,
    )
    ok = np.zeros(len(paths), dtype=bool)
    chunks: list[np.ndarray] = []
    skipped: list[tuple[int, str, str]] = []
    with _progress(progress, len(paths), "images") as advance:
        for index, pixels, failed in loader:
            if pixels is not None:
                chunks.append(_normalised(encoder.encode_images(pixels)))
                ok[index.numpy()] = True
            skipped += [(i, str(paths[i]), why) for i, why in failed]
            advance(len(index) + len(failed))
    features = np.concatenate(chunks) if chunks else np.zeros((0, 0), dtype=np.float32)
    return ImageEmbeddings(features=features, ok=ok, skipped=skipped)


def embed_texts(
    encoder: RetrievalEncoder, texts: Sequence[str], batch_size: int = 256, progress: bool | Progress = True
) -> np.ndarray:
    """``[len(texts), E]`` float32 L2-normalised features, one row per input text.

    Each distinct text is encoded once, so repeated captions get bit-identical rows (and tie in
    retrieval, as they should).
    """
    unique = list(dict.fromkeys(texts))
    rows: list[np.ndarray] = []
    with _progress(progress, len(unique), "texts") as advance:
        for start in range(0, len(unique), batch_size):
            batch = unique[start : start + batch_size]
            rows.append(_normalised(encoder.encode_texts(batch)))
            advance(len(batch))
    if not rows:
        return np.zeros((0, 0), dtype=np.float32)
    table = np.concatenate(rows)
    where = {t: i for i, t in enumerate(unique)}
    return table[[where[t] for t in texts]]


def blockwise(
    n: int,
    block_size: int,
    compute: Callable[[int, int], dict[str, np.ndarray]],
    cache: BlockCache | None = None,
    on_cached: Progress | None = None,
) -> list[dict[str, np.ndarray]]:
    """Run ``compute(start, stop)`` over ``[0, n)`` in blocks, reusing blocks found in ``cache``.

    ``on_cached(count)`` reports items taken from the cache (to advance a progress bar).
    """
    results = []
    for b, start in enumerate(range(0, n, block_size)):
        stop = min(n, start + block_size)
        got = cache.get(b) if cache is not None else None
        if got is None:
            got = compute(start, stop)
            if cache is not None:
                cache.put(b, **got)
        elif on_cached is not None:
            on_cached(stop - start)
        results.append(got)
    return results


def _normalised(features: torch.Tensor) -> np.ndarray:
    """float32 rows of unit length (re-normalised: cheap, and encoders from elsewhere may drift)."""
    x = features.detach().float().cpu().numpy()
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


class _progress:
    """Context manager yielding ``advance(n)``: a tqdm bar, a caller's callback, or nothing."""

    def __init__(self, progress: bool | Progress, total: int, unit: str):
        self.progress, self.total, self.unit, self.bar = progress, total, unit, None

    def __enter__(self) -> Progress:
        if callable(self.progress):
            return self.progress
        if self.progress:
            self.bar = tqdm(total=self.total, unit=self.unit[:-1], desc=f"embedding {self.unit}", leave=False)
            return self.bar.update
        return lambda n: None

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
