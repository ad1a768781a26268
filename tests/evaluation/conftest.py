"""On-disk test sets with known answers for the ColourEncoder (see eval_helpers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image


@pytest.fixture
def colour_fdrd(tmp_path: Path) -> tuple[Path, Path]:
    """(FDRD file, image root): red, green, blue images, one broken file and one missing file.

    The blue image's caption "1 0 0.5" is closer to the red image: text->image misses it at R@1.
    Red's identical negative is left out; green's negative "0 1 0" ties its positive (a loss).
    """
    root = tmp_path / "img"
    root.mkdir()
    for name, colour in [("red", (255, 0, 0)), ("green", (0, 255, 0)), ("blue", (0, 0, 255))]:
        Image.new("RGB", (12, 12), colour).save(root / f"{name}_image_01.png")
    (root / "broken_image_01.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    entries = {
        "red_image_01": {"positive": "a red", "negative": ["a blue", "a red"]},
        "green_image_01": {"positive": "a green", "negative": ["x 0 1 0"]},
        "blue_image_01": {"positive": "1 0 0.5", "negative": []},
        "broken_image_01": {"positive": "a blue", "negative": ["a red"]},
        "missing_image_01": {"positive": "a blue", "negative": []},
    }
    path = tmp_path / "colours.json"
    path.write_text(json.dumps(entries))
    return path, root
