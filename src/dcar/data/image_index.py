"""Find each entry's image under a user-given root, whatever the dataset's layout.

Published caption files point at images in ways that rarely match the user's disk: the authors'
absolute paths (``/root/.../flower/test/monkshood_image_06422.jpg``), a placeholder
(``YOUR_IMAGE_PATH``) with the key as the only hint, or a key that flattens the dataset's folders
(``Faces_image_0426.jpg`` for ``101_ObjectCategories/Faces/image_0426.jpg``).

:class:`ImageIndex` walks the root once and builds lookup tables, so resolving N entries costs N
dictionary look-ups, not N x candidates filesystem calls. An entry is matched, in order, by

1. its image path as written, when that is an existing absolute path or a path relative to the root;
2. the longest tail (two or more components) of that path that is a relative path under the root;
3. a unique file whose name, stem, ``<folder>_<name>`` or ``<folder>_<stem>`` equals the written
   file name, the key, or the key without its extension.

A name shared by several files (``image_0001.jpg`` in every Caltech folder) never matches by name
alone: it is counted as ambiguous and the entry as missing, rather than guessed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from dcar.data.images import is_image_file
from dcar.data.records import Entry
from dcar.errors import DataError


class ImageIndex:
    """Every image file under ``root``, indexed by relative path and by name aliases."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise DataError(f"{root}: image folder not found")
        self.by_rel: dict[str, Path] = {}
        self.by_alias: dict[str, list[Path]] = {}
        seen: set[tuple[int, int]] = set()
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=True):
            st = os.stat(dirpath)
            if (st.st_dev, st.st_ino) in seen:  # a symlink loop, or a folder linked twice
                dirnames.clear()
                continue
            seen.add((st.st_dev, st.st_ino))
            dirnames.sort()  # deterministic order, so ambiguity reports are stable
            rel_dir = Path(dirpath).relative_to(self.root)
            for name in sorted(filenames):
                if is_image_file(name):
                    self._add(rel_dir, name)

    def __len__(self) -> int:
        return len(self.by_rel)

    def _add(self, rel_dir: Path, name: str) -> None:
        path = self.root / rel_dir / name
        self.by_rel[(rel_dir / name).as_posix()] = path
        stem = PurePath(name).stem
        aliases = {name, stem}
        if rel_dir.name:
            aliases |= {f"{rel_dir.name}_{name}", f"{rel_dir.name}_{stem}"}
        for alias in aliases:
            self.by_alias.setdefault(alias, []).append(path)

    def find(self, written: str | None, key: str) -> tuple[Path | None, bool]:
        """The image for an entry, and whether a name matched several files (ambiguous)."""
        if written:
            hit = self._by_path(written)
            if hit is not None:
                return hit, False
        ambiguous = False
        for name in _name_candidates(written, key):
            paths = self.by_alias.get(name)
            if paths is None:
                continue
            if len(paths) == 1:
                return paths[0], False
            ambiguous = True
        return None, ambiguous

    def _by_path(self, written: str) -> Path | None:
        p = PurePath(written)
        if p.is_absolute():
            try:
                rel = PurePath(os.path.normpath(written)).relative_to(self.root).as_posix()
            except ValueError:
                rel = None
            if rel is not None and rel in self.by_rel:
                return self.by_rel[rel]
            if Path(written).is_file():  # outside the root but present: one stat per entry
                return Path(written)
        elif p.as_posix() in self.by_rel:
            return self.by_rel[p.as_posix()]
        parts = [x for x in p.parts if x not in ("/", "\\")]
        for start in range(1, len(parts) - 1):  # longest tail first, at least <folder>/<name>
            hit = self.by_rel.get("/".join(parts[start:]))
            if hit is not None:
                return hit
        return None


def _name_candidates(written: str | None, key: str) -> list[str]:
    names = []
    if written:
        names.append(PurePath(written.replace("\\", "/")).name)
    names += [key, PurePath(key).stem if is_image_file(key) else key]
    return list(dict.fromkeys(n for n in names if n))


@dataclass
class Resolution:
    """Where each entry's image is, and which entries have none under the root."""

    root: Path
    found: dict[str, Path] = field(default_factory=dict)  # entry key -> image file
    missing: list[str] = field(default_factory=list)  # entry keys
    ambiguous: list[str] = field(default_factory=list)  # subset of missing: name matched >1 file


def resolve_images(entries: list[Entry], root: str | Path | ImageIndex) -> Resolution:
    """Look every entry's image up in ``root`` (indexed once)."""
    index = root if isinstance(root, ImageIndex) else ImageIndex(root)
    res = Resolution(root=index.root)
    for e in entries:
        path, ambiguous = index.find(e.image, e.key)
        if path is not None:
            res.found[e.key] = path
        else:
            res.missing.append(e.key)
            if ambiguous:
                res.ambiguous.append(e.key)
    return res
