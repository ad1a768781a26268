"""Materialise a domain split as real-looking data: FDRD JSON + an image folder + a taxonomy file.

Exported data goes through exactly the same loading path as the published FDRD files. Images are
PNG (lossless, so re-reading gives the generator's pixels). A re-run after a kill skips images
that are already there (every file is written atomically), and the JSON is written last.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from dcar.atomic import atomic_path, write_json_atomic
from dcar.data.records import Entry, write_fdrd
from dcar.data.taxonomy import write_taxonomy
from dcar.errors import DcarError
from dcar.world.captions import caption
from dcar.world.domains import get_domain, split_size
from dcar.world.render import render
from dcar.world.structural_negatives import negative_captions
from dcar.world.sample import Sample, make_sample


@dataclass(frozen=True)
class MaterialisedSplit:
    fdrd: Path  # DIR/NAME_SPLIT.json
    images: Path  # DIR/images
    taxonomy: Path  # DIR/NAME_taxonomy.json
    count: int


NEGATIVE_SOURCES = ("world", "shared")


def entry_for(s: Sample, negatives: int = 4, shared_generator=None) -> Entry:
    """The FDRD record of a sample; ``image`` is relative to the export folder.

    Negatives come from the sample's structure (:mod:`dcar.world.structural_negatives`), or from the shared
    text-based ``dcar.negatives`` generator when one is given.
    """
    text = caption(s)
    if not negatives:
        negs: list[str] = []
    elif shared_generator is not None:
        negs = [n.text for n in shared_generator.generate(text, s.subcategory, key=s.key, k=negatives)]
    else:
        negs = negative_captions(s, negatives)
    return Entry(key=s.key, caption=text, category=s.subcategory, image=f"images/{s.key}.png",
                 negatives=negs, meta_category=s.meta)


def _save_png_atomic(img, path: Path) -> None:
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


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
    image_size: int | None = None,
    negatives: int = 4,
    progress: bool = True,
    negatives_from: str = "world",
) -> MaterialisedSplit:
    """Write ``n`` samples (default: the split's standard size; ``shots`` per subcategory for a
    downstream train split) to ``out``; returns where everything went. ``image_size`` defaults to
    the domain's (64 px in world v1, 96 px in v2).

    ``negatives_from``: ``world`` (structural, exact) or ``shared`` (``dcar.negatives``).
    """
    d = get_domain(domain)
    if negatives_from not in NEGATIVE_SOURCES:
        raise DcarError(f"negatives_from must be one of {', '.join(NEGATIVE_SOURCES)}, not {negatives_from!r}")
    shared = None
    if negatives and negatives_from == "shared":
        from dcar.negatives import make_generator

        shared = make_generator(d.subcategories, k=negatives, taxonomy=d.taxonomy, seed=seed)
    count = split_size(d, split, shots) if n is None else n
    image_size = image_size or d.image_size
    out = Path(out)
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    # Images already on disk are reused only if they were drawn from this very catalog definition
    # and seed: a changed domain (colours, look, siblings) re-renders instead of mixing old images in.
    stamp = out / ".world.json"
    spec = {"domain": repr(d), "seed": seed, "image_size": image_size}
    if not (stamp.exists() and json.loads(stamp.read_text(encoding="utf-8")) == spec):
        for old in images.glob("*.png"):  # another catalog's images: none may survive a kill below
            old.unlink()
        write_json_atomic(spec, stamp)
    entries = []
    for i in tqdm(range(count), desc=f"{domain}/{split}", unit="img", disable=not progress):
        s = make_sample(d, split, i, seed)
        entry = entry_for(s, negatives, shared)
        path = out / entry.image
        if not _already_written(path, image_size):
            _save_png_atomic(render(s, image_size), path)
        entries.append(entry)
    taxonomy = out / f"{domain}_taxonomy.json"
    write_taxonomy(d.taxonomy, taxonomy)
    fdrd = out / f"{domain}_{split}.json"
    write_fdrd(entries, fdrd)
    return MaterialisedSplit(fdrd=fdrd, images=images, taxonomy=taxonomy, count=count)
