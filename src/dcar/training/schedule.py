"""Learning-rate schedules as the baselines' reference code (Dassl) runs them.

Dassl steps the scheduler once per epoch: with one constant warm-up epoch at 1e-5 (recounted),
epoch 0 runs at 1e-5 and epoch k >= 1 at lr * (1 + cos(pi * (k - 1) / E)) / 2, so the last epoch
never reaches zero. We apply the same per-epoch values, with one change: warm-up never takes every
epoch (``--epochs 1`` trains at the full rate, not only at the warm-up rate).
"""

from __future__ import annotations

import math


def epoch_lr(epoch: int, base_lr: float, epochs: int, warmup_epochs: int = 1, warmup_lr: float = 1e-5) -> float:
    warmup_epochs = min(warmup_epochs, epochs - 1)
    if epoch < warmup_epochs:
        return warmup_lr
    k = epoch - warmup_epochs
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * k / max(1, epochs)))
