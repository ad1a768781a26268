"""Check a dataset before spending hours on it: counts, caption lengths, missing and broken images.

:func:`validate` reads any source :func:`~dcar.data.sources.load_entries` reads (bad entries are
skipped and listed, not fatal) and returns a JSON-ready report. Images are decoded (in a thread
pool: Pillow releases the GIL while decoding) whenever their root is known: always for image
folders and tables, with ``images`` for FDRD files.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from dcar.backbone.tokenizer import CLIP_CONTEXT_LENGTH, count_over_length
from dcar.data.images import UnreadableImage, load_image
from dcar.data.sources import LoadedEntries, load_entries

MAX_LISTED = 5  # examples per problem kind, so the report stays readable on 100k-entry files


def check_images(
    paths: list[str], workers: int | None = None, progress: Callable[[int], None] | None = None
) -> list[tuple[str, str]]:
    """Decode every image; return ``(path, reason)`` for each one that fails."""
    workers = workers or min(8, 2 * (os.cpu_count() or 1))

    def one(path: str) -> tuple[str, str] | None:
        try:
            load_image(path)
            return None
        except UnreadableImage as err:
            return (path, err.reason)

    failures = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for result in pool.map(one, paths):
            if result is not None:
                failures.append(result)
            if progress is not None:
                progress(1)
    return failures


def validate(
    source: str | Path,
    images: str | Path | None = None,
    decode: bool = True,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    context_length: int = CLIP_CONTEXT_LENGTH,
) -> dict:
    """A report on ``source`` (see ``dcar data validate --help`` for the keys).

    ``missing_images`` / ``unreadable_images`` are ``None`` when they were not checked (an FDRD file
    without ``images``; ``decode=False``). ``progress(n)`` is called as images are decoded, after
    ``on_total(count)``. Raises :class:`DataError` only when the source cannot be read at all.
    """
    data = load_entries(source, images=images, strict=False)
    entries = data.entries
    negatives = [n for e in entries for n in e.negatives]
    identical = sum(n.strip() == e.caption.strip() for e in entries for n in e.negatives)
    report: dict = {
        "source": str(source),
        "format": data.format,
        "entries": len(entries),
        "classes": len(data.classes),
        "skipped_entries": len(data.skipped),
        "negatives_min": min((len(e.negatives) for e in entries), default=0),
        "negatives_max": max((len(e.negatives) for e in entries), default=0),
        "identical_negatives": identical,
        "empty_captions": sum(not e.caption.strip() for e in entries),
        "over_length_captions": count_over_length((e.caption for e in entries if e.caption), context_length),
        "over_length_negatives": count_over_length(negatives, context_length),
        "image_root": str(data.image_root) if data.image_root else None,
        "missing_images": len(data.missing_images) if data.image_root else None,
        "unreadable_images": None,
        "problems": list(data.problems),
    }
    report["problems"] += [f"skipped: {s}" for s in data.skipped[:MAX_LISTED]]
    if data.skipped:  # say what the other commands will do with them, so validate and eval agree
        report["problems"].append(
            f"{len(data.skipped)} entries cannot be read: `dcar train` and `dcar eval` stop on them, "
            "`dcar data build`, `negatives` and `split` skip them"
        )
    if report["over_length_captions"]:
        report["problems"].append(
            f"{report['over_length_captions']} captions exceed the {context_length}-token text context "
            "and will be truncated"
        )
    if data.image_root and decode:
        _decode_all(data, report, workers, progress, on_total)
    return report


def _decode_all(data: LoadedEntries, report: dict, workers, progress, on_total) -> None:
    paths = sorted({e.image for e in data.with_images() if e.image})
    if on_total is not None:
        on_total(len(paths))
    failures = check_images(paths, workers=workers, progress=progress)
    report["unreadable_images"] = len(failures)
    if failures:
        report["problems"].append(f"{len(failures)} of {len(paths)} images cannot be decoded")
        report["problems"] += [f"unreadable: {p} ({why})" for p, why in failures[:MAX_LISTED]]
