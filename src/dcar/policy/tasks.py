"""Labelled matches from a held-out set: for each query, its ranked candidates and whether the
top-1 is right. Three tasks, one per way the catalog is matched:

- ``category``: image -> category; candidates are the categories, each written into a template
  (``"a photo of a {}."``); right when the top-1 category is the image's own.
- ``i2t``: image -> caption; candidates are the set's captions; right when the top-1 caption is
  one of the image's own captions.
- ``t2i``: caption -> image; candidates are the set's images; right when the top-1 is its image.
- ``knn``: image -> catalog item; candidates are the images of a separate labelled catalog (what
  an index holds); right when the top-1 item has the query's category.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dcar.errors import DataError, DcarError
from dcar.evaluation.embed import embed_images, embed_texts
from dcar.evaluation.encoders import RetrievalEncoder
from dcar.evaluation.evaluate import EvalDataset
from dcar.evaluation.topk import Ranked, rank_candidates

TASKS = {
    "category": "image -> category",
    "i2t": "image -> caption",
    "t2i": "caption -> image",
    "knn": "image -> catalog item of the same category",
}
DEFAULT_TEMPLATE = "a photo of a {}."


@dataclass
class LabelledMatches:
    """Matches of labelled queries: what calibration learns thresholds from."""

    task: str
    ranked: Ranked
    correct: np.ndarray  # [Q] bool: the top-1 candidate is right
    categories: list[str]  # category task: the candidate categories, in candidate order
    skipped_images: int = 0


def check_task(task: str) -> str:
    if task not in TASKS:
        raise DcarError(f"unknown task {task!r}: expected one of {', '.join(TASKS)}")
    return task


def category_texts(categories: list[str], template: str) -> list[str]:
    if "{}" not in template:
        raise DcarError(f"template {template!r} has no {{}} for the category name")
    return [template.replace("{}", c) for c in categories]


def labelled_matches(
    encoder: RetrievalEncoder,
    ds: EvalDataset,
    task: str,
    template: str = DEFAULT_TEMPLATE,
    categories: list[str] | None = None,
    batch_size: int = 64,
    workers: int | None = None,
    progress: bool = True,
    catalog: EvalDataset | None = None,
) -> LabelledMatches:
    """Embed the set and match every query of ``task`` (see module docstring)."""
    check_task(task)
    got, row_of, kept = _embedded(encoder, ds, batch_size, workers, progress)
    skipped = ds.missing_images + len(got.skipped)
    if task == "knn":
        if catalog is None:
            raise DcarError("the knn task matches against a labelled catalog: give --catalog FILE")
        cat, cat_rows, cat_kept = _embedded(encoder, catalog, batch_size, workers, progress)
        cat_label = np.empty(len(cat.features), dtype=object)
        for e in cat_kept:
            cat_label[cat_rows[e.image]] = e.category
        label = np.empty(len(got.features), dtype=object)
        for e in kept:
            label[row_of[e.image]] = e.category
        ranked = rank_candidates(got.features, cat.features)
        return LabelledMatches(task, ranked, cat_label[ranked.indices[:, 0]] == label, [], skipped)
    if task == "category":
        cats = list(categories) if categories else sorted({e.category for e in kept})
        unknown = sorted({e.category for e in kept} - set(cats))
        if unknown:
            raise DataError(f"{ds.name}: category {unknown[0]!r} is not among the policy's {len(cats)} categories")
        label = {row_of[e.image]: cats.index(e.category) for e in kept}
        cand = embed_texts(encoder, category_texts(cats, template), batch_size=max(batch_size, 256), progress=False)
        ranked = rank_candidates(got.features, cand)
        truth = np.array([label[r] for r in range(len(got.features))])
        return LabelledMatches(task, ranked, ranked.indices[:, 0] == truth, cats, skipped)
    owner = np.array([row_of[e.image] for e in kept])
    captions = embed_texts(encoder, [e.caption for e in kept], batch_size=max(batch_size, 256), progress=progress)
    if task == "i2t":
        ranked = rank_candidates(got.features, captions)
        return LabelledMatches(task, ranked, owner[ranked.indices[:, 0]] == np.arange(len(got.features)), [], skipped)
    ranked = rank_candidates(captions, got.features)
    return LabelledMatches(task, ranked, ranked.indices[:, 0] == owner, [], skipped)


def index_matches(index, encoder: RetrievalEncoder, ds: EvalDataset, batch_size: int = 64,
                  workers: int | None = None, progress: bool = True) -> LabelledMatches:
    """The ``knn`` task against a built index (:class:`dcar.index.Index`): each held-out image's
    nearest indexed items; right when the first has the image's category."""
    got, row_of, kept = _embedded(encoder, ds, batch_size, workers, progress)
    indexed = {str(p) for p in index.table.column("path").to_pylist()}
    overlap = [e.image for e in kept if str(e.image) in indexed]
    if overlap:
        raise DataError(f"{ds.name}: {len(overlap)} of its images are in the index (first: {overlap[0]}); "
                        "calibrate on held-out images that the index does not hold")
    scores, ids = index.search(got.features, 10, "images")
    if ids.shape[1] < 2:
        raise DataError("the index holds fewer than 2 items: nothing to calibrate a margin on")
    categories = np.array(index.table.column("category").to_pylist(), dtype=object)
    label = np.empty(len(got.features), dtype=object)
    for e in kept:
        label[row_of[e.image]] = e.category
    ranked = Ranked(ids.astype(np.int64), scores.astype(np.float32))
    return LabelledMatches("knn", ranked, categories[ids[:, 0]] == label, [], ds.missing_images + len(got.skipped))


def _embedded(encoder, ds: EvalDataset, batch_size: int, workers: int | None, progress: bool):
    """A set's image features (each file once), the row of each readable file, the entries kept."""
    paths = list(dict.fromkeys(e.image for e in ds.entries))
    got = embed_images(encoder, paths, batch_size, workers, progress=progress)
    row_of = {p: r for r, p in enumerate(p for p, ok in zip(paths, got.ok) if ok)}
    kept = [e for e in ds.entries if e.image in row_of]
    if not kept:
        raise DataError(f"{ds.name}: none of its images could be decoded")
    return got, row_of, kept
