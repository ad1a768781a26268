"""What `dcar data build` reads: anything :func:`dcar.data.sources.load_entries` reads, plus a
flat folder of images whose file names carry the class as FDRD keys do
(``monkshood_image_06422.jpg``), the layout the FDRD authors captioned from."""

from __future__ import annotations

from pathlib import Path, PurePath

from dcar.data.fdrd import category_from_key
from dcar.data.image_index import ImageIndex
from dcar.data.records import Entry
from dcar.data.sources import LoadedEntries, load_entries
from dcar.errors import DataError


def load_build_input(source: str | Path, images: str | Path | None = None) -> LoadedEntries:
    """Labelled images to caption: class folders, a flat FDRD-named folder, CSV/JSONL or FDRD.

    Bad rows are skipped and listed in ``skipped`` (a build of thousands of images should not
    stop on one bad row); entries whose image is not found are listed in ``missing_images``.
    """
    path = Path(source)
    if path.is_dir():
        index = ImageIndex(path)
        if index.by_rel and all("/" not in rel for rel in index.by_rel):
            return load_flat_folder(path, index)
    return load_entries(path, images=images, strict=False)


def load_flat_folder(root: str | Path, index: ImageIndex | None = None) -> LoadedEntries:
    """``root/<class>_image_<n>.jpg`` (or ``<class>_<n>``): key = file stem, class from the key."""
    index = index or ImageIndex(root)
    out = LoadedEntries(path=Path(root), format="folder", entries=[], image_root=index.root)
    for rel, image in index.by_rel.items():
        key = PurePath(rel).stem
        category = category_from_key(key)
        if category is None:
            out.skipped.append(f"{rel}: no class in the file name (expected <class>_image_<number>)")
            continue
        out.entries.append(Entry(key=key, caption="", category=category, image=str(image)))
    if not out.entries:
        raise DataError(f"{root}: no image names carry a class (expected <class>_image_<number>.jpg or class sub-folders)")
    if out.skipped:
        out.problems.append(f"{len(out.skipped)} images skipped (first: {out.skipped[0]})")
    return out
