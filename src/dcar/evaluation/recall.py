"""Exact Recall@K for image-text retrieval without a full similarity matrix.

The usual implementation (clip_benchmark's ``recall_at_k``) builds the whole ``[captions, images]``
score matrix and runs ``topk`` on it: 50k images x 250k captions would need 50 GB. Here each query's
*rank* is counted instead: the number of gallery items that score strictly higher than the query's
best positive. Blocks of the score matrix are computed one at a time, compared with the positive
scores and dropped, so memory stays at one block (about 100 MB by default) on top of the inputs,
and both directions are counted from the same block.

- Image to text: an image's rank is the number of *other images'* captions scoring strictly higher
  than its best caption (any number of captions per image). R@K = share of images with rank < K.
- Text to image: a caption's rank is the number of images scoring strictly higher than its own image.

Precision and ties. Positive scores are computed in float64. Blocks are computed with a float32
matrix product (fast everywhere, GPUs included); a float32 score can be off by at most
``E * 2**-24 * |a| * |b|``, so a competitor is counted outright only when its float32 score clears
the positive's by twice that margin, and the few within the margin are recomputed in float64. The
result is the float64 answer at float32 speed. A competitor within ``TIE_TOL`` of the positive
(in float64) is a tie, and ties rank the positive first (optimistic): an identical caption
attached to another image, or a duplicated image, does not push the right answer down (a ``topk``
over a float32 matrix breaks such ties arbitrarily). Without ties the result equals the
full-matrix computation exactly (tested).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch

KS = (1, 5, 10)
TIE_TOL = 1e-10  # float64 dot products of identical float32 rows agree far closer than this
BLOCK_ELEMENTS = 1 << 24  # scores per block: 64 MB in float32, plus a few 16 MB boolean masks
RECHECK_PAIRS = 1 << 16  # near-threshold pairs recomputed in float64 per step

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
) -> RetrievalRanks:
    """Exact ranks for both directions (see module docstring).

    Args:
        image_emb: ``[N, E]`` image embeddings (L2-normalised for cosine similarity).
        text_emb: ``[M, E]`` caption embeddings.
        text_to_image: ``[M]`` index of each caption's image; every image needs at least one caption.
        block_elements: scores computed at once (memory: about 7 bytes each).
        device: where to compute (default: CPU); inputs move there block by block.
    """
    images, texts, owner = _check_inputs(image_emb, text_emb, text_to_image)
    n, m = images.shape[0], texts.shape[0]
    device = torch.device(device or "cpu")
    owner_d = owner.to(device)
    pos = _dot64(images, owner, texts, torch.arange(m)).to(device)  # [M]: caption vs its image
    best = torch.full((n,), -torch.inf, dtype=torch.float64, device=device)
    best.scatter_reduce_(0, owner_d, pos, reduce="amax")  # [N]: image vs its best caption
    margin = _float32_error_bound(images, texts)
    i2t = torch.zeros(n, dtype=torch.int64, device=device)
    t2i = torch.zeros(m, dtype=torch.int64, device=device)
    rows = max(1, min(n, int(np.sqrt(block_elements))))
    cols = max(1, min(m, block_elements // rows))
    with _full_float32_precision():
        for i0 in range(0, n, rows):
            img = images[i0 : i0 + rows].to(device=device, dtype=torch.float32)
            row_bounds = _bounds(best[i0 : i0 + rows], margin)
            for t0 in range(0, m, cols):
                txt = texts[t0 : t0 + cols].to(device=device, dtype=torch.float32)
                scores = img @ txt.T  # [rows, cols] float32
                # A query's own positives never count against it.
                own = owner_d[t0 : t0 + cols] - i0
                hit = (own >= 0) & (own < img.shape[0])
                scores[own[hit], hit.nonzero().squeeze(1)] = -torch.inf
                block = _Block(scores, i0, t0, row_bounds, _bounds(pos[t0 : t0 + cols], margin))
                _count_block(block, i2t, t2i, images, texts, best, pos)
    return RetrievalRanks(i2t=i2t.cpu().numpy(), t2i=t2i.cpu().numpy())


@dataclass
class _Block:
    scores: torch.Tensor  # float32 [rows, cols], positives set to -inf
    i0: int  # first image of the block
    t0: int  # first caption of the block
    row_bounds: tuple[torch.Tensor, torch.Tensor]  # float32 (lo, hi) around each image's best score
    col_bounds: tuple[torch.Tensor, torch.Tensor]  # float32 (lo, hi) around each caption's score


def _count_block(b: _Block, i2t, t2i, images, texts, best, pos) -> None:
    """Add one block's competitors to the ranks: clear ones from float32, near ones in float64."""
    rows, cols = b.scores.shape
    i2t_b, t2i_b = i2t[b.i0 : b.i0 + rows], t2i[b.t0 : b.t0 + cols]  # views: updated in place
    (row_lo, row_hi), (col_lo, col_hi) = b.row_bounds, b.col_bounds
    i2t_b += (b.scores > row_hi[:, None]).sum(1)
    t2i_b += (b.scores > col_hi[None, :]).sum(0)
    near_row = (b.scores >= row_lo[:, None]) & (b.scores <= row_hi[:, None])
    near_col = (b.scores >= col_lo[None, :]) & (b.scores <= col_hi[None, :])
    near = near_row | near_col
    if not bool(near.any()):
        return
    r, c = near.nonzero(as_tuple=True)
    in_row, in_col = near_row[r, c], near_col[r, c]
    for s in range(0, len(r), RECHECK_PAIRS):
        rr, cc = r[s : s + RECHECK_PAIRS], c[s : s + RECHECK_PAIRS]
        exact = _dot64(images, (rr + b.i0).cpu(), texts, (cc + b.t0).cpu()).to(b.scores.device)
        above_row = in_row[s : s + RECHECK_PAIRS] & (exact > best[rr + b.i0] + TIE_TOL)
        above_col = in_col[s : s + RECHECK_PAIRS] & (exact > pos[cc + b.t0] + TIE_TOL)
        i2t_b.index_add_(0, rr[above_row], torch.ones_like(rr[above_row]))
        t2i_b.index_add_(0, cc[above_col], torch.ones_like(cc[above_col]))


