"""With no prompts and unit weights, OpenClipBackbone equals open_clip's own encoders (1e-5)."""

from __future__ import annotations

import pytest
import torch
from backbone_helpers import CAPTIONS, VIT_ARCHS, images_for, make_open_clip, record_equivalence

from dcar.backbone.open_clip_backbone import OpenClipBackbone

TOL = 1e-5


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return float((a - b).abs().max())


def _check_equivalence(name: str, model: torch.nn.Module, image_size: int) -> None:
    backbone = OpenClipBackbone(model, f"open_clip:{name}").freeze()
    ids = backbone.tokenize(CAPTIONS)
    images = images_for(image_size)
    with torch.no_grad():
        text_diff = _max_diff(backbone.encode_text(ids), model.encode_text(ids))
        ones = torch.ones(ids.shape)
        weighted_diff = _max_diff(backbone.encode_text(ids, token_weights=ones), model.encode_text(ids))
        image_diff = _max_diff(backbone.encode_image(images), model.encode_image(images))
        norm_diff = _max_diff(
            backbone.encode_image(images, normalize=True), model.encode_image(images, normalize=True)
        )
    record_equivalence(f"open_clip:{name} text", max(text_diff, weighted_diff))
    record_equivalence(f"open_clip:{name} image", max(image_diff, norm_diff))
    assert max(text_diff, weighted_diff) <= TOL
    assert max(image_diff, norm_diff) <= TOL


@pytest.mark.parametrize("name", VIT_ARCHS + ["dcar-test-resnet"])
def test_plain_forward_equals_open_clip(name):
    model = make_open_clip(name)
    size = model.visual.image_size
    _check_equivalence(name, model, size[0] if isinstance(size, tuple) else size)


@pytest.mark.slow
def test_plain_forward_equals_open_clip_vit_b_32():
    _check_equivalence("ViT-B-32", make_open_clip("ViT-B-32"), 224)
