"""Run settings shared by every method (the method's own settings live in its config)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class TrainConfig:
    epochs: int = 10
    max_steps: int | None = None  # stop after this many optimiser steps in all (None: no limit)
    skip_nonfinite: bool = False  # skip (and count) steps with a NaN/inf loss or gradient instead of stopping
    batch_size: int = 32
    lr: float | None = None  # None: the method's reference learning rate
    optimizer: str | None = None  # None: the method's reference optimiser ("sgd" | "adamw")
    weight_decay: float | None = None
    warmup_epochs: int = 1
    warmup_lr: float = 1e-5
    seed: int = 0  # the one run seed: initialisation, data order, augmentation and negatives
    num_workers: int = 1
    device: str | None = None  # None: cuda when present, else cpu
    amp: bool = True  # autocast (bf16) on CUDA only; CPU runs in fp32
    select_metric: str = "mean_r1"  # best-on-val: mean of i2t and t2i R@1
    eval_batch_size: int = 128

    def __post_init__(self) -> None:
        """Refuse settings no run can use (a string where a number belongs, 0 epochs, a NaN rate)."""
        _whole(self, "epochs", 1)
        _whole(self, "batch_size", 2)  # the contrastive loss needs a second pair in the batch
        _whole(self, "warmup_epochs", 0)
        _whole(self, "num_workers", 0)
        _whole(self, "eval_batch_size", 1)
        _whole(self, "seed", None)
        if self.max_steps is not None:
            _whole(self, "max_steps", 1)
        for name in ("lr", "weight_decay", "warmup_lr"):
            _finite(self, name, allow_none=name != "warmup_lr", positive=name == "lr")
        if self.optimizer is not None and self.optimizer not in ("sgd", "adamw"):
            raise ValueError(f"optimizer must be 'sgd' or 'adamw', got {self.optimizer!r}")
        for name in ("amp", "skip_nonfinite"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown training config keys: {', '.join(unknown)}")
        return cls(**values)


def _whole(cfg: TrainConfig, name: str, minimum: int | None) -> None:
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def _finite(cfg: TrainConfig, name: str, allow_none: bool, positive: bool) -> None:
    value = getattr(cfg, name)
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'}, got {value}")