def _bounds(threshold: torch.Tensor, margin: float) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 ``(lo, hi)`` around float64 thresholds: a float32 score above ``hi`` is surely
    above the threshold; one in ``[lo, hi]`` must be recomputed."""
    lo = (threshold - margin).float()
    hi = (threshold + margin).float()
    down = torch.nextafter(lo, torch.full_like(lo, -torch.inf))
    up = torch.nextafter(hi, torch.full_like(hi, torch.inf))
    return down, up


def _float32_error_bound(images: torch.Tensor, texts: torch.Tensor) -> float:
    """Twice the worst-case error of a float32 dot product: E * u * max|a| * max|b| (u = 2**-24)."""
    if not len(images) or not len(texts):
        return 0.0
    return 2.0 * images.shape[1] * 2.0**-24 * _max_norm(images) * _max_norm(texts)


def _max_norm(x: torch.Tensor) -> float:
    """Largest row norm, in float64 chunks (a float64 copy of 250k captions would take 1 GB)."""
    step = max(1, (BLOCK_ELEMENTS // 8) // max(1, x.shape[1]))
    return max(float(x[s : s + step].double().norm(dim=1).max()) for s in range(0, len(x), step))


def _dot64(a: torch.Tensor, ia: torch.Tensor, b: torch.Tensor, ib: torch.Tensor) -> torch.Tensor:
    """float64 ``a[ia[k]] . b[ib[k]]`` for every k, in chunks; one routine for positives and
    rechecks, so identical rows give bit-identical scores."""
    out = torch.empty(len(ia), dtype=torch.float64)
    step = max(1, (BLOCK_ELEMENTS // 8) // max(1, a.shape[1]))
    for s in range(0, len(ia), step):
        x = a[ia[s : s + step].to(a.device)].double()
        y = b[ib[s : s + step].to(b.device)].double()
        out[s : s + step] = (x * y).sum(1).cpu()
    return out


@contextmanager
def _full_float32_precision() -> Iterator[None]:
    """TF32 / bfloat16 matmul shortcuts would break the error bound: turn them off meanwhile."""
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)


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
