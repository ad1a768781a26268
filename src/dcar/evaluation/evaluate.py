"""Evaluate any RetrievalEncoder on FDRD-style datasets: Recall@1/5/10 both ways, hard negatives.

Per dataset the gallery is every readable image with its positive captions (entries naming the
same image file become one image with several captions). Negative captions do not enter the
gallery; they only feed ``hard_negative_acc``: the percentage of entries whose positive caption
scores strictly higher with their image than each of their negatives. Negatives identical to
their own positive (a known defect of published FDRD files, ~2.7% of the Flowers negatives) are
left out, since no model could rank a text above itself.

``skipped_images`` counts entries whose image is missing under the root or cannot be decoded;
their captions leave the gallery too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

from dcar.data.records import Entry
from dcar.data.sources import load_entries
from dcar.errors import DataError
from dcar.evaluation.cache import BlockCache, file_stamps, fingerprint
from dcar.evaluation.embed import blockwise, embed_images, embed_texts
from dcar.evaluation.encoders import RetrievalEncoder
from dcar.evaluation.recall import KS, hard_negative_accuracy, recall_from_ranks, retrieval_ranks
from dcar.evaluation.rerank import reranked_ranks
from dcar.evaluation.topk import rank_candidates

BLOCK_SIZE = 2048  # images per resumable block
PER_QUERY_K = 10  # candidates listed per query in per-query records
SkipReport = Callable[[str, str, str], None]


@dataclass
class EvalDataset:
    """One test set: entries with resolved images, and how many had no image file."""

    name: str
    entries: list[Entry]  # only entries whose image was found
    missing_images: int = 0
    missing_keys: list[str] = field(default_factory=list)  # the entries without an image (to name them)


def load_eval_dataset(source: str | Path, images: str | Path | None, name: str | None = None) -> EvalDataset:
    """Read a test set with :func:`~dcar.data.sources.load_entries` (strict: a bad entry is an error)."""
    data = load_entries(source, images=images)
    if data.image_root is None:
        raise DataError(f"{source}: give the folder its images are under")
    usable = data.with_images()
    if not usable:
        raise DataError(f"{source}: none of its {len(data.entries)} images found under {data.image_root}")
    return EvalDataset(
        name=name or Path(source).stem, entries=usable, missing_images=len(data.missing_images),
        missing_keys=list(data.missing_images),
    )


def evaluate(
    encoder: RetrievalEncoder,
    datasets: Sequence[EvalDataset],
    batch_size: int = 64,
    num_workers: int | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    on_skip: SkipReport | None = None,
    device: str | None = None,
    per_query: list[dict] | None = None,
) -> dict:
    """Results for every dataset plus their average, as written by ``dcar eval``.

    With ``cache_dir``, image features are saved block by block under it, so a killed evaluation
    resumes without re-encoding finished blocks (the caller removes the folder when done).
    ``on_skip(dataset, path, reason)`` is called for every image that could not be decoded.
    ``device``: where recall is computed (default CPU).
    ``per_query``: a list that receives one record per query (see :func:`per_query_records`).
    """
    per: dict[str, dict] = {}
    for ds in datasets:
        cache = None
        if cache_dir is not None:
            images = list(dict.fromkeys(e.image or "" for e in ds.entries))
            key = fingerprint(encoder.fingerprint(), BLOCK_SIZE, items=file_stamps(images))
            cache = BlockCache(Path(cache_dir) / ds.name, key)
        per[ds.name] = evaluate_dataset(encoder, ds, batch_size, num_workers, cache, progress, on_skip, device, per_query)
    return {
        "model": encoder.model,
        "method": encoder.method,
        "datasets": per,
        "avg": {
            d: {f"R@{k}": float(np.mean([r[d][f"R@{k}"] for r in per.values()])) for k in KS}
            for d in ("i2t", "t2i")
        },
    }


def evaluate_dataset(
    encoder: RetrievalEncoder,
    ds: EvalDataset,
    batch_size: int = 64,
    num_workers: int | None = None,
    cache: BlockCache | None = None,
    progress: bool = True,
    on_skip: SkipReport | None = None,
    device: str | None = None,
    per_query: list[dict] | None = None,
) -> dict:
    """One dataset's entry of the results (see module docstring)."""
    image_paths = list(dict.fromkeys(e.image for e in ds.entries))  # each file once, first-seen order
    image_feats, readable, unreadable = _embed_gallery_images(
        encoder, image_paths, batch_size, num_workers, cache, progress
    )
    if on_skip is not None:
        for line in unreadable:
            path, _, reason = line.partition("\t")
            on_skip(ds.name, path, reason)
    row_of = _rows_of(image_paths, readable)
    kept = [e for e in ds.entries if e.image in row_of]
    if not kept:
        raise DataError(f"{ds.name}: none of its images could be decoded")
    owner = np.array([row_of[e.image] for e in kept], dtype=np.int64)
    negatives = [[n for n in e.negatives if n.strip() != e.caption.strip()] for e in kept]
    texts = [e.caption for e in kept] + [n for group in negatives for n in group]
    text_feats = embed_texts(encoder, texts, batch_size=max(batch_size, 256), progress=progress)
    captions, negative_feats = text_feats[: len(kept)], text_feats[len(kept) :]
    _check_finite(ds.name, image_feats, [p for p in image_paths if p in row_of], "image")
    _check_finite(ds.name, text_feats, [e.key for e in kept] + [f"{e.key} (a negative)" for e, g in zip(kept, negatives) for _ in g], "caption")
    if getattr(encoder, "rerank_k", 0):
        readable_paths = [p for p in image_paths if p in row_of]
        frozen = embed_images(encoder.frozen_encoder(), readable_paths, batch_size, num_workers, progress=False).features
        texts_kept = [e.caption for e in kept]
        ranks, top_t, top_i = reranked_ranks(encoder, image_feats, frozen, captions, texts_kept, owner, max(batch_size, 256))
        tops = (top_t, None), (top_i, None)
    else:
        ranks = retrieval_ranks(image_feats, captions, owner, device=device)
        tops = None
    result = recall_from_ranks(ranks)
    if per_query is not None:
        if tops is None:
            i2t, t2i = rank_candidates(image_feats, captions, PER_QUERY_K), rank_candidates(captions, image_feats, PER_QUERY_K)
            tops = (i2t.indices, i2t.sims), (t2i.indices, t2i.sims)
        per_query.extend(per_query_records(ds.name, kept, owner, ranks, tops))
    has_negatives = len(negative_feats) > 0
    groups = np.split(negative_feats, np.cumsum([len(g) for g in negatives])[:-1]) if has_negatives else []
    return {
        **result,
        "hard_negative_acc": hard_negative_accuracy(image_feats[owner], captions, groups) if has_negatives else None,
        "n_images": int(image_feats.shape[0]),
        "n_captions": len(kept),
        "skipped_images": ds.missing_images + len(unreadable),
    }


