"""Training on several processes with torchrun (PyTorch DDP): `torchrun --nproc_per_node N -m dcar train ...`.

What changes under torchrun, and only there (a plain `dcar train` runs as before):

- every rank reads the same entries; each global batch of ``--batch-size`` items is cut into one
  contiguous share per rank (:class:`GlobalBatchSampler`), so the ranks together see exactly the
  batch one process would see with the same seed, whatever the number of ranks;
- augmentation is seeded per item from (epoch seed, item index), so an item is augmented the same
  way on any rank and in any worker: N processes train the same tensors as one (within float
  rounding), which the tests check with 2 gloo processes against 1;
- the contrastive loss contrasts each rank's rows against the features of the whole global batch,
  gathered with their gradients (:func:`gather_rows`);
- gradients are averaged by DDP; only rank 0 validates, writes checkpoints and logs, and shows
  progress. Resume reads the run folder on every rank, so it must be on a shared filesystem when
  the ranks run on several nodes.
"""

from __future__ import annotations

import random
from typing import Callable, Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Sampler

from dcar.data.records import Entry
from dcar.distributed.collective import global_batch, init_from_env, shutdown, sizes_across_ranks, world  # noqa: F401
from dcar.errors import DcarError
from dcar.training.data import Collate, ImageCaptionDataset

# ---- data --------------------------------------------------------------------------------------
class GlobalBatchSampler(Sampler[list[int]]):
    """This rank's contiguous share of each global batch of a seeded permutation.

    The permutation and the cut into global batches depend only on (n, batch_size, seed), as in a
    single process with ``drop_last`` when there is more than one batch; rank r of W takes the r-th
    of W near-equal contiguous pieces of each.
    """

    def __init__(self, n: int, batch_size: int, seed: int, rank: int, world_size: int):
        self.n, self.batch_size, self.seed, self.rank, self.world_size = n, batch_size, seed, rank, world_size

    def global_batches(self) -> list[list[int]]:
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed)).tolist()
        if self.n <= self.batch_size:
            return [order]
        full = self.n // self.batch_size
        return [order[b * self.batch_size : (b + 1) * self.batch_size] for b in range(full)]

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.global_batches():
            cuts = [len(batch) * r // self.world_size for r in range(self.world_size + 1)]
            yield batch[cuts[self.rank] : cuts[self.rank + 1]]

    def __len__(self) -> int:
        return max(1, self.n // self.batch_size) if self.n > self.batch_size else 1


class SeededItems(ImageCaptionDataset):
    """Items whose random augmentation is seeded by (seed, index): the same on any rank or worker."""

    def __init__(self, entries: list[Entry], transform: Callable, seed: int):
        super().__init__(entries, transform)
        self.seed = seed

    def __getitem__(self, i: int):
        state = random.getstate()
        with torch.random.fork_rng(devices=[]):
            item_seed = (self.seed * 1_000_003 + i) % (2**63)
            torch.manual_seed(item_seed)
            random.seed(item_seed)
            try:
                return super().__getitem__(i)
            finally:
                random.setstate(state)


def train_loader(entries: list[Entry], transform: Callable, batch_size: int, seed: int, num_workers: int) -> DataLoader:
    """This rank's loader: its share of every global batch of ``batch_size`` items."""
    w = world()
    if batch_size < 2 * w.size:
        raise DcarError(f"--batch-size {batch_size} is the global batch: give at least 2 items per process ({2 * w.size})")
    return DataLoader(
        SeededItems(entries, transform, seed),
        batch_sampler=GlobalBatchSampler(len(entries), batch_size, seed, w.rank, w.size),
        num_workers=num_workers,
        collate_fn=Collate(entries),
    )


# ---- the step ----------------------------------------------------------------------------------
class _Losses(nn.Module):
    """The method's training losses as a forward pass, so that DDP can wrap it."""

    def __init__(self, method: nn.Module):
        super().__init__()
        self.method = method

    def forward(self, batch):
        with global_batch():
            return self.method.training_losses(batch)


def wrap(method: nn.Module) -> Callable:
    """``batch -> losses``: the method itself, or under torchrun its DDP-wrapped losses."""
    w = world()
    if not w.distributed:
        return method.training_losses
    on_gpu = next(method.parameters()).device.type == "cuda"
    return nn.parallel.DistributedDataParallel(
        _Losses(method),
        device_ids=[w.local_rank] if on_gpu else None,
        forward_sync_buffers=False,  # the backbone is frozen: no buffer to keep in step
        find_unused_parameters=True,  # some configurations leave a module out of a step
    )


def batch_usable(n_local: int, device: torch.device) -> bool:
    """Whether every rank can take this step: one answer for all (a step is a collective).
    A rank left with no readable image makes all of them skip the batch."""
    w = world()
    if not w.distributed:
        return n_local >= 2
    sizes = sizes_across_ranks(n_local, device)
    return min(sizes) >= 1 and sum(sizes) >= 2


def mean_over_ranks(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Per-epoch averages over every rank's steps (what one process would have logged)."""
    if not world().distributed or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return {k: float(v) / world().size for k, v in zip(keys, t.tolist())}


def barrier() -> None:
    if world().distributed:
        dist.barrier()


def console_for_rank(console):
    """The console on rank 0, a silent one elsewhere: progress and messages on rank 0 only."""
    from rich.console import Console

    return console if world().is_main else Console(quiet=True)

