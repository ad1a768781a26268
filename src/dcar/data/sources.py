"""One entry point for every labelled-image source: FDRD JSON, CSV, JSONL or an image folder.

:func:`load_entries` detects the format, reads it into :class:`~dcar.data.records.Entry` objects
and finds each image. Captions are optional everywhere except FDRD (a caption builder reads
uncaptioned sources through here); a missing caption is ``""``.

Detection, in order: a folder is an image-folder dataset (one sub-folder per class); ``.csv`` /
``.tsv`` is a table; ``.jsonl`` / ``.ndjson`` is JSON Lines; ``.json`` is FDRD; any other file is
sniffed: a JSON object document is FDRD, one object per line is JSONL, anything else is CSV.

Tables (CSV and JSONL) have the fields ``image`` and ``category`` (required), ``caption`` and
``meta_category`` (optional) and ``key`` (optional; default: the image value). Several rows may
name the same image (several captions per image): their keys get ``#2``, ``#3``, ... and evaluation
groups them back by image file. Relative image paths are relative to ``images`` when given,
else to the table's own folder.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Literal

from dcar.data.fdrd import load_fdrd
from dcar.data.image_index import ImageIndex, resolve_images
from dcar.data.records import Entry
from dcar.errors import DataError
from dcar.files import check_readable_file, text_problem

Format = Literal["fdrd", "csv", "jsonl", "folder"]


@dataclass
class LoadedEntries:
    """Entries read from one source. ``Entry.image`` is the absolute image path when found."""

    path: Path
    format: Format
    entries: list[Entry]
    image_root: Path | None = None  # where images were looked for (None: not checked)
    missing_images: list[str] = field(default_factory=list)  # keys of entries without an image
    skipped: list[str] = field(default_factory=list)  # "where: reason" per skipped entry
    problems: list[str] = field(default_factory=list)  # warnings, one line each
    extra: dict = field(default_factory=dict)  # format-specific counters (FDRD: see FdrdFile)

    @property
    def classes(self) -> list[str]:
        return sorted({e.category for e in self.entries})

    def with_images(self) -> list[Entry]:
        """The entries whose image was found (what training and evaluation can use)."""
        missing = set(self.missing_images)
        return [e for e in self.entries if e.key not in missing]


def detect_format(source: str | Path) -> Format:
    source = Path(source)
    if source.is_dir():
        return "folder"
    if not source.exists():
        raise DataError(f"{source}: file or folder not found")
    check_readable_file(source, "dataset file")  # a named pipe would block the reads below
    suffix = source.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".json":
        return "fdrd"
    return _sniff(source)


def load_entries(
    source: str | Path, images: str | Path | None = None, strict: bool = True
) -> LoadedEntries:
    """Read any supported source (see module docstring) and find its images.

    ``images``: the root to find images under (FDRD: required to check images at all; tables:
    overrides the table's folder; image folders: ignored, the folder is the root).
    ``strict``: a bad entry raises :class:`DataError` (default) or is skipped and counted.
    """
    source = Path(source)
    fmt = detect_format(source)
    if fmt == "folder":
        return load_image_folder(source)
    if fmt == "fdrd":
        f = load_fdrd(source, images=images, strict=strict)
        res = f.resolution
        return LoadedEntries(
            path=source,
            format="fdrd",
            entries=f.entries,
            image_root=res.root if res else None,
            missing_images=list(res.missing) if res else [],
            skipped=f.skipped,
            problems=f.problems,
            extra={
                "class_from_key": f.class_from_key,
                "identical_negatives": f.identical_negatives,
                "entries_with_identical_negatives": f.entries_with_identical_negatives,
                "duplicate_keys": len(f.duplicate_keys),
            },
        )
    return load_table(source, fmt, images=images, strict=strict)


def load_image_folder(root: str | Path) -> LoadedEntries:
    """``root/<class>/<image>``: category = the class folder, caption empty.

    Nested class folders, ``root/<meta>/<sub>/<image>`` for every image, give a taxonomy: category =
    the sub-folder, meta-category = the folder above it. Other layouts keep the top-level folder
    as the category (``root/<class>/any/depth/<image>``).
    """
    root = Path(root)
    index = ImageIndex(root)
    out = LoadedEntries(path=root, format="folder", entries=[], image_root=index.root)
    placed = [(rel, path, rel.split("/")) for rel, path in index.by_rel.items()]
    loose = sum(1 for _, _, parts in placed if len(parts) < 2)
    classed = [(rel, path, parts) for rel, path, parts in placed if len(parts) >= 2]
    nested = bool(classed) and all(len(parts) == 3 for _, _, parts in classed)
    meta_of: dict[str, str] = {}
    for rel, path, parts in classed:
        if nested:
            meta, category = parts[0], parts[1]
            if meta_of.setdefault(category, meta) != meta:
                raise DataError(
                    f"{root}: class folder {category!r} is under both {meta_of[category]!r} and {meta!r}; "
                    "class names must be unique across meta-categories"
                )
            out.entries.append(Entry(key=rel, caption="", category=category, image=str(path), meta_category=meta))
        else:
            out.entries.append(Entry(key=rel, caption="", category=parts[0], image=str(path)))
    if loose:
        out.problems.append(f"{loose} images lie directly in {root} without a class folder and were skipped")
    if not out.entries:
        raise DataError(f"{root}: no images in class sub-folders (expected {root}/<class>/<image>)")
    return out


def load_table(
    path: str | Path, fmt: Literal["csv", "jsonl"], images: str | Path | None = None, strict: bool = True
) -> LoadedEntries:
    """A CSV or JSONL list of labelled images (fields: see module docstring)."""
    path = Path(path)
    out = LoadedEntries(path=path, format=fmt, entries=[])
    rows = _csv_rows(path) if fmt == "csv" else _jsonl_rows(path)
    seen: dict[str, int] = {}
    try:
        for where, row in rows:
            try:
                entry = _row_entry(row)
            except ValueError as err:
                if strict:
                    raise DataError(f"{path}: {where}: {err}") from None
                out.skipped.append(f"{where}: {err}")
                continue
            n = seen[entry.key] = seen.get(entry.key, 0) + 1
            if n > 1:
                entry.key = f"{entry.key}#{n}"
            out.entries.append(entry)
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from None
    if not out.entries:
        first = f" (first problem: {out.skipped[0]})" if out.skipped else ""
        raise DataError(f"{path}: no usable rows{first}")
    if out.skipped:
        out.problems.append(f"{len(out.skipped)} rows skipped (first: {out.skipped[0]})")
    _find_table_images(out, images)
    return out


def _find_table_images(out: LoadedEntries, images: str | Path | None) -> None:
    if images is not None:
        res = resolve_images(out.entries, images)
        found, out.image_root = res.found, res.root
    else:
        # No root given: paths are relative to the table. One stat per entry, no directory walk
        # (the table's folder may be large, e.g. a home directory).
        base = out.path.resolve().parent
        found = {}
        for e in out.entries:
            p = Path(e.image).expanduser()
            p = p if p.is_absolute() else base / p
            if p.is_file():
                found[e.key] = p
        out.image_root = base
    for e in out.entries:
        if e.key in found:
            e.image = str(found[e.key])
        else:
            out.missing_images.append(e.key)
    if out.missing_images:
        out.problems.append(
            f"{len(out.missing_images)} of {len(out.entries)} images not found under {out.image_root} "
            f"(first: {out.missing_images[0]!r})"
        )


def _row_entry(row: dict) -> Entry:
    if isinstance(row, _BadRow):
        raise ValueError(row.reason)

    def text(name: str) -> str:
        v = row.get(name)
        if v is None:
            return ""
        if not isinstance(v, str):
            raise ValueError(f"field {name!r} must be a string")
        if problem := text_problem(v):
            raise ValueError(f"field {name!r}: {problem}")
        return v.strip()

    image, category = text("image"), text("category")
    if not image:
        raise ValueError("empty 'image'")
    if not category:
        raise ValueError("empty 'category'")
    return Entry(
        key=text("key") or image,
        caption=text("caption"),
        category=category,
        image=image,
        meta_category=text("meta_category") or None,
    )


def _csv_rows(path: Path) -> Iterator[tuple[str, dict]]:
    with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: Excel writes a BOM
        sample = f.read(8192)
        f.seek(0)
        delimiter = "\t" if path.suffix.lower() == ".tsv" or ("\t" in sample and "," not in sample) else ","
        reader = csv.DictReader(f, delimiter=delimiter)
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        for required in ("image", "category"):
            if required not in header:
                raise DataError(f"{path}: missing column {required!r} (columns: {', '.join(header) or 'none'})")
        reader.fieldnames = header
        for row in reader:
            yield f"line {reader.line_num}", row


def _jsonl_rows(path: Path) -> Iterator[tuple[str, dict]]:
    """Rows of a JSON Lines file; blank lines are ignored, unparsable ones become a _BadRow."""
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                row = _BadRow(f"invalid JSON ({err.msg})")
            except RecursionError:
                row = _BadRow("JSON nested too deeply")
            yield f"line {lineno}", row if isinstance(row, dict) else _BadRow("expected a JSON object")


class _BadRow(dict):
    """A row that could not be parsed; passed on so that strict / skip handling stays in one place."""

    def __init__(self, reason: str):
        super().__init__()
        self.reason = reason


def _sniff(path: Path) -> Format:
    """Format of a file with an unknown extension, from its first bytes."""
    with open(path, "rb") as f:
        head = f.read(65536).lstrip()
    if not head.startswith(b"{"):
        return "csv"
    try:
        first = json.loads(head.split(b"\n", 1)[0])
    except ValueError:
        return "fdrd"  # an object spanning lines (indented), or one line longer than the sample
    # A complete object on the first line: a table row, or a whole one-line FDRD file.
    if isinstance(first, dict) and "image" not in first and all(isinstance(v, dict) for v in first.values()):
        return "fdrd"
    return "jsonl"


__all__ = ["LoadedEntries", "detect_format", "load_entries", "load_image_folder", "load_table"]
