"""A small labelled split of the built-in world, shared by the operating-rules tests."""

from __future__ import annotations

from pathlib import Path

import pytest

BUILTIN = "builtin:synthetic-small"


@pytest.fixture(scope="session")
def world_val(tmp_path_factory) -> tuple[Path, Path]:
    """(FDRD file, image root) of the garden domain's val split (128 images, 16 categories)."""
    from dcar.world.export import materialise

    split = materialise("garden", "val", tmp_path_factory.mktemp("garden-val"))
    return split.fdrd, split.images
