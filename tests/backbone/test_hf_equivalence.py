"""With no prompts and unit weights, HFClipBackbone equals transformers' CLIPModel (1e-5), and
``hf:DIR`` loads a ``save_pretrained`` folder."""

from __future__ import annotations

import json

import pytest
import torch
from backbone_helpers import CAPTIONS, images_for, make_hf_clip, record_equivalence

from dcar.backbone import load_backbone
from dcar.backbone.hf_backbone import HFClipBackbone
from dcar.errors import ModelSpecError

pytest.importorskip("transformers")

TOL = 1e-5


def test_plain_forward_equals_transformers():
    model = make_hf_clip()
    backbone = HFClipBackbone(model, "hf:tiny").freeze()
    ids = backbone.tokenize(CAPTIONS)
    images = images_for(32)
    with torch.no_grad():
        ref_text = model.get_text_features(input_ids=ids).pooler_output
        ref_image = model.get_image_features(pixel_values=images).pooler_output
        text_diff = float((backbone.encode_text(ids) - ref_text).abs().max())
        weighted = backbone.encode_text(ids, token_weights=torch.ones(ids.shape))
        text_diff = max(text_diff, float((weighted - ref_text).abs().max()))
        image_diff = float((backbone.encode_image(images) - ref_image).abs().max())
    record_equivalence("hf:tiny CLIPModel text", text_diff)
    record_equivalence("hf:tiny CLIPModel image", image_diff)
    assert text_diff <= TOL and image_diff <= TOL


def test_causal_mask_is_applied():
    """transformers 5.x layers are bidirectional without a mask: a later token must not change
    an earlier position's feature."""
    backbone = HFClipBackbone(make_hf_clip(), "hf:tiny").freeze()
    ids = backbone.tokenize(["a red car", "a red bus"])
    with torch.no_grad():
        tokens = backbone.encode_text_tokens(ids)
    torch.testing.assert_close(tokens[0, :3], tokens[1, :3], rtol=0, atol=1e-6)
    assert not torch.allclose(tokens[0, 3], tokens[1, 3])


def test_hf_dir_loads_saved_model(tmp_path):
    model = make_hf_clip(seed=5)
    model.save_pretrained(tmp_path / "clip")
    (tmp_path / "clip" / "preprocessor_config.json").write_text(
        json.dumps({"image_mean": [0.1, 0.2, 0.3], "image_std": [0.5, 0.5, 0.5]})
    )
    backbone = load_backbone(f"hf:{tmp_path / 'clip'}")
    assert all(not p.requires_grad for p in backbone.parameters())
    assert not any(m.training for m in backbone.modules())
    ids = backbone.tokenize(CAPTIONS)
    images = images_for(32)
    with torch.no_grad():
        torch.testing.assert_close(
            backbone.encode_text(ids), model.get_text_features(input_ids=ids).pooler_output, rtol=0, atol=1e-6
        )
        torch.testing.assert_close(
            backbone.encode_image(images), model.get_image_features(pixel_values=images).pooler_output,
            rtol=0, atol=1e-6,
        )
    torch.testing.assert_close(backbone.logit_scale, model.logit_scale.detach().exp())
    normalize = backbone.image_transform().transforms[-1]
    assert list(normalize.mean) == pytest.approx([0.1, 0.2, 0.3])


def test_bad_hf_specs(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    for spec in [f"hf:{tmp_path / 'missing'}", f"hf:{tmp_path / 'empty'}", f"hf:{tmp_path / 'bert'}", "hf:"]:
        with pytest.raises(ModelSpecError) as info:
            load_backbone(spec)
        assert repr(spec) in str(info.value) and "\n" not in str(info.value)