def per_query_records(name: str, kept: list[Entry], owner: np.ndarray, ranks, tops) -> list[dict]:
    """One record per query: ``{dataset, direction, query, category, rank, relevant, top, scores}``.

    Image queries (``i2t``) are named by the key of their image's first entry, caption queries
    (``t2i``) by their entry's key; ``top`` lists the first candidates' names (captions by entry
    key, images like image queries), ``scores`` their similarities (null after re-ranking).
    ``rank`` is the 0-based rank of the query's (best) positive, as Recall@K counts it.
    """
    first = {}
    for e, row in zip(kept, owner):
        first.setdefault(int(row), e)
    image_names = [first[r].key for r in range(len(first))]
    caption_names = [e.key for e in kept]
    captions_of: dict[int, list[str]] = {}
    for e, row in zip(kept, owner):
        captions_of.setdefault(int(row), []).append(e.key)
    out = []
    (i2t_top, i2t_sims), (t2i_top, t2i_sims) = tops
    for r in range(len(image_names)):
        out.append({"dataset": name, "direction": "i2t", "query": image_names[r], "category": first[r].category,
                    "rank": int(ranks.i2t[r]), "relevant": captions_of[r],
                    "top": [caption_names[j] for j in i2t_top[r][:PER_QUERY_K]],
                    "scores": None if i2t_sims is None else [round(float(x), 6) for x in i2t_sims[r][:PER_QUERY_K]]})
    for c, e in enumerate(kept):
        out.append({"dataset": name, "direction": "t2i", "query": e.key, "category": e.category,
                    "rank": int(ranks.t2i[c]), "relevant": [image_names[int(owner[c])]],
                    "top": [image_names[j] for j in t2i_top[c][:PER_QUERY_K]],
                    "scores": None if t2i_sims is None else [round(float(x), 6) for x in t2i_sims[c][:PER_QUERY_K]]})
    return out


def _check_finite(dataset: str, features: np.ndarray, names: list[str], what: str) -> None:
    """A NaN or infinite feature would rank arbitrarily and yield a meaningless recall: stop."""
    bad = np.flatnonzero(~np.isfinite(features).all(axis=1)) if features.size else []
    if len(bad):
        raise DataError(
            f"{dataset}: the model gave non-finite features for {len(bad)} {what}s (first: {names[bad[0]]}); "
            "the model or checkpoint is broken (diverged training?), no score computed"
        )


def _rows_of(paths: list[str], readable: np.ndarray) -> dict[str, int]:
    """Image path -> its row among the readable images' features."""
    rows = np.cumsum(readable) - 1
    return {p: int(rows[i]) for i, p in enumerate(paths) if readable[i]}


def _embed_gallery_images(encoder, paths, batch_size, num_workers, cache, progress):
    """Features of the readable images (rows in path order), the readable mask and the
    "path<TAB>reason" of each unreadable image, resumably."""
    bar = tqdm(total=len(paths), unit="image", desc="embedding images", leave=False, disable=not progress)

    def compute(start: int, stop: int) -> dict[str, np.ndarray]:
        got = embed_images(encoder, paths[start:stop], batch_size, num_workers, progress=bar.update)
        skipped = np.array([f"{path}\t{why}" for _, path, why in got.skipped], dtype=str)
        return {"features": got.features, "ok": got.ok, "skipped": skipped}

    try:
        blocks = blockwise(len(paths), BLOCK_SIZE, compute, cache, on_cached=bar.update)
    finally:
        bar.close()
    readable = np.concatenate([b["ok"] for b in blocks])
    feats = [b["features"] for b in blocks if b["features"].size]
    features = np.concatenate(feats) if feats else np.zeros((0, 0), dtype=np.float32)
    return features, readable, [str(s) for b in blocks for s in b["skipped"]]
