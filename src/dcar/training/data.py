"""Training data: entries whose ``image`` is a resolved path (``dcar.data.sources.load_entries``),
decoded and augmented in DataLoader workers."""

from __future__ import annotations

from typing import Callable

import torch
from torch.utils.data import DataLoader, Dataset

from dcar.data.images import UnreadableImage, load_image
from dcar.data.records import Entry
from dcar.methods.base import TrainBatch


class ImageCaptionDataset(Dataset):
    """(pixels, index) pairs; an unreadable image yields None and is dropped by the collate."""

    def __init__(self, entries: list[Entry], transform: Callable):
        self.entries = entries
        self.transform = transform

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int):
        try:
            return self.transform(load_image(self.entries[i].image)), i
        except UnreadableImage:
            return None


class Collate:
    """Stacks a batch and counts the images that could not be read (a picklable callable)."""

    def __init__(self, entries: list[Entry]):
        self.entries = entries

    def __call__(self, items) -> tuple[TrainBatch | None, int]:
        good = [it for it in items if it is not None]
        skipped = len(items) - len(good)
        if not good:
            return None, skipped
        pixels = torch.stack([p for p, _ in good])
        return TrainBatch(pixels, [self.entries[i] for _, i in good]), skipped


def train_loader(entries: list[Entry], transform: Callable, batch_size: int, seed: int, num_workers: int) -> DataLoader:
    """A shuffled loader whose order and augmentation depend only on ``seed`` (resume-safe)."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        ImageCaptionDataset(entries, transform),
        batch_size=batch_size,
        shuffle=True,
        drop_last=len(entries) > batch_size,  # InfoNCE needs more than one pair per batch
        num_workers=num_workers,
        generator=generator,
        collate_fn=Collate(entries),
        persistent_workers=False,
    )
