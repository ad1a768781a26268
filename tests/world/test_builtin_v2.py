"""The shipped builtin:synthetic-v2 model: world v2's recipe, standard open_clip local-dir, trained."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from dcar.builtin import builtin_dir, local_dir_spec
from dcar.pretrain import get_preset
from dcar.pretrain.data import normalise
from dcar.world.captions import caption
from dcar.world.render import render, render_array
from dcar.world.sample import make_sample

FOLDER = builtin_dir("synthetic-v2")


@pytest.fixture(scope="module")
def shipped():
    import open_clip

    model, _, preprocess = open_clip.create_model_and_transforms(local_dir_spec("synthetic-v2"))
    return model.eval(), preprocess, open_clip.get_tokenizer(local_dir_spec("synthetic-v2"))


def test_files_are_small_and_record_the_recipe():
    assert (FOLDER / "open_clip_model.safetensors").stat().st_size <= 25 * 1024 * 1024
    config = json.loads((FOLDER / "open_clip_config.json").read_text())
    assert config["model_cfg"] == get_preset("synthetic-v2").model_cfg
    assert config["preprocess_cfg"]["size"] == 96
    assert config["dcar"]["fingerprint"] == get_preset("synthetic-v2").fingerprint()  # this recipe made it


def test_preprocess_gives_the_training_pixels(shipped):
    _, preprocess, _ = shipped
    s = make_sample("meadow", "test", 0)
    from_pil = preprocess(render(s, 96))
    from_training = normalise(torch.from_numpy(render_array(s, 96).copy()).permute(2, 0, 1)[None])[0]
    assert torch.allclose(from_pil, from_training, atol=1e-5)


def test_shipped_model_retrieves_heldout_alt_text(shipped):
    model, preprocess, tokenizer = shipped
    samples = [make_sample("pretrain-v2", "test", i) for i in range(100)]
    with torch.no_grad():
        img = F.normalize(model.encode_image(torch.stack([preprocess(render(s, 96)) for s in samples])), dim=-1)
        txt = F.normalize(model.encode_text(tokenizer([caption(s) for s in samples])), dim=-1)
    r1 = ((img @ txt.T).argmax(1) == torch.arange(100)).float().mean().item()
    assert r1 >= 0.5  # a random model gets ~1%
