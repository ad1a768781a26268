from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from eval_helpers import ColourEncoder
from PIL import Image

from dcar.evaluation.cache import BlockCache, fingerprint
from dcar.evaluation.embed import blockwise, embed_images, embed_texts


def make_images(folder: Path, colours: list[tuple[int, int, int] | None]) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, c in enumerate(colours):
        p = folder / f"img_{i}.jpg"
        if c is None:
            p.write_bytes(b"not a jpeg")
        else:
            Image.new("RGB", (10, 10), c).save(p, quality=100)
        paths.append(str(p))
    return paths


@pytest.mark.parametrize("workers", [0, 2])
def test_embed_images_keeps_order_and_skips_unreadable(tmp_path: Path, workers):
    colours = [(255, 0, 0), None, (0, 255, 0), (0, 0, 255), None, (250, 5, 5)]
    paths = make_images(tmp_path, colours)
    got = embed_images(ColourEncoder(), paths, batch_size=2, num_workers=workers, progress=False)
    assert got.ok.tolist() == [True, False, True, True, False, True]
    assert [(i, Path(p).name) for i, p, _ in got.skipped] == [(1, "img_1.jpg"), (4, "img_4.jpg")]
    assert "not a recognised image format" in got.skipped[0][2]
    assert got.features.dtype == np.float32 and got.features.shape == (4, 3)
    assert np.allclose(np.linalg.norm(got.features, axis=1), 1.0, atol=1e-6)
    assert got.features.argmax(1).tolist() == [0, 1, 2, 0]  # rows follow the readable inputs' order


def test_embed_images_all_unreadable(tmp_path: Path):
    got = embed_images(ColourEncoder(), make_images(tmp_path, [None]), num_workers=0, progress=False)
    assert got.features.shape[0] == 0 and got.ok.tolist() == [False] and len(got.skipped) == 1


def test_embed_texts_encodes_each_distinct_text_once():
    enc = ColourEncoder()
    texts = ["a red", "a blue", "a red", "0 1 0", "a blue"]
    feats = embed_texts(enc, texts, batch_size=2, progress=False)
    assert sum(len(c) for c in enc.text_calls) == 3 and max(len(c) for c in enc.text_calls) <= 2
    assert feats.shape == (5, 3) and feats.dtype == np.float32
    assert feats.argmax(1).tolist() == [0, 2, 0, 1, 2]
    assert np.array_equal(feats[0], feats[2])  # repeated text: bit-identical rows


def test_progress_callback_counts_every_item(tmp_path: Path):
    seen = []
    embed_images(ColourEncoder(), make_images(tmp_path, [(1, 2, 3), None, (4, 5, 6)]), batch_size=2,
                 num_workers=0, progress=seen.append)
    assert sum(seen) == 3


def test_blockwise_resumes_from_cache(tmp_path: Path):
    calls = []

    def compute(a, b):
        calls.append((a, b))
        return {"x": np.arange(a, b)}

    key = fingerprint("k", items=["a", "b"])
    first = blockwise(10, 4, compute, BlockCache(tmp_path / "c", key))
    assert calls == [(0, 4), (4, 8), (8, 10)]
    (tmp_path / "c" / "block_00001.npz").unlink()  # as if killed before block 1 was saved
    calls.clear()
    cached = []
    again = blockwise(10, 4, compute, BlockCache(tmp_path / "c", key), on_cached=cached.append)
    assert calls == [(4, 8)] and cached == [4, 2]
    assert all(np.array_equal(a["x"], b["x"]) for a, b in zip(first, again))
    calls.clear()
    blockwise(10, 4, compute, BlockCache(tmp_path / "c", fingerprint("other")))  # stale cache wiped
    assert len(calls) == 3


def test_fingerprint_depends_on_items():
    assert fingerprint("m", items=["a", "b"]) != fingerprint("m", items=["b", "a"])
    assert fingerprint("m", items=["a"]) == fingerprint("m", items=["a"])
