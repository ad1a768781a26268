"""Exact Recall@K for image-text retrieval without a full similarity matrix.

The usual implementation (clip_benchmark's ``recall_at_k``) builds the whole ``[captions, images]``
score matrix and runs ``topk`` on it: 50k images x 250k captions would need 50 GB. Here each query's
*rank* is counted instead: the number of gallery items that score strictly higher than the query's
best positive. Blocks of the score matrix are computed one at a time, compared with the positive
scores and dropped, so memory stays at one block (about 200 MB by default) on top of the inputs,
and both directions are counted from the same block.

- Image to text: an image's rank is the number of *other images'* captions scoring strictly higher
  than its best caption (any number of captions per image). R@K = share of images with rank < K.
- Text to image: a caption's rank is the number of images scoring strictly higher than its own image.

Ties: scores are computed in float64 (the inputs are float32), and a competitor within ``TIE_TOL``
of the positive's score counts as a tie. Ties rank the positive first (optimistic), so an identical
caption attached to another image, or a duplicated image, does not push the right answer down; a
``topk`` over a float32 matrix would break such ties arbitrarily. On inputs without ties the result
equals the full-matrix computation exactly (tested).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

KS = (1, 5, 10)
TIE_TOL = 1e-9  # far below float32 resolution (6e-8): closer scores come from identical inputs
BLOCK_ELEMENTS = 1 << 24  # scores per block: 128 MB in float64, plus two 16 MB boolean masks

ArrayLike = np.ndarray | torch.Tensor


@dataclass
class RetrievalRanks:
    """0-based rank of each query's (best) positive: 0 means it is retrieved first."""

    i2t: np.ndarray  # [n_images]
    t2i: np.ndarray  # [n_captions]


