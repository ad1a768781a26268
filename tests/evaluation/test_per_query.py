"""`dcar eval --per-query`: each query's rank (as Recall@K counts it) and its ranked top-K;
non-finite features are an error, never a score."""

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
from dcar.evaluation.per_query import top_k


@pytest.fixture
def colour_model(monkeypatch):
    monkeypatch.setattr(commands_retrieval, "load_encoder", lambda model, device, checkpoint=None: ColourEncoder())


def test_per_query_file_has_every_query_with_its_rank_and_top(colour_model, colour_fdrd, tmp_path: Path, capsys):
    fdrd, root = colour_fdrd
    out, pq = tmp_path / "r.json", tmp_path / "queries.jsonl"
    code, _, err = run_cli(["eval", "--model", "m", "--fdrd", str(fdrd), "--images", str(root), "--out", str(out),
                            "--per-query", str(pq), "--per-query-k", "2", "--workers", "0"], capsys)
    assert code == 0, err
    rows = [json.loads(line) for line in pq.read_text().splitlines()]
    i2t = {r["query"]: r for r in rows if r["direction"] == "i2t"}
    t2i = {r["query"]: r for r in rows if r["direction"] == "t2i"}
    assert set(i2t) == set(t2i) == {"red_image_01", "green_image_01", "blue_image_01"}
    blue = t2i["blue_image_01"]  # "1 0 0.5" is closer to the red image: rank 1 (0-based), a miss at R@1
    assert blue["rank"] == 1 and blue["caption"] == "1 0 0.5" and blue["relevant"] == ["blue_image_01"]
    assert blue["top"] == ["red_image_01", "blue_image_01"]
    assert [Path(p).name for p in blue["top_images"]] == ["red_image_01.png", "blue_image_01.png"]
    assert blue["scores"][0] > blue["scores"][1]
    red = i2t["red_image_01"]
    assert red["rank"] == 0 and red["relevant"] == ["red_image_01"] and red["top"][0] == "red_image_01"
    assert red["top_captions"][0] == "a red" and Path(red["image"]).name == "red_image_01.png"
    results = json.loads(out.read_text())["datasets"]["colours"]
    for direction in ("i2t", "t2i"):  # the ranks are the ones recall was computed from
        ranks = [r["rank"] for r in rows if r["direction"] == direction]
        for k in (1, 5, 10):
            assert results[direction][f"R@{k}"] == pytest.approx(100 * np.mean([r < k for r in ranks]))


def test_top_k_in_blocks_equals_the_full_sort():
    rng = np.random.default_rng(0)
    q, g = rng.normal(size=(37, 8)).astype(np.float32), rng.normal(size=(53, 8)).astype(np.float32)
    idx, scores = top_k(q, g, 5, block_elements=100)  # one query row per block
    full = q @ g.T
    assert np.array_equal(idx, np.argsort(-full, axis=1)[:, :5])
    assert np.allclose(scores, np.take_along_axis(full, idx, axis=1), atol=1e-6)
    assert top_k(q, g, 500)[0].shape == (37, 53)


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
