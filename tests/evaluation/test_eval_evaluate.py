from __future__ import annotations

import json
from pathlib import Path

import pytest
from eval_helpers import ColourEncoder
from PIL import Image

from dcar.errors import DataError
from dcar.evaluation.evaluate import evaluate, load_eval_dataset


def test_evaluate_known_answers(colour_fdrd):
    fdrd, root = colour_fdrd
    ds = load_eval_dataset(fdrd, root)
    assert ds.name == "colours" and ds.missing_images == 1 and len(ds.entries) == 4
    skipped = []
    res = evaluate(ColourEncoder(), [ds], batch_size=2, num_workers=0, progress=False,
                   on_skip=lambda *a: skipped.append(a))
    r = res["datasets"]["colours"]
    assert r["i2t"] == {"R@1": 100.0, "R@5": 100.0, "R@10": 100.0}
    assert r["t2i"] == pytest.approx({"R@1": 200 / 3, "R@5": 100.0, "R@10": 100.0})
    assert r["hard_negative_acc"] == 50.0  # red wins against "a blue"; green ties "0 1 0"
    assert (r["n_images"], r["n_captions"], r["skipped_images"]) == (3, 3, 2)
    assert [(name, Path(path).name) for name, path, _ in skipped] == [("colours", "broken_image_01.png")]
    assert res["model"] == "test:colour" and res["method"] == "zeroshot"
    assert res["avg"] == {"i2t": r["i2t"], "t2i": r["t2i"]}
    json.dumps(res)  # plain JSON types only


def test_several_captions_per_image_and_average(tmp_path: Path, colour_fdrd):
    root = tmp_path / "csvimg"
    root.mkdir()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(root / "r.png")
    Image.new("RGB", (8, 8), (0, 0, 255)).save(root / "b.png")
    (tmp_path / "multi.csv").write_text(
        "image,caption,category\nr.png,a red,r\nr.png,0 0 1,r\nb.png,a blue,b\nb.png,1 0 0,b\n"
    )
    sets = [load_eval_dataset(tmp_path / "multi.csv", root), load_eval_dataset(*colour_fdrd)]
    res = evaluate(ColourEncoder(), sets, num_workers=0, progress=False)
    m = res["datasets"]["multi"]
    assert (m["n_images"], m["n_captions"], m["hard_negative_acc"]) == (2, 4, None)
    assert m["i2t"]["R@1"] == 100.0  # each image's best caption comes first
    assert m["t2i"]["R@1"] == 50.0  # "0 0 1" and "1 0 0" point at the other image
    c = res["datasets"]["colours"]
    assert res["avg"]["t2i"]["R@1"] == pytest.approx((m["t2i"]["R@1"] + c["t2i"]["R@1"]) / 2)


def test_resume_reuses_finished_image_blocks(colour_fdrd, tmp_path: Path):
    ds = load_eval_dataset(*colour_fdrd)

    class Killed(ColourEncoder):
        def encode_texts(self, texts):
            raise KeyboardInterrupt  # killed after the images were embedded

    with pytest.raises(KeyboardInterrupt):
        evaluate(Killed(), [ds], num_workers=0, progress=False, cache_dir=tmp_path / "parts")
    enc = ColourEncoder()
    res = evaluate(enc, [ds], num_workers=0, progress=False, cache_dir=tmp_path / "parts")
    assert enc.image_rows == 0  # all image features came from the cache
    assert res["datasets"]["colours"]["skipped_images"] == 2


def test_no_image_root_or_no_images(colour_fdrd, tmp_path: Path):
    fdrd, _ = colour_fdrd
    with pytest.raises(DataError, match="give the folder its images are under"):
        load_eval_dataset(fdrd, None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="none of its 5 images found"):
        load_eval_dataset(fdrd, tmp_path / "empty")
