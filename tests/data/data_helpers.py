"""Helpers that write small images and FDRD files for the data-layer tests."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image


def save_image(path: Path, size=(8, 6), color=(200, 30, 30), fmt: str | None = None, mode="RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path, format=fmt)
    return path


def write_json(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def flower_style(key: str, cls: str, caption: str, negatives: list[str]) -> dict:
    """An entry as in the published Flowers file: authors' absolute path, class_name, 4 negatives."""
    return {
        "file_name": key,
        "class_name": cls,
        "number": key.rsplit("_", 1)[-1],
        "file_path": f"/root/autodl-tmp/someone/flower/test/{key}.jpg",
        "positive": caption,
        "negative": negatives,
    }


def caltech_style(key: str, cls: str, caption: str) -> dict:
    """An entry as in the published Caltech file: placeholder path, key with extension, no negatives."""
    return {"file_name": key, "class_name": cls, "file_path": "YOUR_IMAGE_PATH", "positive": caption, "negative": []}
