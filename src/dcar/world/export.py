"""Materialise a domain split as real-looking data: FDRD JSON + an image folder + a taxonomy file.

Exported data goes through exactly the same loading path as the published FDRD files. Images are
PNG (lossless, so re-reading gives the generator's pixels). A re-run after a kill skips images
that are already there (every file is written atomically), and the JSON is written last.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from dcar.data.records import Entry, write_fdrd
from dcar.data.taxonomy import write_taxonomy
from dcar.world.captions import caption
from dcar.world.domains import get_domain, split_size
from dcar.world.negatives import negative_captions
from dcar.world.render import DEFAULT_SIZE, render
from dcar.world.sample import Sample, make_sample


@dataclass(frozen=True)
class MaterialisedSplit:
    fdrd: Path  # DIR/NAME_SPLIT.json
    images: Path  # DIR/images
    taxonomy: Path  # DIR/NAME_taxonomy.json
    count: int


def entry_for(s: Sample, negatives: int = 4) -> Entry:
    """The FDRD record of a sample; ``image`` is relative to the export folder."""
    return Entry(
        key=s.key,
        caption=caption(s),
        category=s.subcategory,
        image=f"images/{s.key}.png",
        negatives=negative_captions(s, negatives) if negatives else [],
        meta_category=s.meta,
    )


def _save_png_atomic(img, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        img.save(tmp, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _already_written(path: Path, size: int) -> bool:
    """True when a previous (killed) run already wrote this image at this size."""
    if not path.exists():
        return False
    try:
        with Image.open(path) as im:
            return im.size == (size, size)
    except OSError:
        return False


def materialise(
    domain: str,
    split: str,
    out: str | Path,
    n: int | None = None,
    seed: int = 0,
    shots: int | None = None,
    image_size: int = DEFAULT_SIZE,
    negatives: int = 4,
    progress: bool = True,
) -> MaterialisedSplit:
    """Write ``n`` samples (default: the split's standard size; ``shots`` per subcategory for a
    downstream train split) to ``out``; returns where everything went."""
    d = get_domain(domain)
    count = split_size(d, split, shots) if n is None else n
    out = Path(out)
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    entries = []
    for i in tqdm(range(count), desc=f"{domain}/{split}", unit="img", disable=not progress):
        s = make_sample(d, split, i, seed)
        entry = entry_for(s, negatives)
        path = out / entry.image
        if not _already_written(path, image_size):
            _save_png_atomic(render(s, image_size), path)
        entries.append(entry)
    taxonomy = out / f"{domain}_taxonomy.json"
    write_taxonomy(d.taxonomy, taxonomy)
    fdrd = out / f"{domain}_{split}.json"
    write_fdrd(entries, fdrd)
    return MaterialisedSplit(fdrd=fdrd, images=images, taxonomy=taxonomy, count=count)
