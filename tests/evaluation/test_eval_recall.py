from __future__ import annotations

import numpy as np
import pytest
import torch

from dcar.evaluation.recall import hard_negative_accuracy, recall_at_k, retrieval_ranks


def unit(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def naive_recall(images, texts, owner, ks=(1, 5, 10)) -> dict:
    """The textbook computation: full score matrix, top-k, is a positive among them."""
    scores = torch.as_tensor(images).double() @ torch.as_tensor(texts).double().T  # [N, M]
    owner = torch.as_tensor(owner)
    out = {"i2t": {}, "t2i": {}}
    for k in ks:
        top_t = scores.topk(min(k, scores.shape[1]), dim=1).indices  # [N, k]
        i2t_hit = (owner[top_t] == torch.arange(scores.shape[0])[:, None]).any(1)
        top_i = scores.T.topk(min(k, scores.shape[0]), dim=1).indices  # [M, k]
        t2i_hit = (top_i == owner[:, None]).any(1)
        out["i2t"][f"R@{k}"] = 100.0 * i2t_hit.double().mean().item()
        out["t2i"][f"R@{k}"] = 100.0 * t2i_hit.double().mean().item()
    return out


def test_perfect_retrieval():
    r = recall_at_k(np.eye(3), np.eye(3), [0, 1, 2])
    assert r == {d: {"R@1": 100.0, "R@5": 100.0, "R@10": 100.0} for d in ("i2t", "t2i")}


def test_known_ranks_with_several_captions_and_a_tie():
    images = np.eye(3, dtype=np.float32)
    captions = np.array([[0.6, 0.8, 0], [0.8, 0.6, 0], [0, 0.6, 0.8], [0, 0, 1]], dtype=np.float32)
    owner = [0, 0, 1, 2]
    ranks = retrieval_ranks(images, captions, owner)
    # image 0: its best caption (0.8) beats everything; image 1: caption 0 scores 0.8 > 0.6, and
    # caption 1 ties its own caption at 0.6 (a tie does not push it down); image 2: first.
    assert ranks.i2t.tolist() == [0, 1, 0]
    # caption 0 prefers image 1 (0.8 > 0.6); caption 2 prefers image 2 (0.8 > 0.6).
    assert ranks.t2i.tolist() == [1, 0, 1, 0]
    r = recall_at_k(images, captions, owner, ks=(1, 2))
    assert r["i2t"] == pytest.approx({"R@1": 200 / 3, "R@2": 100.0})
    assert r["t2i"] == {"R@1": 50.0, "R@2": 100.0}


def test_duplicates_tie_optimistically():
    images = unit([[1, 0], [1, 0], [0, 1]])  # images 0 and 1 are identical
    captions = unit([[1, 0], [1, 0], [0, 1]])  # so are captions 0 and 1
    ranks = retrieval_ranks(images, captions, [0, 1, 2])
    assert ranks.i2t.tolist() == [0, 0, 0] and ranks.t2i.tolist() == [0, 0, 0]


def test_rank_counts_every_better_caption():
    images = unit([[1, 0]])
    angles = np.linspace(0.1, 1.5, 12)  # 12 captions, ever further from the image
    captions = np.stack([np.cos(angles), np.sin(angles)], 1).astype(np.float32)
    captions = np.concatenate([captions, unit([[0, 1]])])  # a 13th "image" gallery needs owners
    images = np.concatenate([images, unit([[0, 1]])])
    owner = [1] * 11 + [0] + [1]  # image 0's only caption is the 12th best
    ranks = retrieval_ranks(images, captions, owner)
    assert ranks.i2t[0] == 11
    assert recall_at_k(images, captions, owner)["i2t"]["R@10"] == 50.0  # image 1 is found, image 0 not


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU"))]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("block_elements", [7, 100, 1 << 24])
def test_matches_full_matrix_on_random_data(block_elements, device):
    rng = np.random.default_rng(0)
    n, e = 60, 16
    owner = np.concatenate([np.arange(n), rng.integers(0, n, size=140)])  # 1..~7 captions per image
    rng.shuffle(owner)
    images = unit(rng.normal(size=(n, e)))
    captions = unit(images[owner] + 1.2 * rng.normal(size=(len(owner), e)))  # noisy: ranks spread
    got = recall_at_k(images, captions, owner, block_elements=block_elements, device=device)
    want = naive_recall(images, captions, owner)
    for direction in ("i2t", "t2i"):
        assert got[direction] == pytest.approx(want[direction], abs=1e-9)
    assert 0 < got["i2t"]["R@1"] < 100 and 0 < got["t2i"]["R@5"] < 100  # not a trivial case


def test_torch_inputs_and_bad_inputs():
    r = recall_at_k(torch.eye(2), torch.eye(2), torch.tensor([1, 0]))
    assert r["i2t"]["R@1"] == 0.0 and r["t2i"]["R@1"] == 0.0 and r["i2t"]["R@5"] == 100.0
    with pytest.raises(ValueError, match="1 images have no caption"):
        retrieval_ranks(np.eye(2), np.eye(2), [0, 0])
    with pytest.raises(ValueError, match="outside"):
        retrieval_ranks(np.eye(2), np.eye(2), [0, 2])
    with pytest.raises(ValueError, match="one index per caption"):
        retrieval_ranks(np.eye(2), np.eye(2), [0])
    with pytest.raises(ValueError, match=r"\[N, E\]"):
        retrieval_ranks(np.eye(2), np.eye(3), [0, 1, 1])


def test_hard_negative_accuracy():
    images = np.eye(3, dtype=np.float32)
    positives = np.eye(3, dtype=np.float32)
    groups = [
        np.array([[0.6, 0.8, 0], [0, 1, 0]], dtype=np.float32),  # positive 1.0 beats 0.6 and 0: win
        np.array([[0, 1, 0]], dtype=np.float32),  # the positive itself: a tie, not a win
        np.zeros((0, 3), dtype=np.float32),  # no negatives: left out
    ]
    assert hard_negative_accuracy(images, positives, groups) == 50.0
    stacked = np.stack([np.array([[0, 1, 0]]), np.array([[0, 0, 1]]), np.array([[1, 0, 0]])]).astype(np.float32)
    assert hard_negative_accuracy(images, positives, stacked) == 100.0
    assert hard_negative_accuracy(images, positives, [np.zeros((0, 3))] * 3) is None
    loser = [np.array([[1, 0, 0]]) * 1.0, np.array([[0.0, 0.9, 0.1]]), np.array([[0.0, 0.0, 1.0]])]
    assert hard_negative_accuracy(images, positives * 0.5, loser) == 0.0
    with pytest.raises(ValueError, match="2 negative groups for 3 images"):
        hard_negative_accuracy(images, positives, groups[:2])


def float64_ranks(images, texts, owner, tol=1e-10):
    """The definition, on a full float64 matrix: competitors above the (best) positive score."""
    s = np.asarray(images, np.float64) @ np.asarray(texts, np.float64).T  # [N, M]
    owner = np.asarray(owner)
    positive = owner[None, :] == np.arange(len(images))[:, None]
    best = np.where(positive, s, -np.inf).max(1)
    own = s[owner, np.arange(len(owner))]
    i2t = ((s > best[:, None] + tol) & ~positive).sum(1)
    t2i = ((s > own[None, :] + tol) & ~positive).sum(0)
    return i2t, t2i


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("block_elements", [30, 1 << 24])
def test_duplicates_and_near_duplicates_follow_float64(block_elements, device):
    """Exact copies tie (bit-identical float64 scores); copies nudged by 1e-7, below float32
    matrix-product error, are still ordered as float64 orders them."""
    rng = np.random.default_rng(1)
    base = unit(rng.normal(size=(12, 64)))
    images = np.concatenate([base, base[:4], base[4:8] + 1e-7 * rng.normal(size=(4, 64))]).astype(np.float32)
    owner = np.concatenate([np.arange(20), rng.integers(0, 20, size=20)])
    texts = images[owner] + 0.3 * rng.normal(size=(40, 64)).astype(np.float32)
    texts[20:30] = texts[:10] + 1e-7 * rng.normal(size=(10, 64)).astype(np.float32)
    texts[30:35] = texts[0:5]  # exact copies attached to other images
    got = retrieval_ranks(images, texts, owner, block_elements=block_elements, device=device)
    want_i2t, want_t2i = float64_ranks(images, texts, owner)
    assert got.i2t.tolist() == want_i2t.tolist() and got.t2i.tolist() == want_t2i.tolist()
    assert got.i2t.max() > 0 and got.t2i.max() > 0


def test_tf32_setting_is_restored():
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    try:
        recall_at_k(np.eye(2), np.eye(2), [0, 1])
        assert torch.get_float32_matmul_precision() == "medium"
    finally:
        torch.set_float32_matmul_precision(before)
