"""`dcar eval --per-query` (the records of dcar.evaluation.evaluate.per_query_records): each
query's rank, as Recall@K counts it, and its ranked top-10; non-finite features are an error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import run_cli
from eval_helpers import ColourEncoder

from dcar.cli import commands_retrieval
from dcar.errors import DataError
from dcar.evaluation.evaluate import evaluate, load_eval_dataset


@pytest.fixture
def colour_model(monkeypatch):
    monkeypatch.setattr(commands_retrieval, "load_encoder", lambda model, device, checkpoint=None: ColourEncoder())


def test_per_query_file_has_every_query_with_its_rank_and_top(colour_model, colour_fdrd, tmp_path: Path, capsys):
    fdrd, root = colour_fdrd
    out, pq = tmp_path / "r.json", tmp_path / "queries.jsonl"
    code, _, err = run_cli(["eval", "--model", "m", "--fdrd", str(fdrd), "--images", str(root), "--out", str(out),
                            "--per-query", str(pq), "--workers", "0"], capsys)
    assert code == 0, err
    rows = [json.loads(line) for line in pq.read_text().splitlines()]
    i2t = {r["query"]: r for r in rows if r["direction"] == "i2t"}
    t2i = {r["query"]: r for r in rows if r["direction"] == "t2i"}
    assert set(i2t) == set(t2i) == {"red_image_01", "green_image_01", "blue_image_01"}
    blue = t2i["blue_image_01"]  # "1 0 0.5" is closer to the red image: rank 1 (0-based), a miss at R@1
    assert blue["rank"] == 1 and blue["relevant"] == ["blue_image_01"]
    assert blue["top"][:2] == ["red_image_01", "blue_image_01"]
    assert blue["scores"][0] > blue["scores"][1]
    red = i2t["red_image_01"]
    assert red["rank"] == 0 and red["relevant"] == ["red_image_01"] and red["top"][0] == "red_image_01"
    results = json.loads(out.read_text())["datasets"]["colours"]
    for direction in ("i2t", "t2i"):  # the ranks are the ones recall was computed from
        ranks = [r["rank"] for r in rows if r["direction"] == direction]
        for k in (1, 5, 10):
            assert results[direction][f"R@{k}"] == pytest.approx(100 * np.mean([r < k for r in ranks]))


class NaNForGreen(ColourEncoder):
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        feats = super().encode_images(pixels)
        feats[pixels.mean((2, 3))[:, 1] > 0.5] = float("nan")
        return feats


def test_non_finite_features_are_an_error_not_a_score(colour_fdrd):
    fdrd, root = colour_fdrd
    ds = load_eval_dataset(fdrd, root)
    with pytest.raises(DataError, match=r"non-finite features for 1 images \(first: .*green_image_01.png\)"):
        evaluate(NaNForGreen(), [ds], num_workers=0, progress=False)
