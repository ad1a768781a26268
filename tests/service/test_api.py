"""`dcar.load`: the same vectors as evaluation, from a model spec or a self-describing run folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

import dcar
from cli_helpers import run_cli
from dcar.errors import DcarError
from dcar.evaluation.embed import embed_images, embed_texts


def test_load_a_spec_gives_the_evaluation_vectors_from_paths_images_and_tensors(tiny_spec, labelled_set):
    entries, _ = labelled_set
    paths = [e.image for e in entries[:5]]
    enc = dcar.load(tiny_spec, device="cpu")
    assert enc.method == "zeroshot" and enc.spec == tiny_spec and enc.dim == 32
    from_paths = enc.encode_image(paths)
    expected = embed_images(enc.retrieval, paths, num_workers=0, progress=False).features
    assert from_paths.dtype == torch.float32 and from_paths.shape == (5, 32)
    np.testing.assert_allclose(from_paths.numpy(), expected, atol=1e-6)
    pil = [Image.open(p) for p in paths]
    np.testing.assert_allclose(enc.encode_image(pil).numpy(), expected, atol=1e-6)
    pixels = torch.stack([enc.preprocess(im.convert("RGB")) for im in pil])
    np.testing.assert_allclose(enc.encode_image(pixels).numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(enc.encode_image(paths[0]).numpy(), expected[:1], atol=1e-6)
    texts = [e.caption for e in entries[:3]]
    np.testing.assert_allclose(enc.encode_text(texts).numpy(), embed_texts(enc.retrieval, texts, progress=False), atol=1e-6)
    assert torch.allclose(enc.encode_text("one").norm(dim=1), torch.ones(1))
    assert dcar.load is dcar.api.load


def test_a_run_folder_loads_its_trained_method_and_refuses_other_base_weights(tiny_model_dir, labelled_set, tmp_path, capsys):
    from dcar.methods.encoder import MethodEncoder
    from dcar.checkpoint import load_method

    entries, _ = labelled_set
    model_dir = tmp_path / "base"
    shutil.copytree(tiny_model_dir, model_dir)
    spec = f"open_clip:local-dir:{model_dir}"
    table = tmp_path / "set.csv"
    table.write_text("image,caption,category\n" + "".join(f"{e.image},{e.caption},{e.category}\n" for e in entries))
    run = tmp_path / "run"
    code, _, err = run_cli(["train", "--method", "coop", "--model", spec, "--train", str(table), "--out", str(run),
                            "--epochs", "1", "--batch-size", "8", "--workers", "0", "--device", "cpu"], capsys)
    assert code == 0, err
    info = json.loads((run / "run.json").read_text())
    assert {"backbone", "backbone_weights", "method", "method_config", "dcar_version"} <= set(info)

    enc = dcar.load(run, device="cpu")
    assert enc.method == "coop" and enc.run == str(run) and enc.weights == info["backbone_weights"]
    reference = MethodEncoder(load_method(run))
    paths = [e.image for e in entries[:4]]
    expected = embed_images(reference, paths, num_workers=0, progress=False).features
    np.testing.assert_allclose(enc.encode_image(paths).numpy(), expected, atol=1e-6)
    texts = [e.caption for e in entries[:4]]
    np.testing.assert_allclose(enc.encode_text(texts).numpy(), embed_texts(reference, texts, progress=False), atol=1e-6)
    zero_shot = dcar.load(spec, device="cpu").encode_text(texts)
    assert not torch.allclose(zero_shot, enc.encode_text(texts))  # the prompts change the text vectors

    weights = load_file(str(model_dir / "open_clip_model.safetensors"))
    weights = {k: v + 0.01 if v.is_floating_point() else v for k, v in weights.items()}
    save_file(weights, str(model_dir / "open_clip_model.safetensors"))  # the spec now means other weights
    with pytest.raises(DcarError, match="refusing to apply the prompts to other base weights") as refused:
        dcar.load(run, device="cpu")
    assert "\n" not in str(refused.value) and info["backbone_weights"] in str(refused.value)
    with pytest.raises(DcarError, match="refusing to apply the prompts"):  # `dcar eval --checkpoint` loads it so too
        load_method(run)


def test_load_says_what_is_wrong_in_one_line(tmp_path):
    with pytest.raises(DcarError, match="not a run folder"):
        dcar.load(tmp_path)
    (tmp_path / "run.json").write_text("{}")
    with pytest.raises(DcarError, match="no 'backbone' entry"):
        dcar.load(tmp_path)
    with pytest.raises(DcarError, match="model spec"):
        dcar.load("nosuchprefix:thing")
    enc_path = Path(tmp_path / "missing.png")
    from dcar.data.images import UnreadableImage

    with pytest.raises(UnreadableImage, match="missing.png"):
        dcar.load("builtin:synthetic-small", device="cpu").encode_image(enc_path)
