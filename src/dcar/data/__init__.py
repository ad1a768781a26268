"""Datasets: the shared Entry record, FDRD files, CSV/JSONL/image-folder sources, image decoding.

Most callers need only :func:`load_entries` (any source, images found) and :func:`load_image`.
"""

from dcar.data.fdrd import FdrdFile, load_fdrd
from dcar.data.images import UnreadableImage, load_image
from dcar.data.records import Entry
from dcar.data.sources import LoadedEntries, load_entries

__all__ = ["Entry", "FdrdFile", "LoadedEntries", "UnreadableImage", "load_entries", "load_fdrd", "load_image"]
