"""Process-group plumbing for DDP training: who this process is, and gathering features across
ranks with their gradients (what the global-batch contrastive loss needs)."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Iterator

import torch
import torch.distributed as dist
import torch.nn.functional as F

# Validation runs on rank 0 while the others wait in the next collective: allow for a long one.
COLLECTIVE_TIMEOUT = timedelta(minutes=90)

@dataclass(frozen=True)
class World:
    """This process's place among the training processes (rank 0 of 1 when not under torchrun)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    distributed: bool = False  # launched by torchrun (a process group exists), even with one process

    @property
    def is_main(self) -> bool:
        return self.rank == 0


_gathering = False  # set while a DDP step computes its losses: the contrastive loss then gathers


def launched_by_torchrun() -> bool:
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR"))


def is_main_process() -> bool:
    """Rank 0, or not under torchrun at all (also after the process group is gone)."""
    return int(os.environ.get("RANK", "0")) == 0 if launched_by_torchrun() else True


def world() -> World:
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)), True)


def init_from_env(device: str | None) -> tuple[World, str | None]:
    """Join the process group torchrun set up (nccl on GPUs, gloo on CPU); returns the world and
    the device this rank trains on (its own GPU)."""
    if not launched_by_torchrun() or dist.is_initialized():
        return world(), device
    local_rank = int(os.environ["LOCAL_RANK"])
    wants_cuda = (device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
    if wants_cuda:
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    dist.init_process_group("nccl" if wants_cuda else "gloo", timeout=COLLECTIVE_TIMEOUT)
    return world(), device or "cpu"


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def global_batch() -> Iterator[None]:
    """While active (a DDP step), :func:`gather_pairs` gathers the features of every rank."""
    global _gathering
    _gathering = True
    try:
        yield
    finally:
        _gathering = False


# ---- gathering with gradients ------------------------------------------------------------------
def sizes_across_ranks(n: int, device: torch.device) -> list[int]:
    mine = torch.tensor([n], dtype=torch.long, device=device)
    out = [torch.zeros_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(out, mine)
    return [int(s) for s in out]


class _AllGather(torch.autograd.Function):
    """all_gather whose backward sends each rank the gradient of its own rows, summed over the
    ranks' losses (every rank's loss depends on every rank's rows). The backward all-reduces the
    whole gradient instead of a reduce-scatter, which gloo lacks; the tensors are one batch of
    features, so the extra traffic is small."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        ctx.rows = x.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        start = dist.get_rank() * ctx.rows
        return grad[start : start + ctx.rows]


def gather_rows(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """All ranks' rows of ``x`` (rank order, gradients flowing back to their owners) and the offset
    of this rank's rows in them. Ranks may hold different numbers of rows."""
    sizes = sizes_across_ranks(x.shape[0], x.device)
    most = max(sizes)
    full = _AllGather.apply(F.pad(x, (0, 0, 0, most - x.shape[0])))
    rows = torch.cat([full[r * most : r * most + n] for r, n in enumerate(sizes)])
    return rows, sum(sizes[: dist.get_rank()])


def gather_pairs(images: torch.Tensor, texts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int] | None:
    """Under a DDP step: (all images, all texts, this rank's offset); else None (local batch only)."""
    if not (_gathering and world().size > 1):
        return None
    rows, offset = gather_rows(torch.cat([images, texts], dim=1))
    e = images.shape[1]
    return rows[:, :e], rows[:, e:], offset


