"""experiments/calibrate_world.py: the probe learns what is there, and the table flags misses."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch

_PATH = Path(__file__).resolve().parents[2] / "experiments" / "calibrate_world.py"


def _module():
    sys.path.insert(0, str(_PATH.parent))
    spec = importlib.util.spec_from_file_location("calibrate_world", _PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_linear_probe_separates_a_small_low_variance_direction():
    cw = _module()
    g = torch.Generator().manual_seed(0)
    y = torch.arange(300) % 3
    x = torch.randn(300, 8, generator=g) * 5.0
    x[:, 3] = y.float() * 0.2 + 0.02 * torch.randn(300, generator=g)  # the class lives in one quiet direction
    acc = cw.linear_probe(x[:200], y[:200], x[200:], y[200:])
    assert acc >= 90.0
    blind = x.clone()
    blind[:, 3] = 0.02 * torch.randn(300, generator=g)  # the same features without the class direction
    assert cw.linear_probe(blind[:200], y[:200], blind[200:], y[200:]) < 60.0


def _cheap(zs: float, probe: float, i2t: float, t2i: float) -> dict:
    return {"subcategories": 16, "test_images": 640, "zero_shot_cls": zs, "zero_shot_cls_among_siblings": zs,
            "chance_among_siblings": 12.5, "probe": probe, "i2t_r1": i2t, "t2i_r1": t2i}


def test_markdown_marks_every_miss_and_checks_room_to_adapt():
    cw = _module()
    runs = {m: [{"i2t": v, "t2i": v}] for m, v in
            {"zeroshot": 20.0, "coop": 26.0, "clip-adapter": 21.0, "maple": 24.0, "finetune": 22.0}.items()}
    report = {"model": "m", "version": 2, "commit": "abc", "world_seed": 0, "machine": "here", "seconds": 60,
              "seeds": [0], "cheap": {"a": _cheap(30, 80, 20, 15), "b": _cheap(10, 50, 45, 5)},
              "baselines": {"a": runs, "b": runs}}
    text = cw.to_markdown(report)
    row_a = next(line for line in text.splitlines() if line.startswith("| a |"))
    row_b = next(line for line in text.splitlines() if line.startswith("| b |"))
    assert "✗" not in row_a
    assert row_b.count("✗") == 4  # zero-shot, probe, I2T and T2I all outside their ranges
    assert "CoOp >= zero-shot + 4 (AVG I2T R@1): +6.00 (met)" in text
    assert "fine-tuning >= zero-shot + 4: +2.00 (NOT met)" in text
    assert "MaPLe >= CoOp - 1: -2.00 (NOT met)" in text
