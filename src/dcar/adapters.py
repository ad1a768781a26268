"""Small feature adapters applied after a tower's projection.

- :class:`ResidualBottleneck`: DCAR's category-aware adapter (CAA), g(t) = t + beta * W2 relu(W1 t)
  with W1: D -> D/4 and a small learnable beta, so training starts from the identity.
- :class:`ClipAdapter`: CLIP-Adapter's image adapter, f' = ratio * A(f) + (1 - ratio) * f with
  A = Linear(no bias) -> ReLU -> Linear(no bias) -> ReLU and a bottleneck of D/4.
"""

from __future__ import annotations

import torch
from torch import nn


class ResidualBottleneck(nn.Module):
    def __init__(self, dim: int, reduction: int = 4, init_beta: float = 0.1):
        super().__init__()
        self.down = nn.Linear(dim, dim // reduction)
        self.up = nn.Linear(dim // reduction, dim)
        self.beta = nn.Parameter(torch.tensor(float(init_beta)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.beta * self.up(torch.relu(self.down(x)))


class ClipAdapter(nn.Module):
    def __init__(self, dim: int, reduction: int = 4, ratio: float = 0.2):
        super().__init__()
        self.ratio = ratio
        self.net = nn.Sequential(
            nn.Linear(dim, dim // reduction, bias=False),
            nn.ReLU(),
            nn.Linear(dim // reduction, dim, bias=False),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ratio * self.net(x) + (1.0 - self.ratio) * x
