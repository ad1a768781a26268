"""Fixtures for tests that need a model: a tiny random-weight backbone saved in open_clip's local-dir
format, and a small labelled image set with captions and a taxonomy (loaded by tests/conftest.py)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import open_clip
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from dcar.backbone import load_backbone
from dcar.data.records import Entry

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 60), "blue": (40, 60, 220), "yellow": (230, 210, 40)}
# Four fine categories in two meta-categories.
TAXONOMY = {"zorblat": "widget", "quenmore": "widget", "plarvik": "gadget", "stondrel": "gadget"}


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_open_clip_cfg) -> Path:
    folder = tmp_path_factory.mktemp("tiny-local-dir")
    torch.manual_seed(0)
    model = open_clip.CLIP(**tiny_open_clip_cfg)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    cfg = {"model_cfg": tiny_open_clip_cfg, "preprocess_cfg": {"mean": [0.5] * 3, "std": [0.25] * 3}}
    (folder / "open_clip_config.json").write_text(json.dumps(cfg))
    return folder


@pytest.fixture(scope="session")
def tiny_spec(tiny_model_dir) -> str:
    return f"open_clip:local-dir:{tiny_model_dir}"


@pytest.fixture()
def tiny_backbone(tiny_spec):
    return load_backbone(tiny_spec)


def _draw(category: str, colour: str, i: int) -> Image.Image:
    img = Image.new("RGB", (32, 32), (255, 255, 255))
    shape = list(TAXONOMY).index(category)
    x0 = 2 + (i % 3) * 4
    box = (x0, 4 + shape * 3, x0 + 14 + shape * 2, 20 + shape * 2)
    img.paste(COLOURS[colour], box)
    return img


@pytest.fixture(scope="session")
def labelled_set(tmp_path_factory) -> tuple[list[Entry], dict[str, str]]:
    """16 entries (4 categories x 4 colours) whose ``image`` is an existing PNG path."""
    folder = tmp_path_factory.mktemp("labelled")
    entries = []
    for category in TAXONOMY:
        for i, colour in enumerate(COLOURS):
            path = folder / f"{category}_{i}.png"
            _draw(category, colour, i).save(path)
            caption = f"This is a {category}. A {colour} {category} on a white background."
            entries.append(Entry(f"{category}_{i}", caption, category, str(path), meta_category=TAXONOMY[category]))
    return entries, dict(TAXONOMY)


@pytest.fixture(scope="session")
def labelled_csv(labelled_set, tmp_path_factory) -> tuple[Path, Path]:
    """(CSV table, image root) of :func:`labelled_set`: what `dcar train --train --images` reads."""
    entries, _ = labelled_set
    table = tmp_path_factory.mktemp("labelled-csv") / "set.csv"
    with table.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "caption", "category", "meta_category"])
        for e in entries:
            w.writerow([Path(e.image).name, e.caption, e.category, e.meta_category])
    return table, Path(entries[0].image).parent


@pytest.fixture(scope="session")
def world_val(tmp_path_factory) -> tuple[Path, Path]:
    """(FDRD file, image root) of the built-in world's garden val split (128 images, 16 categories)."""
    from dcar.world.export import materialise

    split = materialise("garden", "val", tmp_path_factory.mktemp("garden-val"))
    return split.fdrd, split.images
