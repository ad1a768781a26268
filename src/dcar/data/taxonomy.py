"""Taxonomy files: which meta-category each fine category (subcategory) belongs to.

Format: a JSON object ``{"subcategory": "meta-category", ...}``.
"""

from __future__ import annotations

from pathlib import Path

from dcar.atomic import write_json_atomic
from dcar.errors import DataError
from dcar.files import read_json


def read_taxonomy(path: str | Path) -> dict[str, str]:
    path = Path(path)
    obj = read_json(path, "taxonomy file")
    if not isinstance(obj, dict):
        raise DataError(f"{path}: a taxonomy is a JSON object {{subcategory: meta-category}}")
    for sub, meta in obj.items():
        if not isinstance(meta, str) or not meta:
            raise DataError(f"{path}: entry {sub!r}: meta-category must be a non-empty string")
    return dict(obj)


def write_taxonomy(taxonomy: dict[str, str], path: str | Path) -> None:
    write_json_atomic(dict(sorted(taxonomy.items())), path)


def siblings(taxonomy: dict[str, str]) -> dict[str, list[str]]:
    """For each subcategory, the other subcategories of its meta-category."""
    by_meta: dict[str, list[str]] = {}
    for sub, meta in taxonomy.items():
        by_meta.setdefault(meta, []).append(sub)
    return {sub: [s for s in by_meta[meta] if s != sub] for sub, meta in taxonomy.items()}
