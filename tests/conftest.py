"""Fixtures shared by every test area. Area-specific fixtures live in tests/<area>/conftest.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Two cores: keep one test process from oversubscribing them.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("DCAR_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (real FDRD files and images); the test is skipped when it is absent."""
    if not (SHARED_DATA / "fdrd").is_dir():
        pytest.skip(f"real FDRD data not found at {SHARED_DATA}")
    return SHARED_DATA


# A tiny open_clip architecture (random weights) for fast tests; the vocabulary stays the standard
# 49,408 tokens so open_clip's SimpleTokenizer ids fit.
TINY_OPEN_CLIP_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


@pytest.fixture(scope="session")
def tiny_open_clip_cfg() -> dict:
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in TINY_OPEN_CLIP_CFG.items()}


pytest_plugins = ["model_fixtures"]
