"""The shipped builtin:synthetic-small model: small, standard open_clip local-dir, and trained."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from dcar.builtin import SYNTHETIC_SMALL_SPEC, builtin_dir, local_dir_spec
from dcar.errors import ModelSpecError
from dcar.pretrain.data import normalise
from dcar.world.captions import caption
from dcar.world.render import render, render_array
from dcar.world.sample import make_sample

FOLDER = builtin_dir("synthetic-small")


@pytest.fixture(scope="module")
def shipped():
    import open_clip

    model, _, preprocess = open_clip.create_model_and_transforms(local_dir_spec("synthetic-small"))
    return model.eval(), preprocess, open_clip.get_tokenizer(local_dir_spec("synthetic-small"))


def test_spec_and_files():
    assert SYNTHETIC_SMALL_SPEC == "builtin:synthetic-small"
    weights = FOLDER / "open_clip_model.safetensors"
    assert weights.stat().st_size <= 25 * 1024 * 1024
    config = json.loads((FOLDER / "open_clip_config.json").read_text())
    assert {"model_cfg", "preprocess_cfg"} <= set(config)
    assert config["model_cfg"]["text_cfg"]["vocab_size"] == 49408
    assert config["model_cfg"]["text_cfg"]["context_length"] == 77
    assert "patch_size" in config["model_cfg"]["vision_cfg"]  # a ViT image tower (image prompts apply)


def test_unknown_builtin_is_a_spec_error():
    with pytest.raises(ModelSpecError, match="builtin:nope"):
        builtin_dir("nope")


def test_preprocess_gives_the_training_pixels(shipped):
    _, preprocess, _ = shipped
    s = make_sample("garden", "test", 0)
    from_pil = preprocess(render(s))
    from_training = normalise(torch.from_numpy(render_array(s).copy()).permute(2, 0, 1)[None])[0]
    assert torch.allclose(from_pil, from_training, atol=1e-5)


def test_shipped_model_retrieves_heldout_pretraining_pairs(shipped):
    model, preprocess, tokenizer = shipped
    samples = [make_sample("pretrain", "test", i) for i in range(100)]
    with torch.no_grad():
        img = F.normalize(model.encode_image(torch.stack([preprocess(render(s)) for s in samples])), dim=-1)
        txt = F.normalize(model.encode_text(tokenizer([caption(s) for s in samples])), dim=-1)
    r1 = ((img @ txt.T).argmax(1) == torch.arange(100)).float().mean().item()
    assert r1 >= 0.6  # a random model gets ~1%


def test_project_loader_resolves_the_builtin_spec():
    from dcar.backbone import load_backbone

    backbone = load_backbone(SYNTHETIC_SMALL_SPEC)
    assert backbone.info.image_size == 64 and backbone.info.context_length == 77
    assert backbone.info.vision_layers == 6 and backbone.info.embed_dim == 128
