"""DTR weights, losses and the LR schedule on hand-made inputs (no model needed)."""

import math

import pytest
import torch
import torch.nn.functional as F

from dcar.losses import category_loss, contrastive_loss
from dcar.reweighting import caption_token_mask, dtr_weights
from dcar.training.schedule import epoch_lr

EOT = 49407


def test_caption_mask_excludes_start_end_and_padding():
    ids = torch.tensor([[49406, 10, 11, 12, EOT, 0, 0], [49406, 20, EOT, 0, 0, 0, 0]])
    mask = caption_token_mask(ids)
    assert mask.tolist() == [
        [False, True, True, True, False, False, False],
        [False, True, False, False, False, False, False],
    ]


def test_dtr_weights_follow_the_formula_and_average_one():
    ids = torch.tensor([[49406, 10, 11, 12, EOT, 0]])
    mask = caption_token_mask(ids)
    delta = torch.tensor([[9.0, 0.1, 0.2, 0.7, 5.0, 3.0]])  # values outside the mask must not count
    w = dtr_weights(delta, mask, gamma=0.5)
    expected = 0.5 + 0.5 * 3 * torch.tensor([0.1, 0.2, 0.7]) / 1.0
    assert torch.allclose(w[0, 1:4], expected)
    assert w[0, 1:4].mean().item() == pytest.approx(1.0)
    assert w[0, [0, 4, 5]].tolist() == [1.0, 1.0, 1.0]
    assert (w[0, 1:4] > 0).all()


def test_dtr_gamma_zero_is_unit_and_zero_contrast_is_unit():
    ids = torch.tensor([[49406, 10, 11, EOT]])
    mask = caption_token_mask(ids)
    assert torch.equal(dtr_weights(torch.rand(1, 4), mask, 0.0), torch.ones(1, 4))
    assert torch.equal(dtr_weights(torch.zeros(1, 4), mask, 1.0), torch.ones(1, 4))
    with pytest.raises(ValueError):
        dtr_weights(torch.zeros(1, 4), mask, 1.5)


def test_contrastive_loss_matches_manual_cross_entropy():
    torch.manual_seed(0)
    img = F.normalize(torch.randn(4, 8), dim=-1)
    txt = F.normalize(torch.randn(4, 8), dim=-1)
    scale = torch.tensor(100.0)
    logits = scale * img @ txt.t()
    manual = 0.0
    for i in range(4):
        manual += -torch.log_softmax(logits[i], 0)[i] - torch.log_softmax(logits[:, i], 0)[i]
    assert contrastive_loss(img, txt, scale).item() == pytest.approx(manual.item() / 8, rel=1e-5)


def test_category_loss_weights_same_category_negatives():
    img = torch.tensor([[1.0, 0.0]])
    pos = torch.tensor([[1.0, 0.0]])
    negs = torch.tensor([[[0.0, 1.0], [0.6, 0.8]]])
    scale = torch.tensor(1.0)
    same = torch.tensor([[0, 1]])
    alpha = 0.5
    expected = -math.log(math.e / (math.e + 1.0 * math.exp(0.0) + 1.5 * math.exp(0.6)))
    assert category_loss(img, pos, negs, same, alpha, scale).item() == pytest.approx(expected, rel=1e-6)
    # alpha = 0: plain softmax over positive and negatives
    plain = -math.log(math.e / (math.e + 1.0 + math.exp(0.6)))
    assert category_loss(img, pos, negs, same, 0.0, scale).item() == pytest.approx(plain, rel=1e-6)
    # padding (-1) drops the negative entirely
    padded = torch.tensor([[0, -1]])
    only_first = -math.log(math.e / (math.e + 1.0))
    assert category_loss(img, pos, negs, padded, alpha, scale).item() == pytest.approx(only_first, rel=1e-6)


def test_dassl_schedule_warmup_then_cosine_never_zero():
    lrs = [epoch_lr(e, 0.002, epochs=5) for e in range(5)]
    assert lrs[0] == 1e-5
    assert lrs[1] == pytest.approx(0.002)
    assert lrs[1] > lrs[2] > lrs[3] > lrs[4] > 0
    assert lrs[3] == pytest.approx(0.002 * 0.5 * (1 + math.cos(math.pi * 2 / 5)))
