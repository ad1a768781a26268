"""The in-memory record every data source produces and every consumer reads.

FDRD files, image folders, CSV/JSONL lists and the synthetic world all become a list of
:class:`Entry`; training, evaluation, negative generation and caption building take that list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dcar.atomic import write_json_atomic


@dataclass
class Entry:
    """One image with its positive caption, fine category and (optionally) hard negatives."""

    key: str  # unique id (the FDRD key)
    caption: str  # positive caption ("" when it is still to be built)
    category: str  # fine category (subcategory) name
    image: str | None = None  # image path as written in the source (resolved later against a root)
    negatives: list[str] = field(default_factory=list)
    meta_category: str | None = None


def write_fdrd(entries: list[Entry], path: str | Path, file_path_root: str | None = None) -> None:
    """Write entries in the published FDRD layout (one object keyed by image id).

    ``file_path`` is the image path joined to ``file_path_root`` when given, else the image path
    itself; readers resolve it against a user-given root anyway.
    """
    out: dict[str, dict] = {}
    for number, e in enumerate(entries):
        file_name = Path(e.image).name if e.image else f"{e.key}.jpg"
        file_path = str(Path(file_path_root) / e.image) if file_path_root and e.image else (e.image or "")
        out[e.key] = {
            "file_name": file_name,
            "file_path": file_path,
            "class_name": e.category,
            "positive": e.caption,
            "negative": list(e.negatives),
            "number": number,
        }
    write_json_atomic(out, path)
