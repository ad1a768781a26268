"""Reviewed decisions as data: FDRD for `dcar train` (the loop from operation back to training),
Label Studio tasks (with the model's prediction and score), or JSON lines (everything).

FDRD: one entry per accepted or corrected item, built from what the person confirmed:
- image -> category (``category``, ``knn``): the image with the confirmed category; its caption is
  the policy's category template (``"a photo of a {}."``) unless the item carries none;
- image -> caption (``i2t``): the image with the confirmed caption; a correction keeps the wrong
  proposal as a hard negative;
- caption -> image (``t2i``): the confirmed image with the query caption.
Image paths are written relative to their common folder, which `dcar train --images` is given.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from dcar.atomic import atomic_path, write_json_atomic
from dcar.data.records import Entry, write_fdrd
from dcar.errors import DcarError
from dcar.review.queue import Item, ReviewQueue

FORMATS = ("fdrd", "labelstudio", "jsonl")
DEFAULT_TEMPLATE = "a photo of a {}."


def _image_path(match: str) -> str:
    """Catalog matches are shown as "category: path" (knn) or a path (t2i)."""
    return match.split(": ", 1)[1] if ": " in match and not Path(match).exists() else match


def training_entries(items: list[Item], template: str = DEFAULT_TEMPLATE) -> list[Entry]:
    out = []
    for it in items:
        if it.decision not in ("accept", "correct") or not it.label:
            continue
        key = f"review-{it.id}"
        if it.task in ("category", "knn"):
            category = it.label.split(": ", 1)[0] if it.task == "knn" else it.label
            out.append(Entry(key, template.replace("{}", category), category, it.query))
        elif it.task == "i2t":
            negatives = [it.proposed] if it.decision == "correct" and it.proposed != it.label else []
            out.append(Entry(key, it.label, it.category or "unknown", it.query, negatives))
        elif it.task == "t2i":
            out.append(Entry(key, it.query, it.category or "unknown", _image_path(it.label)))
    return out


def export_fdrd(items: list[Item], out: Path, template: str = DEFAULT_TEMPLATE) -> tuple[int, Path | None]:
    """Write the FDRD file; returns (entries, the image root to train with)."""
    entries = training_entries(items, template)
    if not entries:
        raise DcarError("no accepted or corrected decisions to export yet")
    root = Path(os.path.commonpath([str(Path(e.image).resolve().parent) for e in entries]))
    for e in entries:
        e.image = str(Path(e.image).resolve().relative_to(root))
    write_fdrd(entries, out)
    return len(entries), root


def labelstudio_tasks(items: list[Item]) -> list[dict]:
    """Label Studio import format: data, the model's prediction with its score, and the person's
    decision as an annotation where there is one."""
    tasks = []
    for it in items:
        data = {"image": it.query} if it.query_kind == "image" else {"text": it.query}
        data.update({"item_id": it.id, "task": it.task, "candidates": [c["match"] for c in it.candidates]})
        choice = {"from_name": "match", "to_name": "image" if it.query_kind == "image" else "text", "type": "choices"}
        task = {"data": data, "predictions": [{"model_version": it.policy or "dcar", "score": it.score,
                                               "result": [{**choice, "value": {"choices": [it.proposed]}}]}]}
        if it.decision in ("accept", "correct"):
            task["annotations"] = [{"completed_by": it.reviewer, "created_at": it.decided_at,
                                    "result": [{**choice, "value": {"choices": [it.label]}}]}]
        elif it.decision == "reject":
            task["annotations"] = [{"completed_by": it.reviewer, "created_at": it.decided_at, "result": [],
                                    "was_cancelled": False, "meta": {"decision": "reject"}}]
        tasks.append(task)
    return tasks


def export(queue: ReviewQueue, fmt: str, out: Path, template: str = DEFAULT_TEMPLATE) -> str:
    """Write ``out`` in ``fmt``; returns a one-line summary."""
    if fmt not in FORMATS:
        raise DcarError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    items = queue.items("all")
    if fmt == "fdrd":
        n, root = export_fdrd(items, out, template)
        return f"wrote {n} training entries to {out}; train with: dcar train --train {out} --images {root} ..."
    if fmt == "labelstudio":
        write_json_atomic(labelstudio_tasks(items), out)
        return f"wrote {len(items)} Label Studio tasks to {out}"
    with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for it in items:
            f.write(json.dumps(it.__dict__, ensure_ascii=False) + "\n")
    return f"wrote {len(items)} items to {out}"