def retrieval_ranks(
    image_emb: ArrayLike,
    text_emb: ArrayLike,
    text_to_image: ArrayLike,
    block_elements: int = BLOCK_ELEMENTS,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float64,
) -> RetrievalRanks:
    """Exact ranks for both directions (see module docstring).

    Args:
        image_emb: ``[N, E]`` image embeddings (L2-normalised for cosine similarity).
        text_emb: ``[M, E]`` caption embeddings.
        text_to_image: ``[M]`` index of each caption's image; every image needs at least one caption.
        device: where to compute (default: CPU); inputs stay where they are and move block by block.
        dtype: score precision; float32 is faster on GPUs without fast float64, at the price of
            rounding-level differences between tied scores.
    """
    images, texts, owner = _check_inputs(image_emb, text_emb, text_to_image)
    n, m = images.shape[0], texts.shape[0]
    device = torch.device(device or "cpu")
    owner_d = owner.to(device)
    pos = _positive_scores(images, texts, owner, dtype).to(device)  # [M]: caption vs its own image
    best = torch.full((n,), -torch.inf, dtype=dtype, device=device)
    best.scatter_reduce_(0, owner_d, pos, reduce="amax")  # [N]: image vs its best caption
    i2t = torch.zeros(n, dtype=torch.int64, device=device)
    t2i = torch.zeros(m, dtype=torch.int64, device=device)
    rows = max(1, min(n, int(np.sqrt(block_elements))))
    cols = max(1, min(m, block_elements // rows))
    for i0 in range(0, n, rows):
        img = images[i0 : i0 + rows].to(device=device, dtype=dtype)
        for t0 in range(0, m, cols):
            txt = texts[t0 : t0 + cols].to(device=device, dtype=dtype)
            scores = img @ txt.T  # [rows, cols]
            # A query's own positives never count against it (nor do rounding differences between
            # the two ways a positive score is computed).
            own = owner_d[t0 : t0 + cols] - i0
            hit = (own >= 0) & (own < img.shape[0])
            scores[own[hit], hit.nonzero().squeeze(1)] = -torch.inf
            i2t[i0 : i0 + rows] += (scores > (best[i0 : i0 + rows] + TIE_TOL)[:, None]).sum(1)
            t2i[t0 : t0 + cols] += (scores > (pos[t0 : t0 + cols] + TIE_TOL)[None, :]).sum(0)
    return RetrievalRanks(i2t=i2t.cpu().numpy(), t2i=t2i.cpu().numpy())


def recall_from_ranks(ranks: RetrievalRanks, ks: Sequence[int] = KS) -> dict[str, dict[str, float]]:
    """``{"i2t": {"R@1": %, ...}, "t2i": {...}}`` in percent."""
    return {
        direction: {f"R@{k}": float(100.0 * np.mean(r < k)) for k in ks}
        for direction, r in (("i2t", ranks.i2t), ("t2i", ranks.t2i))
    }


def recall_at_k(
    image_emb: ArrayLike, text_emb: ArrayLike, text_to_image: ArrayLike, ks: Sequence[int] = KS, **kwargs
) -> dict[str, dict[str, float]]:
    """Recall@K in percent for image-to-text and text-to-image retrieval (exact, chunked)."""
    return recall_from_ranks(retrieval_ranks(image_emb, text_emb, text_to_image, **kwargs), ks)


def hard_negative_accuracy(
    image_emb: ArrayLike,
    positive_emb: ArrayLike,
    negative_emb_groups: Sequence[ArrayLike] | ArrayLike,
) -> float | None:
    """Percentage of images whose positive caption scores strictly higher than all its negatives.

    ``negative_emb_groups[i]`` is ``[k_i, E]``, the negatives of image i (or one ``[N, K, E]`` array).
    Images without negatives are left out; None when no image has any. A negative within
    ``TIE_TOL`` of the positive (e.g. the same text) is a tie, and a tie is not outranking.
    """
    images = _as_tensor(image_emb, "image_emb")
    positives = _as_tensor(positive_emb, "positive_emb")
    if positives.shape != images.shape:
        raise ValueError(f"positive_emb {tuple(positives.shape)} must match image_emb {tuple(images.shape)}")
    groups = [_as_tensor(g, "negative_emb_groups").reshape(-1, images.shape[1]) for g in negative_emb_groups]
    if len(groups) != images.shape[0]:
        raise ValueError(f"{len(groups)} negative groups for {images.shape[0]} images")
    sizes = torch.tensor([g.shape[0] for g in groups])
    if int(sizes.sum()) == 0:
        return None
    negatives = torch.cat(groups).double()
    owner = torch.repeat_interleave(torch.arange(len(groups)), sizes)
    img = images.double()
    # Positive and negative scores through the same operation, so identical texts tie exactly.
    pos = (img * positives.double()).sum(1)
    neg = (img[owner] * negatives).sum(1)
    worst = torch.full((len(groups),), -torch.inf, dtype=torch.float64)
    worst.scatter_reduce_(0, owner, neg, reduce="amax")
    has = sizes > 0
    wins = pos[has] > worst[has] + TIE_TOL
    return float(100.0 * wins.double().mean())


def _as_tensor(x: ArrayLike, name: str) -> torch.Tensor:
    t = torch.as_tensor(x)
    if not torch.is_floating_point(t):
        raise ValueError(f"{name} must be floating point, got {t.dtype}")
    return t


def _check_inputs(image_emb, text_emb, text_to_image) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    images, texts = _as_tensor(image_emb, "image_emb"), _as_tensor(text_emb, "text_emb")
    owner = torch.as_tensor(text_to_image).long().cpu()
    if images.ndim != 2 or texts.ndim != 2 or images.shape[1] != texts.shape[1]:
        raise ValueError(f"embeddings must be [N, E] and [M, E], got {tuple(images.shape)} and {tuple(texts.shape)}")
    if owner.shape != (texts.shape[0],):
        raise ValueError(f"text_to_image must have one index per caption ({texts.shape[0]}), got {tuple(owner.shape)}")
    if len(owner) and (int(owner.min()) < 0 or int(owner.max()) >= images.shape[0]):
        raise ValueError("text_to_image holds an index outside [0, n_images)")
    captioned = torch.bincount(owner, minlength=images.shape[0])
    if images.shape[0] and int((captioned == 0).sum()):
        first = int((captioned == 0).nonzero()[0])
        raise ValueError(f"{int((captioned == 0).sum())} images have no caption (first: index {first})")
    return images, texts, owner


def _positive_scores(images: torch.Tensor, texts: torch.Tensor, owner: torch.Tensor, dtype) -> torch.Tensor:
    """Score of each caption with its own image, in chunks (a gathered [M, E] copy may be large)."""
    out = torch.empty(texts.shape[0], dtype=dtype)
    step = max(1, (BLOCK_ELEMENTS // 4) // max(1, texts.shape[1]))
    for t0 in range(0, texts.shape[0], step):
        idx = owner[t0 : t0 + step]
        img = images[idx.to(images.device)].to(dtype)
        out[t0 : t0 + step] = (img * texts[t0 : t0 + step].to(dtype)).sum(1).cpu()
    return out
