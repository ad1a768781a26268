"""Each query's top-K candidates by cosine similarity (chunked), and the confidence score of its top-1
(used by per-query evaluation and by the operating policy)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

SCORES = ("top1", "margin")
QUERY_BLOCK = 4096  # queries scored at once against all candidates


@dataclass
class Ranked:
    """The ``k`` best candidates of each query, best first."""

    indices: np.ndarray  # [Q, k] candidate rows
    sims: np.ndarray  # [Q, k] cosine similarities (float32)

    def score(self, kind: str) -> np.ndarray:
        """``top1``: the best similarity; ``margin``: how far it is ahead of the second best
        (with a single candidate there is no competitor: the margin is the similarity + 1)."""
        if kind == "top1":
            return self.sims[:, 0].astype(np.float64)
        if kind == "margin":
            second = self.sims[:, 1] if self.sims.shape[1] > 1 else np.full(len(self.sims), -1.0)
            return (self.sims[:, 0] - second).astype(np.float64)
        raise ValueError(f"unknown score {kind!r}: expected one of {', '.join(SCORES)}")


def rank_candidates(queries: np.ndarray, candidates: np.ndarray, k: int = 10) -> Ranked:
    """Top-``k`` candidates (at least 2 where there are 2, for the margin) of every query."""
    if queries.ndim != 2 or candidates.ndim != 2 or queries.shape[1] != candidates.shape[1]:
        raise ValueError(f"features must be [Q, E] and [C, E], got {queries.shape} and {candidates.shape}")
    if not len(candidates):
        raise ValueError("no candidates to match against")
    k = min(max(k, 2), len(candidates))
    cand = torch.from_numpy(np.ascontiguousarray(candidates, dtype=np.float32))
    idx, sims = [], []
    for s in range(0, len(queries), QUERY_BLOCK):
        q = torch.from_numpy(np.ascontiguousarray(queries[s : s + QUERY_BLOCK], dtype=np.float32))
        top = (q @ cand.T).topk(k, dim=1)
        idx.append(top.indices.numpy())
        sims.append(top.values.numpy())
    if not idx:
        return Ranked(np.zeros((0, k), dtype=np.int64), np.zeros((0, k), dtype=np.float32))
    return Ranked(np.concatenate(idx), np.concatenate(sims))
