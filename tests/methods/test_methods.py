"""Every registered method on a tiny backbone: encoding, trainable parameters, learning."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dcar.methods import METHODS, TrainBatch, build_method
from dcar.errors import DcarError


def _batch(method, entries) -> TrainBatch:
    from dcar.data.images import load_image

    transform = method.image_transform(train=False)
    pixels = torch.stack([transform(load_image(e.image)) for e in entries])
    return TrainBatch(pixels, entries)


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_encodes_normalised_features(name, tiny_backbone, labelled_set):
    entries, _ = labelled_set
    method = build_method(name, tiny_backbone)
    batch = _batch(method, entries[:4])
    with torch.no_grad():
        img = method.encode_images(batch.pixels)
        txt = method.encode_texts(batch.captions)
    assert img.shape == (4, tiny_backbone.info.embed_dim) == txt.shape
    assert torch.allclose(img.norm(dim=-1), torch.ones(4), atol=1e-5)
    assert torch.allclose(txt.norm(dim=-1), torch.ones(4), atol=1e-5)


def test_zeroshot_is_the_backbone(tiny_backbone, labelled_set):
    entries, _ = labelled_set
    method = build_method("zeroshot", tiny_backbone)
    batch = _batch(method, entries[:3])
    with torch.no_grad():
        ours = method.encode_texts(batch.captions)
        ref = F.normalize(tiny_backbone.encode_text(tiny_backbone.tokenize(batch.captions)), dim=-1)
    assert torch.allclose(ours, ref, atol=1e-6)
    assert not method.trainable


def test_each_method_trains_only_its_own_tensors(tiny_backbone):
    backbone_params = {f"backbone.{n}" for n, _ in tiny_backbone.named_parameters() if "logit_scale" not in n}
    for name in METHODS:  # finetune last: it is the one that unfreezes the backbone
        method = build_method(name, tiny_backbone)
        trainable = method.trainable_state_dict()
        assert method.count_trainable() == sum(t.numel() for t in trainable.values())
        touched = {n for n in trainable if n.startswith("backbone.")}
        assert touched == (backbone_params if name == "finetune" else set()), name
        assert method.trainable == (name != "zeroshot")
    full = set(build_method("dcar", tiny_backbone).trainable_state_dict())
    bare = set(build_method("dcar", tiny_backbone, {"caa": False, "image_prompts": False}).trainable_state_dict())
    assert bare < full and not any(n.startswith("caa.") for n in bare)  # a switched-off part trains nothing
    assert set(build_method("maple", tiny_backbone).trainable_state_dict()) < full  # DCAR = MaPLe's prompts + CAA


def test_a_method_registers_itself_and_appears_in_the_help(tiny_backbone):
    from dataclasses import dataclass

    from dcar.methods import MethodConfig, RetrievalMethod, method_help, register_method
    from dcar.methods.registry import DESCRIPTIONS

    @dataclass
    class ToyConfig(MethodConfig):
        method = "toy"

    @register_method("a method that only exists in this test")
    class ToyModel(RetrievalMethod):
        config_class = ToyConfig

    try:
        assert isinstance(build_method("toy", tiny_backbone), ToyModel)
        assert "toy: a method that only exists in this test" in method_help()
        with pytest.raises(ValueError, match="taken"):
            register_method("again")(ToyModel)
    finally:
        METHODS.pop("toy", None)
        DESCRIPTIONS.pop("toy", None)
    assert all(DESCRIPTIONS[n] and "\n" not in DESCRIPTIONS[n] for n in METHODS)  # one line each


def test_word_initialised_prompts_equal_the_words(tiny_backbone):
    method = build_method("maple", tiny_backbone)  # init "a photo of a", 2 vectors -> "a photo"
    ids = tiny_backbone.tokenize(["a photo"])[0, 1:3]
    expected = tiny_backbone.token_embeddings(ids[None])[0]
    assert torch.allclose(method.prompts.text.layers[0], expected)


def test_bad_config_and_unknown_method_are_user_errors(tiny_backbone):
    with pytest.raises(DcarError, match="unknown method"):
        build_method("nope", tiny_backbone)
    with pytest.raises(DcarError, match="unknown dcar config keys: gama"):
        build_method("dcar", tiny_backbone, {"gama": 0.3})
    with pytest.raises(DcarError, match="reading"):
        build_method("dcar", tiny_backbone, {"reading": "C"})


@pytest.mark.parametrize("name", ["coop", "clip-adapter", "maple", "dcar", "finetune"])
def test_training_steps_lower_the_loss_and_touch_only_trainable_weights(name, tiny_backbone, labelled_set):
    entries, taxonomy = labelled_set
    torch.manual_seed(0)
    overrides = {"optimizer": {"name": "adamw", "lr": 1e-2 if name != "finetune" else 1e-3, "weight_decay": 0.0}}
    method = build_method(name, tiny_backbone, overrides)
    method.prepare_training(entries, taxonomy)
    frozen_before = {n: p.clone() for n, p in method.backbone.named_parameters() if not p.requires_grad}
    batch = _batch(method, entries)
    opt = torch.optim.AdamW([p for p in method.parameters() if p.requires_grad], lr=overrides["optimizer"]["lr"])
    first = None
    for _ in range(30):
        loss = method.training_losses(batch)["loss"]
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    final = float(method.training_losses(batch)["loss"])
    assert final < first - 0.1, (first, final)  # near log(16) at start: a clear drop
    for n, p in method.backbone.named_parameters():
        if n in frozen_before:
            assert torch.equal(p, frozen_before[n]), n


@pytest.mark.parametrize("reading", ["A", "B"])
def test_dcar_negatives_and_category_flags_follow_the_reading(reading, tiny_backbone, labelled_set):
    entries, taxonomy = labelled_set
    method = build_method("dcar", tiny_backbone, {"reading": reading})
    method.prepare_training(entries, taxonomy)
    batch = method.negatives.for_batch(entries[:4])
    assert batch.same_category.shape == (4, 4)
    assert len(batch.texts) == int((batch.same_category >= 0).sum()) > 0
    for text, owner, slot in zip(batch.texts, batch.owner.tolist(), batch.slot.tolist()):
        entry = entries[owner]
        assert text != entry.caption
        keeps_sub = entry.category in text
        flag = bool(batch.same_category[owner, slot])
        if reading == "A":
            assert flag == keeps_sub
        else:  # swaps go to same-meta siblings first, attribute changes keep the category
            named = [c for c in taxonomy if c in text]
            assert flag == (taxonomy[named[0]] == taxonomy[entry.category])


def test_dcar_token_weights_change_training_features(tiny_backbone, labelled_set):
    entries, taxonomy = labelled_set
    torch.manual_seed(0)
    with_dtr = build_method("dcar", tiny_backbone, {"lam": 0.0, "gamma": 1.0})
    torch.manual_seed(0)
    without = build_method("dcar", tiny_backbone, {"lam": 0.0, "dtr": False})
    batch = _batch(with_dtr, entries[:4])
    a = with_dtr.training_losses(batch)["loss"]
    b = without.training_losses(batch)["loss"]
    assert not torch.isclose(a, b)
    # gamma = 0 gives unit weights: identical to no DTR
    torch.manual_seed(0)
    unit = build_method("dcar", tiny_backbone, {"lam": 0.0, "gamma": 0.0})
    assert torch.isclose(unit.training_losses(batch)["loss"], b)


def test_dcar_forward_only_negatives_keep_the_loss_and_drop_their_prompt_gradients(tiny_backbone, labelled_set):
    entries, taxonomy = labelled_set
    runs = {}
    for flag in (True, False):
        torch.manual_seed(0)
        method = build_method("dcar", tiny_backbone, {"negative_gradients": flag})
        method.prepare_training(entries, taxonomy)
        losses = method.training_losses(_batch(method, entries[:4]))
        losses["loss"].backward()
        runs[flag] = (losses, method.prompts.text.layers[0].grad.clone(), method.caa.up.weight.grad)
    (full, full_grad, _), (fwd, fwd_grad, caa_grad) = runs[True], runs[False]
    # the same numbers go into the loss either way ...
    assert torch.allclose(full["l_cate"], fwd["l_cate"], atol=1e-5)
    assert torch.allclose(full["loss"], fwd["loss"], atol=1e-5)
    # ... but the prompts no longer learn from the negatives' side, while CAA still does
    assert not torch.allclose(full_grad, fwd_grad, atol=1e-7)
    assert caa_grad is not None and caa_grad.abs().sum() > 0


def test_dcar_caa_at_inference_also_trains_l_con_through_caa(tiny_backbone, labelled_set):
    entries, taxonomy = labelled_set
    got = {}
    for flag in (False, True):
        torch.manual_seed(0)
        method = build_method("dcar", tiny_backbone, {"caa_at_inference": flag, "lam": 0.0})
        batch = _batch(method, entries[:4])
        losses = method.training_losses(batch)
        losses["loss"].backward()
        got[flag] = (losses["l_con"], method.caa.up.weight.grad)
    # L_con alone: CAA is only in its graph when it is part of the inference text encoder
    assert got[False][1] is None
    assert got[True][1] is not None and got[True][1].abs().sum() > 0
    assert not torch.isclose(got[False][0], got[True][0])
