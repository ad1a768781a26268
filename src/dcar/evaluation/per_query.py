"""Per-query results: each query's rank and its ranked top-K, to look at failures one by one
(`dcar eval --per-query FILE`) and to compare two runs query by query.

One JSON object per line:

- ``{"dataset", "direction": "i2t", "query": IMAGE, "rank", "positives": [KEY, ...], "top": [...]}``
  with ``top`` items ``{"key", "caption", "score", "correct"}``;
- ``{"dataset", "direction": "t2i", "query": KEY, "caption", "rank", "positive": IMAGE, "top": [...]}``
  with ``top`` items ``{"image", "score", "correct"}``.

``rank`` is the 1-based rank of the query's best positive, exactly as Recall@K counts it (ties
rank the positive first), so ``rank <= K`` is the query's R@K hit. ``top`` lists the K best
gallery items by score; among equal scores its order is arbitrary.
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from dcar.data.records import Entry
from dcar.evaluation.recall import BLOCK_ELEMENTS, RetrievalRanks

QuerySink = Callable[[dict], None]
DEFAULT_K = 10


def top_k(
    queries: np.ndarray, gallery: np.ndarray, k: int, block_elements: int = BLOCK_ELEMENTS, device: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Indices and scores ``[Q, k]`` of each query's ``k`` best gallery rows (dot product),
    computed a block of queries at a time so memory stays at one block of scores."""
    k = min(k, gallery.shape[0])
    g = torch.from_numpy(np.ascontiguousarray(gallery, dtype=np.float32)).to(device or "cpu")
    rows = max(1, block_elements // max(1, gallery.shape[0]))
    idx, val = [], []
    for start in range(0, queries.shape[0], rows):
        q = torch.from_numpy(np.ascontiguousarray(queries[start : start + rows], dtype=np.float32)).to(g.device)
        best = (q @ g.T).topk(k, dim=1)
        idx.append(best.indices.cpu().numpy())
        val.append(best.values.cpu().numpy())
    empty = np.zeros((0, k))
    return (np.concatenate(idx) if idx else empty.astype(np.int64)), (np.concatenate(val) if val else empty)


def per_query_rows(
    dataset: str,
    image_paths: Sequence[str],
    entries: Sequence[Entry],
    owner: np.ndarray,
    ranks: RetrievalRanks,
    i2t_top: tuple[np.ndarray, np.ndarray],
    t2i_top: tuple[np.ndarray, np.ndarray],
) -> Iterator[dict]:
    """The rows described in the module docstring. ``image_paths[r]`` is image row r; ``entries[c]``
    is caption row c and ``owner[c]`` its image row."""
    captions_of: dict[int, list[str]] = {}
    for c, row in enumerate(owner):
        captions_of.setdefault(int(row), []).append(entries[c].key)
    for r, path in enumerate(image_paths):
        idx, score = i2t_top[0][r], i2t_top[1][r]
        yield {
            "dataset": dataset, "direction": "i2t", "query": path, "rank": int(ranks.i2t[r]) + 1,
            "positives": captions_of.get(r, []),
            "top": [
                {"key": entries[c].key, "caption": entries[c].caption, "score": round(float(s), 6), "correct": int(owner[c]) == r}
                for c, s in zip(idx.tolist(), score.tolist())
            ],
        }
    for c, e in enumerate(entries):
        idx, score = t2i_top[0][c], t2i_top[1][c]
        yield {
            "dataset": dataset, "direction": "t2i", "query": e.key, "caption": e.caption, "rank": int(ranks.t2i[c]) + 1,
            "positive": image_paths[int(owner[c])],
            "top": [
                {"image": image_paths[i], "score": round(float(s), 6), "correct": i == int(owner[c])}
                for i, s in zip(idx.tolist(), score.tolist())
            ],
        }
