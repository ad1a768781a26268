"""Re-rank inference: re-score each query's top-K candidates pairwise.

DCAR's token re-weighting conditions a caption's features on an image, which a retrieval index
cannot do for every (query, candidate) pair. The indexable default uses unit weights; this mode
keeps that first stage and re-scores only the top ``k`` candidates of each query with
image-conditioned weights. Ranks inside the top ``k`` come from the new scores; a query whose
positive was not among its candidates keeps its first-stage rank (which is >= ``k``).
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np
import torch

from dcar.evaluation.recall import RetrievalRanks, recall_from_ranks, retrieval_ranks


class PairScorer(Protocol):
    """What a re-ranking encoder adds to :class:`~dcar.evaluation.encoders.RetrievalEncoder`."""

    rerank_k: int

    def frozen_encoder(self):
        """The un-prompted backbone as a RetrievalEncoder: the f_I(I) that DTR contrasts with."""

    def encode_texts_for_images(self, texts: list[str], frozen_image_features: torch.Tensor) -> torch.Tensor: ...


def _pair_scores(scorer: PairScorer, image_feats, frozen_feats, captions, pairs: np.ndarray, batch_size: int) -> np.ndarray:
    """Score (image row, caption row) pairs: prompted image · caption weighted for that image."""
    out = np.empty(len(pairs), dtype=np.float32)
    for s in range(0, len(pairs), batch_size):
        chunk = pairs[s : s + batch_size]
        texts = [captions[t] for t in chunk[:, 1]]
        with torch.inference_mode():
            txt = scorer.encode_texts_for_images(texts, torch.from_numpy(frozen_feats[chunk[:, 0]])).float().cpu().numpy()
        out[s : s + len(chunk)] = (image_feats[chunk[:, 0]] * txt).sum(axis=1)
    return out


def _reranked(first_stage: np.ndarray, candidates: np.ndarray, new_scores: np.ndarray, is_positive: np.ndarray, k: int) -> np.ndarray:
    """New 0-based rank of each query's best positive. ``candidates``/``new_scores``/``is_positive``: [Q, k]."""
    order = np.argsort(-new_scores, axis=1, kind="stable")
    pos_sorted = np.take_along_axis(is_positive, order, axis=1)
    found = pos_sorted.any(axis=1)
    new_rank = np.where(found, pos_sorted.argmax(axis=1), np.maximum(first_stage, k))
    return new_rank


def reranked_ranks(
    scorer: PairScorer,
    image_feats: np.ndarray,
    frozen_feats: np.ndarray,
    caption_feats: np.ndarray,
    captions: Sequence[str],
    owner: np.ndarray,
    batch_size: int = 256,
) -> tuple[RetrievalRanks, np.ndarray, np.ndarray]:
    """Ranks after re-scoring each query's top ``scorer.rerank_k`` candidates pairwise, and each
    query's candidates in their new order (image -> caption rows ``[N, k]``, caption -> image ``[M, k]``)."""
    base = retrieval_ranks(image_feats, caption_feats, owner)
    sims = torch.from_numpy(image_feats) @ torch.from_numpy(caption_feats).T  # [N, M]
    k_t = min(scorer.rerank_k, sims.shape[1])
    k_i = min(scorer.rerank_k, sims.shape[0])
    # image -> text
    cand_t = sims.topk(k_t, dim=1).indices.numpy()  # [N, k]
    pairs = np.stack([np.repeat(np.arange(len(cand_t)), k_t), cand_t.reshape(-1)], axis=1)
    new_i2t = _pair_scores(scorer, image_feats, frozen_feats, captions, pairs, batch_size).reshape(-1, k_t)
    i2t = _reranked(base.i2t, cand_t, new_i2t, owner[cand_t] == np.arange(len(cand_t))[:, None], k_t)
    # text -> image
    cand_i = sims.T.topk(k_i, dim=1).indices.numpy()  # [M, k]
    pairs = np.stack([cand_i.reshape(-1), np.repeat(np.arange(len(cand_i)), k_i)], axis=1)
    new_t2i = _pair_scores(scorer, image_feats, frozen_feats, captions, pairs, batch_size).reshape(-1, k_i)
    t2i = _reranked(base.t2i, cand_i, new_t2i, cand_i == owner[:, None], k_i)
    top_t = np.take_along_axis(cand_t, np.argsort(-new_i2t, axis=1, kind="stable"), axis=1)
    top_i = np.take_along_axis(cand_i, np.argsort(-new_t2i, axis=1, kind="stable"), axis=1)
    return RetrievalRanks(i2t=i2t, t2i=t2i), top_t, top_i


def reranked_recall(*args, **kwargs) -> dict[str, dict[str, float]]:
    """Recall@K after re-scoring each query's top ``scorer.rerank_k`` candidates pairwise
    (the arguments of :func:`reranked_ranks`)."""
    return recall_from_ranks(reranked_ranks(*args, **kwargs)[0])
