"""What the prompted forward must do, checked on every backbone implementation:
EOT pooling shift, positions, deep replacement and carry-over, token weights, batching, gradients."""

from __future__ import annotations

import pytest
import torch
from backbone_helpers import CAPTIONS, BlockRecorder, Internals, images_for, make_hf_clip, make_open_clip
from PIL import Image

from dcar.backbone.base import Backbone, TowerPrompts
from dcar.backbone.hf_backbone import HFClipBackbone
from dcar.backbone.open_clip_backbone import OpenClipBackbone
from dcar.backbone.tokenizer import EOT_ID, SOT_ID
from dcar.errors import ModelSpecError

ATOL = 1e-5


@pytest.fixture(scope="module", params=["open_clip:dcar-test-tiny", "open_clip:dcar-test-custom", "hf:tiny"])
def backbone(request) -> Backbone:
    if request.param.startswith("hf:"):
        pytest.importorskip("transformers")
        return HFClipBackbone(make_hf_clip(), request.param).freeze().eval()
    return OpenClipBackbone(make_open_clip(request.param.split(":")[1]), request.param).freeze().eval()


def _images(backbone: Backbone, n: int = 3) -> torch.Tensor:
    return images_for(backbone.info.image_size, n)


def _random_prompts(k: int, width: int, depth: int, seed: int = 0, batch: int | None = None) -> TowerPrompts:
    g = torch.Generator().manual_seed(seed)
    shape = (k, width) if batch is None else (batch, k, width)
    return TowerPrompts([torch.randn(*shape, generator=g) * 0.5 for _ in range(depth)])


# ----------------------------------------------------------------------------- text
def test_word_embedding_prompts_equal_plain_text(backbone):
    """Prompts equal to the embeddings of 'a photo' in front of 'of a ...' reproduce the plain
    encoding of 'a photo of a ...': prompts sit at positions 1..k with those positional
    embeddings and pooling moves to the shifted end token."""
    inside = Internals(backbone)
    rest = ["of a cat on a sofa", "of two dogs", "of a blue airplane in the sky"]
    full_ids = backbone.tokenize([f"a photo {r}" for r in rest])
    words = full_ids[0, 1:3]
    prompt = inside.token_embedding(words).detach()
    with torch.no_grad():
        plain = backbone.encode_text(full_ids)
        prompted = backbone.encode_text(backbone.tokenize(rest, prompt_length=2), TowerPrompts([prompt]))
    torch.testing.assert_close(prompted, plain, rtol=0, atol=ATOL)


def test_deep_text_prompts_replace_slots_before_each_block(backbone):
    """Deep prompts set to the hidden states a plain run has at positions 1..k reproduce it
    (replacement happens before block i, at rows 1..k); a different deep prompt changes it."""
    inside = Internals(backbone)
    n_layers = backbone.info.text_layers
    rest = ["of a cat on a sofa", "of two dogs"]
    full_ids = backbone.tokenize([f"a photo {r}" for r in rest])
    with torch.no_grad(), BlockRecorder(inside.text_blocks) as rec:
        plain = backbone.encode_text(full_ids)
    layers = [inside.token_embedding(full_ids[0, 1:3]).detach()]
    layers += [rec.inputs[i][:, 1:3] for i in range(1, n_layers)]  # per-sample [B, k, W]
    ids = backbone.tokenize(rest, prompt_length=2)
    with torch.no_grad():
        deep = backbone.encode_text(ids, TowerPrompts(layers))
    torch.testing.assert_close(deep, plain, rtol=0, atol=ATOL)
    for i in range(1, n_layers):
        changed = list(layers)
        changed[i] = changed[i] + torch.randn_like(changed[i])  # not a constant: LayerNorm ignores shifts
        with torch.no_grad():
            assert not torch.allclose(backbone.encode_text(ids, TowerPrompts(changed)), plain, atol=1e-4), i


