"""Per-query results: each query's rank and its ranked top-K, to look at failures one by one
(`dcar eval --per-query FILE`) and to compare two runs query by query.

One JSON object per line, in the record layout the offline A/B comparison pairs runs by:
``{"dataset", "direction", "query", "category", "rank", "relevant", "top", "scores"}`` plus, for a
person reading it, the texts and files behind the names:

- image queries (``i2t``): ``query`` is the key of the image's first entry, ``relevant`` its
  entries' keys, ``top`` the best captions' entry keys; ``image`` the file, ``top_captions`` the texts;
- caption queries (``t2i``): ``query`` is the entry's key, ``relevant`` its image (named like image
  queries), ``top`` the best images; ``caption`` the text, ``top_images`` the files.

``rank`` is the 0-based rank of the query's best positive, exactly as Recall@K counts it (ties
rank the positive first), so ``rank < K`` is the query's R@K hit. ``top`` lists the K best gallery
items by score (after re-ranking, by the new scores); among equal scores its order is arbitrary.
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
    first: dict[int, Entry] = {}
    captions_of: dict[int, list[str]] = {}
    for e, row in zip(entries, owner.tolist()):
        first.setdefault(row, e)
        captions_of.setdefault(row, []).append(e.key)
    image_name = [first[r].key for r in range(len(image_paths))]
    for r, path in enumerate(image_paths):
        idx, score = i2t_top[0][r].tolist(), i2t_top[1][r].tolist()
        yield {
            "dataset": dataset, "direction": "i2t", "query": image_name[r], "category": first[r].category,
            "rank": int(ranks.i2t[r]), "relevant": captions_of[r], "top": [entries[c].key for c in idx],
            "scores": [round(float(s), 6) for s in score], "image": path, "top_captions": [entries[c].caption for c in idx],
        }
    for c, e in enumerate(entries):
        idx, score = t2i_top[0][c].tolist(), t2i_top[1][c].tolist()
        yield {
            "dataset": dataset, "direction": "t2i", "query": e.key, "category": e.category,
            "rank": int(ranks.t2i[c]), "relevant": [image_name[int(owner[c])]], "top": [image_name[i] for i in idx],
            "scores": [round(float(s), 6) for s in score], "caption": e.caption, "top_images": [image_paths[i] for i in idx],
        }
