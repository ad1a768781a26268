"""Fixtures for the index and service tests: a small catalog of drawn images (with captions and one
unreadable file) and an index of it built with the tiny random-weight model."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from dcar.api import load
from dcar.index import Index, read_catalog


@pytest.fixture(scope="session")
def catalog_dir(labelled_set, tmp_path_factory) -> Path:
    """``<class>/<image>.png`` folders of the labelled set, a captions CSV beside them, one broken JPEG."""
    entries, _ = labelled_set
    root = tmp_path_factory.mktemp("catalog")
    images = root / "images"
    rows = []
    for e in entries:
        (images / e.category).mkdir(parents=True, exist_ok=True)
        target = images / e.category / Path(e.image).name
        shutil.copy(e.image, target)
        rows.append({"image": f"{e.category}/{target.name}", "category": e.category, "caption": e.caption})
    (images / "zorblat" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with (root / "captions.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["image", "category", "caption"])
        w.writeheader()
        w.writerows(rows)
    return root


@pytest.fixture(scope="session")
def tiny_encoder(tiny_spec):
    return load(tiny_spec, device="cpu")


@pytest.fixture(scope="session")
def built_index(catalog_dir, tiny_encoder, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("index") / "idx"
    catalog = read_catalog(catalog_dir / "images", catalog_dir / "captions.csv")
    Index.build(out, tiny_encoder, catalog.items, shard_size=5, workers=0, progress=False)
    return out
