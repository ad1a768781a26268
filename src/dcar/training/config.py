"""Run settings shared by every method (the method's own settings live in its config)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class TrainConfig:
    epochs: int = 10
    max_steps: int | None = None  # stop after this many optimiser steps in all (None: no limit)
    batch_size: int = 32
    lr: float | None = None  # None: the method's reference learning rate
    optimizer: str | None = None  # None: the method's reference optimiser ("sgd" | "adamw")
    weight_decay: float | None = None
    warmup_epochs: int = 1
    warmup_lr: float = 1e-5
    seed: int = 0
    num_workers: int = 1
    device: str | None = None  # None: cuda when present, else cpu
    amp: bool = True  # autocast (bf16) on CUDA only; CPU runs in fp32
    select_metric: str = "mean_r1"  # best-on-val: mean of i2t and t2i R@1
    eval_batch_size: int = 128

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown training config keys: {', '.join(unknown)}")
        return cls(**values)
