"""Zero-shot embedding and evaluation through a real (tiny, random-weight) open_clip backbone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from dcar.backbone import load_backbone
from dcar.cli import main
from dcar.evaluation.encoders import RetrievalEncoder, ZeroShotEncoder
from dcar.evaluation.recall import recall_at_k


def write_tiny_local_dir(folder: Path, cfg: dict, seed: int) -> Path:
    import open_clip

    torch.manual_seed(seed)
    model = open_clip.model.CLIP(**cfg)
    folder.mkdir(parents=True)
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg}))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    return folder


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, tiny_open_clip_cfg) -> Path:
    return write_tiny_local_dir(tmp_path_factory.mktemp("models") / "tiny", tiny_open_clip_cfg, seed=0)


def test_zero_shot_encoder_on_open_clip(tiny_dir: Path, tmp_path: Path, tiny_open_clip_cfg):
    from PIL import Image

    enc = ZeroShotEncoder(load_backbone(f"open_clip:local-dir:{tiny_dir}"))
    assert isinstance(enc, RetrievalEncoder) and enc.method == "zeroshot"
    pixels = enc.image_transform()(Image.new("RGB", (50, 40), (10, 200, 30)))
    assert pixels.shape == (3, 32, 32)
    img = enc.encode_images(pixels[None].repeat(2, 1, 1, 1))
    txt = enc.encode_texts(["a red flower", "a photo of a monkshood"])
    assert img.shape == (2, 32) and txt.shape == (2, 32)
    assert torch.allclose(img.norm(dim=1), torch.ones(2)) and torch.allclose(txt.norm(dim=1), torch.ones(2))
    # same weights -> same fingerprint; another random init of the same config -> a different one
    again = ZeroShotEncoder(load_backbone(f"open_clip:local-dir:{tiny_dir}"))
    other_dir = write_tiny_local_dir(tmp_path / "other", tiny_open_clip_cfg, seed=1)
    other = ZeroShotEncoder(load_backbone(f"open_clip:local-dir:{other_dir}"))
    assert enc.fingerprint() == again.fingerprint() != other.fingerprint()


@pytest.mark.slow
@pytest.mark.shared_data
def test_eval_on_real_flower_subset_matches_embed(shared_data: Path, tiny_dir: Path, tmp_path: Path, capsys):
    """`dcar eval` on 100 real flower images; its recall equals recall computed from `dcar embed` rows."""
    full = json.loads((shared_data / "fdrd" / "flower_test.json").read_text())
    subset = dict(list(full.items())[::24][:100])
    fdrd = tmp_path / "flower_subset.json"
    fdrd.write_text(json.dumps(subset))
    images = shared_data / "images" / "flower" / "test"
    spec = f"open_clip:local-dir:{tiny_dir}"
    out = tmp_path / "results.json"
    main(["eval", "--model", spec, "--fdrd", str(fdrd), "--images", str(images), "--out", str(out),
          "--workers", "2", "--device", "cpu"])
    res = json.loads(out.read_text())
    r = res["datasets"]["flower_subset"]
    assert (res["model"], res["method"]) == (spec, "zeroshot")
    assert (r["n_images"], r["n_captions"], r["skipped_images"]) == (100, 100, 0)
    assert r["hard_negative_acc"] is not None and 0 <= r["hard_negative_acc"] <= 100
    for d in ("i2t", "t2i"):
        assert r[d]["R@1"] <= r[d]["R@5"] <= r[d]["R@10"] <= 100
    assert res["avg"]["i2t"] == r["i2t"]

    # The same images and captions through `dcar embed`, then recall by hand: identical numbers.
    (tmp_path / "images.txt").write_text("".join(f"{images / (k + '.jpg')}\n" for k in subset))
    (tmp_path / "texts.txt").write_text("".join(v["positive"] + "\n" for v in subset.values()))
    for kind in ("images", "texts"):
        main(["embed", "--model", spec, f"--{kind}", str(tmp_path / f"{kind}.txt"), "--out",
              str(tmp_path / f"{kind}.npy"), "--device", "cpu"])
    img, txt = np.load(tmp_path / "images.npy"), np.load(tmp_path / "texts.npy")
    assert img.shape == txt.shape == (100, 32)
    mine = recall_at_k(img, txt, np.arange(100))
    for d in ("i2t", "t2i"):
        assert mine[d] == pytest.approx(r[d], abs=1e-9)
    capsys.readouterr()
