"""Read FDRD caption files as the paper's authors published them, in all their variants.

An FDRD file is one JSON object keyed by image id; each value holds ``positive`` (the caption),
``negative`` (hard-negative captions: four, or an empty list in early releases), usually
``class_name`` and ``file_name``, and ``file_path`` (the authors' own disk path, or the placeholder
``YOUR_IMAGE_PATH``). Other published files drop ``class_name`` and name images like
``707-320_1514522`` or ``Sphynx_43``; the class is then derived from the key.

Bad entries: by default (``strict=True``) the first entry without a usable ``positive`` (or with a
malformed ``negative``) raises :class:`DataError` naming the file and the key, because evaluation
numbers computed on a silently shrunken test set would not be comparable. ``strict=False`` (used by
``dcar data validate`` to list *all* problems at once) skips such entries and counts them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from dcar.data.image_index import ImageIndex, Resolution, resolve_images
from dcar.data.images import is_image_file
from dcar.data.records import Entry
from dcar.files import read_json, text_problem
from dcar.errors import DataError

# Trailing image number: "<class>_image_<digits>" (Flowers, Caltech) or "<class>_<digits>"
# (FGVC-Aircraft "707-320_1514522", Oxford Pets "Sphynx_43").
_KEY_SUFFIXES = (re.compile(r"^(?P<cls>.+?)_image_\d+$"), re.compile(r"^(?P<cls>.+)_\d+$"))


def category_from_key(key: str) -> str | None:
    """The class encoded in an image key, or None when the key has no numeric suffix."""
    stem = PurePath(key).stem if is_image_file(key) else key
    for pattern in _KEY_SUFFIXES:
        m = pattern.match(stem)
        if m:
            return m.group("cls")
    return None


@dataclass
class FdrdFile:
    """The entries of one FDRD file and what was noticed while reading it."""

    path: Path
    entries: list[Entry]
    skipped: list[str] = field(default_factory=list)  # "key: reason", one per skipped entry
    class_from_key: int = 0  # entries whose category was derived from the key
    identical_negatives: int = 0  # negative captions equal to their own positive
    entries_with_identical_negatives: int = 0
    duplicate_keys: list[str] = field(default_factory=list)  # later value kept, like json.load
    problems: list[str] = field(default_factory=list)  # warnings, readable one-liners
    resolution: Resolution | None = None  # set when an image root was given

    @property
    def classes(self) -> list[str]:
        return sorted({e.category for e in self.entries})

    @property
    def negatives_min(self) -> int:
        return min((len(e.negatives) for e in self.entries), default=0)

    @property
    def negatives_max(self) -> int:
        return max((len(e.negatives) for e in self.entries), default=0)


def load_fdrd(
    path: str | Path, images: str | Path | ImageIndex | None = None, strict: bool = True
) -> FdrdFile:
    """Read an FDRD JSON file; with ``images``, find every entry's image under that root.

    Found images replace ``Entry.image`` by their absolute path; entries whose image is not found
    keep the path as written and are listed in ``resolution.missing``.
    """
    path = Path(path)
    duplicates: list[str] = []
    obj = _read_json(path, duplicates)
    if not isinstance(obj, dict):
        raise DataError(
            f"{path}: an FDRD file is a JSON object keyed by image id, got a JSON {type(obj).__name__}"
        )
    if not obj:
        raise DataError(f"{path}: the file contains no entries")
    out = FdrdFile(path=path, entries=[], duplicate_keys=duplicates)
    underivable: list[str] = []
    for key, value in obj.items():
        try:
            entry, class_source = _parse_entry(key, value)
        except _BadEntry as err:
            if strict:
                raise DataError(f"{path}: entry {key!r}: {err}") from None
            out.skipped.append(f"{key}: {err}")
            continue
        if class_source == "whole key":
            underivable.append(key)
        out.class_from_key += class_source != "class_name"
        same = sum(n.strip() == entry.caption.strip() for n in entry.negatives)
        out.identical_negatives += same
        out.entries_with_identical_negatives += same > 0
        out.entries.append(entry)
    if not out.entries:
        raise DataError(f"{path}: no usable entry (first problem: {out.skipped[0]})")
    _summarise(out, underivable)
    if images is not None:
        attach_images(out.entries, out, images)
    return out


def attach_images(entries: list[Entry], out: FdrdFile, images: str | Path | ImageIndex) -> None:
    """Resolve images under ``images`` and record the result (and problems) on ``out``."""
    res = resolve_images(entries, images)
    for e in entries:
        if e.key in res.found:
            e.image = str(res.found[e.key])
    out.resolution = res
    if res.missing:
        out.problems.append(
            f"{len(res.missing)} of {len(entries)} images not found under {res.root} "
            f"(first: {res.missing[0]!r})"
        )
    if res.ambiguous:
        out.problems.append(
            f"{len(res.ambiguous)} entries match several files by name only and were not guessed "
            f"(first: {res.ambiguous[0]!r})"
        )


class _BadEntry(Exception):
    pass


def _read_json(path: Path, duplicates: list[str]) -> object:
    def pairs(items: list[tuple[str, object]]) -> dict:
        d: dict = {}
        for k, v in items:
            if k in d:
                duplicates.append(k)
            d[k] = v
        return d

    return read_json(path, "FDRD JSON file", object_pairs_hook=pairs)


def _parse_entry(key: str, value: object) -> tuple[Entry, str]:
    """One FDRD value as an Entry, and where its category came from: "class_name", "key suffix"
    or "whole key"."""
    if not isinstance(value, dict):
        raise _BadEntry(f"expected an object, got {type(value).__name__}")
    positive = value.get("positive")
    if not isinstance(positive, str):
        raise _BadEntry("missing 'positive' caption" if positive is None else "'positive' is not a string")
    negatives = value.get("negative", value.get("negatives", []))
    if negatives is None:
        negatives = []
    if not isinstance(negatives, list) or not all(isinstance(n, str) for n in negatives):
        raise _BadEntry("'negative' must be a list of strings")
    class_name = value.get("class_name")
    for field_name, text in [("key", key), ("positive", positive), ("class_name", class_name)] + [("negative", n) for n in negatives]:
        if isinstance(text, str) and (problem := text_problem(text)):
            raise _BadEntry(f"{field_name!r}: {problem}")
    if isinstance(class_name, str) and class_name.strip():
        category, class_source = class_name.strip(), "class_name"
    elif (derived := category_from_key(key)) is not None:
        category, class_source = derived, "key suffix"
    else:
        category, class_source = (PurePath(key).stem if is_image_file(key) else key), "whole key"
    meta = value.get("meta_category")
    entry = Entry(
        key=key,
        caption=positive,
        category=category,
        image=_image_hint(value),
        negatives=list(negatives),
        meta_category=meta if isinstance(meta, str) and meta else None,
    )
    return entry, class_source


def _image_hint(value: dict) -> str | None:
    """The most useful image path the entry offers: ``file_path`` when it looks like an image path
    (not a placeholder like ``YOUR_IMAGE_PATH``), else ``file_name``."""
    file_path = value.get("file_path")
    if isinstance(file_path, str) and is_image_file(file_path):
        return file_path
    file_name = value.get("file_name")
    return file_name if isinstance(file_name, str) and file_name else None


def _summarise(out: FdrdFile, underivable: list[str]) -> None:
    if out.skipped:
        out.problems.append(f"{len(out.skipped)} entries skipped (first: {out.skipped[0]})")
    if out.duplicate_keys:
        out.problems.append(
            f"{len(out.duplicate_keys)} duplicate keys, the later value kept (first: {out.duplicate_keys[0]!r})"
        )
    if underivable:
        out.problems.append(
            f"{len(underivable)} entries have no class_name and no numeric suffix in the key; "
            f"the key itself is used as the class (first: {underivable[0]!r})"
        )
    if out.identical_negatives:
        total = sum(len(e.negatives) for e in out.entries)
        out.problems.append(
            f"{out.identical_negatives} of {total} negatives ({100 * out.identical_negatives / total:.1f}%) "
            f"are identical to their positive caption ({out.entries_with_identical_negatives} entries)"
        )
    if out.negatives_min != out.negatives_max:
        out.problems.append(f"entries have between {out.negatives_min} and {out.negatives_max} negatives")
    empty = sum(not e.caption.strip() for e in out.entries)
    if empty:
        out.problems.append(f"{empty} entries have an empty positive caption")