def test_text_depth_replaces_then_carries_over(backbone):
    """Blocks 1..J-1 see exactly the fresh prompts in rows 1..k; blocks >= J see the previous
    block's outputs there (carried over, not reset)."""
    inside = Internals(backbone)
    n_layers = backbone.info.text_layers
    depth = n_layers - 1
    k = 3
    prompts = _random_prompts(k, backbone.info.text_width, depth)
    ids = backbone.tokenize(CAPTIONS, prompt_length=k)
    with torch.no_grad(), BlockRecorder(inside.text_blocks) as rec:
        backbone.encode_text(ids, prompts)
    for i in range(1, n_layers):
        slots = rec.inputs[i][:, 1 : 1 + k]
        expected = prompts.layers[i].expand_as(slots) if i < depth else rec.outputs[i - 1][:, 1 : 1 + k]
        torch.testing.assert_close(slots, expected, rtol=0, atol=0)
    # layer-0 prompts enter with the positional embeddings of positions 1..k
    pos = inside.text_positions[1 : 1 + k].detach()
    torch.testing.assert_close(rec.inputs[0][:, 1 : 1 + k], (prompts.layers[0] + pos).expand(len(CAPTIONS), -1, -1))


def test_truncation_keeps_end_token_with_prompts(backbone):
    k = 4
    ids = backbone.tokenize(CAPTIONS, prompt_length=k)
    assert ids.shape == (len(CAPTIONS), backbone.info.context_length - k)
    assert (ids[:, 0] == SOT_ID).all()
    assert ((ids == EOT_ID).sum(dim=1) == 1).all()
    assert ids[-1, -1] == EOT_ID  # the over-long caption was cut and its end token kept
    plain = backbone.tokenize(CAPTIONS)
    assert torch.equal(ids[:3], plain[:3, : ids.shape[1]])  # short captions untouched
    prompts = _random_prompts(k, backbone.info.text_width, 2)
    with torch.no_grad():
        out = backbone.encode_text(ids, prompts)
    assert out.shape == (len(CAPTIONS), backbone.info.embed_dim) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="prompt_length=4"):
        backbone.encode_text(plain, prompts)  # 77 tokens + 4 prompts do not fit


def test_token_weights(backbone):
    inside = Internals(backbone)
    k = 2
    ids = backbone.tokenize(CAPTIONS[:3], prompt_length=k)
    prompts = _random_prompts(k, backbone.info.text_width, 2)
    eot = (ids == EOT_ID).int().argmax(dim=1)
    with torch.no_grad():
        base = backbone.encode_text(ids, prompts)
        assert torch.equal(backbone.encode_text(ids, prompts, torch.ones(ids.shape)), base)
        w = torch.ones(ids.shape)
        w[0, eot[0] + 1] = 5.0  # a padding slot after the end token: causally invisible to it
        torch.testing.assert_close(backbone.encode_text(ids, prompts, w), base, rtol=0, atol=0)
        w = torch.rand(ids.shape, generator=torch.Generator().manual_seed(0)) + 0.5
        with BlockRecorder(inside.text_blocks[:1]) as rec:
            weighted = backbone.encode_text(ids, prompts, w)
    assert not torch.allclose(weighted, base, atol=1e-4)
    # the weights scale token embeddings (before positions), never the prompt slots
    emb = inside.token_embedding(ids).detach() * w.unsqueeze(-1)
    pos = inside.text_positions[: ids.shape[1] + k].detach()
    x0 = rec.inputs[0]
    # padding after the batch's last end token is never computed (exact under the causal mask)
    n = int(eot.max()) + 1 + k
    assert x0.shape[1] == n < ids.shape[1] + k
    torch.testing.assert_close(x0[:, :1], emb[:, :1] + pos[:1], rtol=0, atol=1e-6)
    torch.testing.assert_close(x0[:, 1 + k :], (emb[:, 1:] + pos[1 + k :])[:, : n - 1 - k], rtol=0, atol=1e-6)


