"""Backbone test fixtures: registers the tiny test architectures with open_clip (see
backbone_helpers.py) and prints the measured equivalence differences after the run."""

from __future__ import annotations

import json

import open_clip
import pytest
from backbone_helpers import EQUIVALENCE, OPEN_CLIP_TEST_CFGS


@pytest.fixture(scope="session", autouse=True)
def open_clip_test_archs(tmp_path_factory, tiny_open_clip_cfg) -> list[str]:
    """Register the test architectures with open_clip (process-wide; names start with dcar-test-)."""
    folder = tmp_path_factory.mktemp("open_clip_cfgs")
    cfgs = {"dcar-test-tiny": tiny_open_clip_cfg, **OPEN_CLIP_TEST_CFGS}
    for name, cfg in cfgs.items():
        (folder / f"{name}.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(folder)
    return list(cfgs)


def pytest_terminal_summary(terminalreporter) -> None:
    if EQUIVALENCE:
        terminalreporter.section("backbone equivalence: max |ours - library| (no prompts, unit weights)")
        for name, diff in sorted(EQUIVALENCE.items()):
            terminalreporter.write_line(f"{name:40s} {diff:.3e}")
