"""Training data: entries with resolved images, decoded and augmented in DataLoader workers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import DataLoader, Dataset

from dcar.data.image_index import ImageIndex
from dcar.data.images import UnreadableImage, load_image
from dcar.data.records import Entry
from dcar.methods.base import TrainBatch


@dataclass
class ResolvedEntries:
    entries: list[Entry]
    paths: list[Path]
    missing: list[str]  # keys whose image was not found under the root


def resolve_images(entries: list[Entry], images_root: str | Path) -> ResolvedEntries:
    """Keep the entries whose image exists under ``images_root``; report the rest by key."""
    index = ImageIndex(images_root)
    kept, paths, missing = [], [], []
    for entry in entries:
        path, _ = index.find(entry.image, entry.key)
        if path is None:
            missing.append(entry.key)
        else:
            kept.append(entry)
            paths.append(path)
    return ResolvedEntries(kept, paths, missing)


class ImageCaptionDataset(Dataset):
    """(pixels, index) pairs; an unreadable image yields None and is dropped by the collate."""

    def __init__(self, data: ResolvedEntries, transform: Callable):
        self.data = data
        self.transform = transform

    def __len__(self) -> int:
        return len(self.data.entries)

    def __getitem__(self, i: int):
        try:
            return self.transform(load_image(self.data.paths[i])), i
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


def train_loader(data: ResolvedEntries, transform: Callable, batch_size: int, seed: int, num_workers: int) -> DataLoader:
    """A shuffled loader whose order and augmentation depend only on ``seed`` (resume-safe)."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        ImageCaptionDataset(data, transform),
        batch_size=batch_size,
        shuffle=True,
        drop_last=len(data.entries) > batch_size,  # InfoNCE needs more than one pair per batch
        num_workers=num_workers,
        generator=generator,
        collate_fn=Collate(data.entries),
        persistent_workers=False,
    )