def test_text_tokens_match_pooled_and_are_causal(backbone):
    ids = backbone.tokenize(["a red car parked outside", "a red bus"])
    with torch.no_grad():
        tokens = backbone.encode_text_tokens(ids)
        pooled = backbone.encode_text(ids)
        unit = backbone.encode_text_tokens(ids, normalize=True)
    assert tokens.shape == (2, ids.shape[1], backbone.info.embed_dim)
    eot = (ids == EOT_ID).int().argmax(dim=1)
    torch.testing.assert_close(tokens[torch.arange(2), eot], pooled, rtol=0, atol=ATOL)
    torch.testing.assert_close(tokens[0, :3], tokens[1, :3], rtol=0, atol=1e-6)  # same prefix "a red"
    torch.testing.assert_close(unit.norm(dim=-1), torch.ones(2, ids.shape[1]))


# ----------------------------------------------------------------------------- image
def test_deep_image_prompts_replace_last_tokens(backbone):
    """Deep image prompts equal to the prompt-token states of a shallow run reproduce it, so the
    replaced rows are the last k, before the right block; changing one changes the output."""
    inside = Internals(backbone)
    n_layers = backbone.info.vision_layers
    k = 2
    images = _images(backbone)
    shallow = _random_prompts(k, backbone.info.vision_width, 1)
    with torch.no_grad(), BlockRecorder(inside.image_blocks) as rec:
        ref = backbone.encode_image(images, shallow)
    layers = shallow.layers + [rec.inputs[i][:, -k:] for i in range(1, n_layers)]
    with torch.no_grad():
        torch.testing.assert_close(backbone.encode_image(images, TowerPrompts(layers)), ref, rtol=0, atol=ATOL)
        assert not torch.allclose(backbone.encode_image(images), ref, atol=1e-4)  # prompts are attended
        for i in range(1, n_layers):
            changed = list(layers)
            changed[i] = changed[i] + torch.randn_like(changed[i])  # not a constant: LayerNorm ignores shifts
            assert not torch.allclose(backbone.encode_image(images, TowerPrompts(changed)), ref, atol=1e-4), i


def test_image_prompts_enter_normalised_without_positions(backbone):
    """Layer-0 image prompts get no positional embedding but pass the pre-norm like every token,
    so block 0 sees pre_norm(prompt) whatever the image; deeper slots follow depth J."""
    inside = Internals(backbone)
    n_layers = backbone.info.vision_layers
    k, depth = 3, 2
    prompts = _random_prompts(k, backbone.info.vision_width, depth)
    with torch.no_grad(), BlockRecorder(inside.image_blocks) as rec:
        backbone.encode_image(_images(backbone), prompts)
        expected0 = inside.image_pre_norm(prompts.layers[0])
    for x0 in rec.inputs[0]:
        torch.testing.assert_close(x0[-k:], expected0, rtol=0, atol=1e-6)
    for i in range(1, n_layers):
        expected = prompts.layers[i].expand(3, -1, -1) if i < depth else rec.outputs[i - 1][:, -k:]
        torch.testing.assert_close(rec.inputs[i][:, -k:], expected, rtol=0, atol=0)
    n_patches = (backbone.info.image_size // _patch(backbone)) ** 2
    assert rec.inputs[0].shape[1] == 1 + n_patches + k


def _patch(backbone: Backbone) -> int:
    if isinstance(backbone, HFClipBackbone):
        return backbone.model.config.vision_config.patch_size
    return backbone._vit.patch_size[0]


# ----------------------------------------------------------------------------- both towers
def test_per_sample_prompts_equal_shared(backbone):
    k, n = 2, 3
    info = backbone.info
    text_p = _random_prompts(k, info.text_width, info.text_layers, seed=1)
    image_p = _random_prompts(k, info.vision_width, 2, seed=2)
    ids = backbone.tokenize(CAPTIONS[:n], prompt_length=k)
    images = _images(backbone, n)
    batched = lambda p: TowerPrompts([x.expand(n, -1, -1).clone() for x in p.layers])  # noqa: E731
    with torch.no_grad():
        torch.testing.assert_close(backbone.encode_text(ids, batched(text_p)), backbone.encode_text(ids, text_p),
                                   rtol=0, atol=1e-6)
        torch.testing.assert_close(backbone.encode_image(images, batched(image_p)),
                                   backbone.encode_image(images, image_p), rtol=0, atol=1e-6)
        # distinct per-sample prompts: row j equals a single-sample run with prompt j (no mixing)
        per = _random_prompts(k, info.text_width, info.text_layers, seed=3, batch=n)
        out = backbone.encode_text(ids, per)
        for j in range(n):
            single = TowerPrompts([p[j] for p in per.layers])
            torch.testing.assert_close(out[j : j + 1], backbone.encode_text(ids[j : j + 1], single),
                                       rtol=0, atol=ATOL)


def test_gradients_reach_prompts_not_backbone(backbone):
    k = 2
    info = backbone.info
    text_p = [torch.nn.Parameter(torch.randn(k, info.text_width) * 0.02) for _ in range(info.text_layers)]
    image_p = [torch.nn.Parameter(torch.randn(k, info.vision_width) * 0.02) for _ in range(2)]
    ids = backbone.tokenize(CAPTIONS[:2], prompt_length=k)
    t = backbone.encode_text(ids, TowerPrompts(text_p), normalize=True)
    v = backbone.encode_image(_images(backbone, 2), TowerPrompts(image_p), normalize=True)
    loss = -(backbone.logit_scale * t @ v.T).diagonal().sum()
    loss.backward()
    for p in text_p + image_p:
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in backbone.parameters())


