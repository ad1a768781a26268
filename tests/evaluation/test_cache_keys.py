"""Resumable feature caches are keyed by each image file's content stamp and by the model."""

from __future__ import annotations

import os

from eval_helpers import ColourEncoder
from PIL import Image

from dcar.evaluation.evaluate import evaluate, load_eval_dataset


class OtherModel(ColourEncoder):
    def fingerprint(self) -> str:
        return "colour-v2"


def test_a_replaced_image_or_another_model_is_not_served_from_the_cache(colour_fdrd, tmp_path):
    fdrd, root = colour_fdrd
    cache = tmp_path / "parts"
    ds = load_eval_dataset(fdrd, root)
    first = ColourEncoder()
    evaluate(first, [ds], num_workers=0, cache_dir=cache, progress=False)
    assert first.image_rows == 3
    again = ColourEncoder()
    evaluate(again, [ds], num_workers=0, cache_dir=cache, progress=False)
    assert again.image_rows == 0  # same files, same model: resumed from the cache

    other = OtherModel()
    evaluate(other, [ds], num_workers=0, cache_dir=cache, progress=False)
    assert other.image_rows == 3  # another model never reuses the blocks

    red = root / "red_image_01.png"
    Image.new("RGB", (12, 12), (0, 0, 255)).save(red)  # same name, new content
    st = os.stat(red)
    os.utime(red, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    changed = OtherModel()
    res = evaluate(changed, [ds], num_workers=0, cache_dir=cache, progress=False)
    assert changed.image_rows == 3  # recomputed: the red image is now blue
    assert res["datasets"]["colours"]["i2t"]["R@1"] < 100
