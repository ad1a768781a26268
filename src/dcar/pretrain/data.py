"""Pretraining batches rendered on the fly from the deterministic world.

Nothing is stored: sample ``i`` of the corpus is ``make_sample("pretrain", "train", i, world_seed)``.
The order is a per-epoch permutation seeded by (seed, epoch), so batch ``step`` is a pure function
of the step number and a resumed run sees exactly the batches the killed one would have seen.
"""

from __future__ import annotations

import signal
from typing import Iterator

import numpy as np
import torch
from open_clip import tokenize
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from torch.utils.data import DataLoader, Dataset, Sampler

from dcar.world.captions import caption
from dcar.world.domains import get_domain
from dcar.world.render import render_array
from dcar.world.sample import make_sample


class WorldPairs(Dataset):
    """(image uint8 [3, H, W], caption, subcategory index) triples of one world split.

    The subcategory index (into the domain's ``subcategories``) is what a recipe's auxiliary tag
    loss reads (``Preset.aux_labels``); the contrastive loss uses only the image and caption.
    """

    def __init__(self, domain: str, split: str, n: int, seed: int = 0, image_size: int = 64):
        self.domain, self.split, self.n, self.seed, self.image_size = domain, split, n, seed, image_size
        self._subs = {name: k for k, name in enumerate(get_domain(domain).subcategories)}

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str, int]:
        s = make_sample(self.domain, self.split, int(i), self.seed)
        img = torch.from_numpy(render_array(s, self.image_size).copy()).permute(2, 0, 1)
        return img, caption(s), self._subs[s.subcategory]


def collate(batch: list[tuple[torch.Tensor, str, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stack images (still uint8, 4x less to pass between processes), tokenize captions, stack labels."""
    images = torch.stack([b[0] for b in batch])
    return images, tokenize([b[1] for b in batch]), torch.tensor([b[2] for b in batch])


class StepBatches(Sampler[list[int]]):
    """Batches for steps ``start .. stop-1``; each epoch is a seeded permutation of the corpus."""

    def __init__(self, n: int, batch_size: int, seed: int, start: int, stop: int):
        if n < batch_size:
            raise ValueError(f"corpus of {n} pairs is smaller than one batch ({batch_size})")
        self.n, self.batch_size, self.seed, self.start, self.stop = n, batch_size, seed, start, stop
        self.per_epoch = n // batch_size  # the incomplete last batch is dropped

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self) -> Iterator[list[int]]:
        perm_epoch, perm = -1, None
        for step in range(self.start, self.stop):
            epoch, pos = divmod(step, self.per_epoch)
            if epoch != perm_epoch:  # one permutation per epoch, not per step
                perm_epoch, perm = epoch, np.random.default_rng([self.seed, epoch]).permutation(self.n)
            yield perm[pos * self.batch_size:(pos + 1) * self.batch_size].tolist()


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # rendering is numpy/Pillow; keep the cores for the training process
    # Ctrl-C and `pkill -f "dcar pretrain"` reach the workers too; a worker that died of them would
    # make the training process raise mid-step instead of checkpointing. The training process
    # handles both and shuts its workers down; they also exit when it is gone.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


def pretrain_loader(n: int, batch_size: int, seed: int, world_seed: int, image_size: int,
                    start: int, stop: int, workers: int, domain: str = "pretrain") -> DataLoader:
    return DataLoader(
        WorldPairs(domain, "train", n, world_seed, image_size),
        batch_sampler=StepBatches(n, batch_size, seed, start, stop),
        collate_fn=collate,
        num_workers=workers,
        worker_init_fn=_worker_init if workers else None,
        prefetch_factor=4 if workers else None,
    )


_MEAN = torch.tensor(OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
_STD = torch.tensor(OPENAI_DATASET_STD).view(1, 3, 1, 1)


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, 3, H, W] -> what the model's preprocess gives (ToTensor + Normalize)."""
    return (images.float() / 255.0 - _MEAN) / _STD
