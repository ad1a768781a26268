"""What goes into an index: the catalog's images (a folder, a list or a table) and their captions.

``--images`` may be
- a folder: every image under it; the category is the first sub-folder (``root/<class>/...``),
  empty for images directly in the folder;
- a CSV / TSV / JSONL table with ``image`` and ``category`` (``caption``, ``key`` optional), read by
  the project's table reader (bad rows are skipped and counted);
- any other file: one image path per line (relative paths are relative to the current folder,
  as for ``dcar embed``).

``--captions`` (FDRD JSON, CSV or JSONL) attaches a caption, and a category where the catalog has
none, to the catalog images it names; its images are found under the ``--images`` folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dcar.files import read_text
from dcar.errors import DataError


@dataclass
class CatalogItem:
    """One catalog image: its file and what is known about it."""

    key: str
    path: str  # absolute path of the image file
    category: str = ""
    caption: str = ""


@dataclass
class Catalog:
    items: list[CatalogItem]
    problems: list[str] = field(default_factory=list)  # one line each, reported by the CLI
    missing: list[str] = field(default_factory=list)  # listed images that do not exist


def read_catalog(images: str | Path, captions: str | Path | None = None) -> Catalog:
    """The catalog named by ``images`` (see module docstring), with ``captions`` attached."""
    images = Path(images)
    if images.is_dir():
        catalog = _from_folder(images)
    elif not images.exists():
        raise DataError(f"{images}: file or folder not found")
    elif images.suffix.lower() in (".csv", ".tsv", ".jsonl", ".ndjson"):
        catalog = _from_table(images)
    else:
        catalog = _from_list(images)
    if captions is not None and catalog.items:
        _attach_captions(catalog, Path(captions), images if images.is_dir() else _common_folder(catalog, images))
    if not catalog.items:
        raise DataError(f"{images}: no images in the catalog")
    return catalog


def _from_folder(root: Path) -> Catalog:
    from dcar.data.image_index import ImageIndex

    index = ImageIndex(root)
    items = []
    for rel, path in index.by_rel.items():
        parts = rel.split("/")
        items.append(CatalogItem(key=rel, path=str(path), category=parts[0] if len(parts) > 1 else ""))
    return Catalog(items)


def _from_table(path: Path) -> Catalog:
    from dcar.data.sources import detect_format, load_table

    data = load_table(path, detect_format(path), strict=False)
    missing = set(data.missing_images)
    items = [
        CatalogItem(key=e.key, path=str(Path(e.image).resolve()), category=e.category, caption=e.caption)
        for e in data.entries
        if e.key not in missing and e.image
    ]
    return Catalog(items, problems=list(data.problems), missing=sorted(missing))


def _from_list(path: Path) -> Catalog:
    text = read_text(path, "list of image paths")
    items, missing, seen = [], [], set()
    for line in text.split("\n"):
        written = line.strip()
        if not written or written in seen:
            continue
        seen.add(written)
        p = Path(written).expanduser()
        if p.is_file():
            items.append(CatalogItem(key=written, path=str(p.resolve())))
        else:
            missing.append(written)
    catalog = Catalog(items, missing=missing)
    if missing:
        catalog.problems.append(f"{path}: {len(missing)} listed images not found (first: {missing[0]!r})")
    return catalog


def _common_folder(catalog: Catalog, images: Path) -> Path:
    """The folder holding every catalog image: where a caption file's images are looked up."""
    import os

    root = Path(os.path.commonpath([str(Path(it.path).parent) for it in catalog.items]))
    if root == Path(root.anchor):
        raise DataError(f"{images}: the images share no folder below {root}; give --images as a folder to attach captions")
    return root


def _attach_captions(catalog: Catalog, captions: Path, root: Path | None) -> None:
    from dcar.data.sources import load_entries

    data = load_entries(captions, images=root, strict=False)
    catalog.problems += [f"{captions}: {p}" for p in data.problems]
    by_path = {}
    for e in data.with_images():
        if e.image:
            by_path.setdefault(str(Path(e.image).resolve()), e)
    matched = 0
    for item in catalog.items:
        e = by_path.get(item.path)
        if e is None:
            continue
        matched += 1
        item.caption = item.caption or e.caption
        item.category = item.category or e.category
    unmatched = len(by_path) - matched
    if unmatched > 0:
        catalog.problems.append(f"{captions}: {unmatched} captioned images are not in the catalog; their captions are not indexed")
