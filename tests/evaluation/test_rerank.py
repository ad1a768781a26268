"""Re-rank inference on hand-made features: known answers, and identity when scores agree."""

import numpy as np
import torch

from dcar.evaluation.recall import recall_at_k
from dcar.evaluation.rerank import reranked_recall


class TableScorer:
    """Pair scores from a fixed table, so the expected ranks can be worked out by hand."""

    def __init__(self, table: np.ndarray, k: int):
        self.table, self.rerank_k = table, k
        self.calls = 0

    def encode_texts_for_images(self, texts, frozen):
        # frozen carries the image row; texts carry the caption row: return a feature whose dot
        # with the image feature (a one-hot row) equals table[image, caption].
        self.calls += len(texts)
        rows = frozen[:, 0].long()
        cols = torch.tensor([int(t) for t in texts])
        out = torch.zeros(len(texts), self.table.shape[0])
        out[torch.arange(len(texts)), rows] = torch.from_numpy(self.table[rows.numpy(), cols.numpy()])
        return out


def _setup(n=4):
    image_feats = np.eye(n, dtype=np.float32)
    frozen = np.arange(n, dtype=np.float32)[:, None].repeat(2, axis=1)
    captions = [str(i) for i in range(n)]
    owner = np.arange(n)
    return image_feats, frozen, captions, owner


def test_rerank_fixes_a_wrong_first_stage_inside_the_top_k():
    image_feats, frozen, captions, owner = _setup()
    # first stage: image 0's caption is ranked second (caption 1 looks closer)
    caption_feats = np.eye(4, dtype=np.float32)
    caption_feats[1] = [0.9, 0.44, 0, 0]
    caption_feats[0] = [0.8, 0, 0, 0.6]
    base = recall_at_k(image_feats, caption_feats, owner)
    table = np.full((4, 4), -1.0, dtype=np.float32)
    np.fill_diagonal(table, 1.0)  # pairwise scores know the truth
    scorer = TableScorer(table, k=2)
    out = reranked_recall(scorer, image_feats, frozen, caption_feats, captions, owner)
    assert base["i2t"]["R@1"] < 100.0
    assert out["i2t"]["R@1"] == 100.0 and out["t2i"]["R@1"] == 100.0
    assert scorer.calls == 2 * 4 * 2  # k candidates per query, both directions


def test_positive_outside_the_candidates_keeps_its_first_stage_rank():
    image_feats, frozen, captions, owner = _setup()
    caption_feats = np.roll(np.eye(4, dtype=np.float32), 1, axis=0)  # every caption points at the next image
    table = np.full((4, 4), -1.0, dtype=np.float32)
    np.fill_diagonal(table, 1.0)
    out = reranked_recall(TableScorer(table, k=1), image_feats, frozen, caption_feats, captions, owner)
    base = recall_at_k(image_feats, caption_feats, owner)
    assert out["i2t"]["R@1"] == base["i2t"]["R@1"] == 0.0
    assert out["i2t"]["R@5"] == base["i2t"]["R@5"]
