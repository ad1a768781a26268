"""Small on-disk datasets for the data-layer tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_helpers import caltech_style, flower_style, save_image, write_json


@pytest.fixture
def flower_like(tmp_path: Path) -> tuple[Path, Path]:
    """(FDRD file, image root) in the Flowers layout: images named by key in one folder."""
    root = tmp_path / "images" / "flower" / "test"
    entries = {}
    for i, cls in enumerate(["monkshood", "corn_poppy", "monkshood"]):
        key = f"{cls}_image_{i:05d}"
        save_image(root / f"{key}.jpg", color=(40 * i, 100, 100))
        pos = f"This is a {cls}. A flower number {i}."
        entries[key] = flower_style(key, cls, pos, [f"This is a rose. A flower number {i}.", pos, "x", "y"])
    return write_json(tmp_path / "flower_test.json", entries), tmp_path / "images"


@pytest.fixture
def caltech_like(tmp_path: Path) -> tuple[Path, Path]:
    """(FDRD file, image root) in the Caltech layout: <class folder>/image_NNNN.jpg, flattened keys."""
    root = tmp_path / "caltech-101" / "101_ObjectCategories"
    entries = {}
    for folder, cls in [("Faces", "face"), ("yin_yang", "yin_yang"), ("Faces", "face")]:
        n = len(entries) + 1
        save_image(root / folder / f"image_{n:04d}.jpg")
        key = f"{folder}_image_{n:04d}.jpg"
        entries[key] = caltech_style(key, cls, f"This is a photo of {cls}. Number {n}.")
    return write_json(tmp_path / "inter_caltech-101_test.json", entries), tmp_path / "caltech-101"
