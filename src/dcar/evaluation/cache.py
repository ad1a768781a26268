"""Finished blocks of a long embedding job, kept on disk so that a killed job resumes where it was.

A cache is a folder of ``block_NNNNN.npz`` files plus ``fingerprint.txt``. The fingerprint covers
everything the blocks depend on (the encoder and its weights, the inputs with each image file's
size and modification time, the block size); a cache with another
fingerprint is wiped rather than reused. Blocks are written atomically, so a kill mid-write leaves
no half block behind. Files are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from dcar.atomic import atomic_path


def fingerprint(*parts: object, items: Iterable[str] = ()) -> str:
    """A digest of ``parts`` and of every string in ``items`` (e.g. the list being embedded)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(repr(p).encode())
        h.update(b"\0")
    for s in items:
        h.update(s.encode("utf-8", "surrogatepass"))
        h.update(b"\n")
    return h.hexdigest()


def file_stamps(paths: Iterable[str]) -> Iterator[str]:
    """``path, size, mtime`` of each file, for a fingerprint: an image replaced under the same name
    (or touched) invalidates the cached blocks instead of lending them its old features."""
    for p in paths:
        try:
            st = os.stat(p)
            yield f"{p}\t{st.st_size}\t{st.st_mtime_ns}"
        except (OSError, ValueError):  # ValueError: a NUL character in the path
            yield f"{p}\tmissing"


class BlockCache:
    """Resumable storage for arrays computed block by block."""

    def __init__(self, folder: str | Path, key: str):
        self.folder = Path(folder)
        stamp = self.folder / "fingerprint.txt"
        if self.folder.exists() and (not stamp.is_file() or stamp.read_text().strip() != key):
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        if not stamp.is_file():
            stamp.write_text(key + "\n")

    def _path(self, index: int) -> Path:
        return self.folder / f"block_{index:05d}.npz"

    def get(self, index: int) -> dict[str, np.ndarray] | None:
        path = self._path(index)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError):  # unreadable leftovers are recomputed, not trusted
            path.unlink(missing_ok=True)
            return None

    def put(self, index: int, **arrays: np.ndarray) -> None:
        with atomic_path(self._path(index)) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        parent = self.folder.parent
        if parent.name.endswith(".parts") and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()


def save_npy_atomic(array: np.ndarray, path: str | Path) -> None:
    """``np.save`` through a temporary file in the same folder, then ``os.replace``."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array, allow_pickle=False)