def test_prompts_are_cast_to_running_dtype(backbone):
    k = 2
    p64 = _random_prompts(k, backbone.info.text_width, 1)
    p32 = TowerPrompts([p.double() for p in p64.layers])
    ids = backbone.tokenize(CAPTIONS[:2], prompt_length=k)
    with torch.no_grad():
        out = backbone.encode_text(ids, p32)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, backbone.encode_text(ids, p64))


def test_bad_prompt_shapes(backbone):
    info = backbone.info
    ids = backbone.tokenize(CAPTIONS[:2], prompt_length=2)
    with pytest.raises(ValueError, match="width"):
        backbone.encode_text(ids, TowerPrompts([torch.zeros(2, info.text_width + 1)]))
    with pytest.raises(ValueError, match="depth"):
        backbone.encode_text(ids, TowerPrompts([torch.zeros(2, info.text_width)] * (info.text_layers + 1)))
    with pytest.raises(ValueError, match="layer 1"):
        backbone.encode_text(ids, TowerPrompts([torch.zeros(2, info.text_width), torch.zeros(3, info.text_width)]))
    with pytest.raises(ValueError, match=r"\[2, k, width\]"):
        backbone.encode_image(_images(backbone, 2), TowerPrompts([torch.zeros(3, 2, info.vision_width)]))


def test_normalize_logit_scale_and_transforms(backbone):
    with torch.no_grad():
        t = backbone.encode_text(backbone.tokenize(CAPTIONS), normalize=True)
        v = backbone.encode_image(_images(backbone), normalize=True)
    torch.testing.assert_close(t.norm(dim=-1), torch.ones(len(CAPTIONS)))
    torch.testing.assert_close(v.norm(dim=-1), torch.ones(3))
    assert backbone.logit_scale.shape == () and backbone.logit_scale.item() == pytest.approx(1 / 0.07, rel=1e-3)
    image = Image.new("RGB", (50, 40), (200, 30, 30))
    size = backbone.info.image_size
    for train in (False, True):
        assert backbone.image_transform(train=train)(image).shape == (3, size, size)


def test_image_prompts_on_a_resnet_tower_are_refused():
    backbone = OpenClipBackbone(make_open_clip("dcar-test-resnet"), "open_clip:dcar-test-resnet").freeze()
    assert backbone.info.vision_width == 0
    images = images_for(64, 2)
    with pytest.raises(ModelSpecError, match="open_clip:dcar-test-resnet.*ViT"):
        backbone.encode_image(images, TowerPrompts([torch.zeros(2, 16)]))
