"""Training objectives.

- :func:`contrastive_loss`: L_con, symmetric InfoNCE over the batch with CLIP's frozen temperature.
- :func:`category_loss`: L_cate, the positive against its own hard negatives, each negative's
  exponent scaled by the category-matching weight w = 1 + alpha when its category equals the
  image's (DCAR figure), else 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dcar.distributed.collective import gather_pairs, world


def contrastive_loss(image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE; row i of both inputs is a matching pair. Inputs are L2-normalised.

    In a DDP step (torchrun) the rows of this rank are contrasted against the whole global batch;
    the loss is scaled so that DDP's average of the ranks' gradients is the gradient of the
    global batch's mean loss, as in one process.
    """
    gathered = gather_pairs(image_features, text_features)
    if gathered is None:
        logits = logit_scale * image_features @ text_features.t()
        labels = torch.arange(logits.shape[0], device=logits.device)
        return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels))
    all_images, all_texts, offset = gathered
    labels = torch.arange(offset, offset + image_features.shape[0], device=image_features.device)
    per_image = F.cross_entropy(logit_scale * image_features @ all_texts.t(), labels, reduction="sum")
    per_text = F.cross_entropy(logit_scale * text_features @ all_images.t(), labels, reduction="sum")
    return 0.5 * (per_image + per_text) * (world().size / all_images.shape[0])


def category_loss(
    image_features: torch.Tensor,
    positive_features: torch.Tensor,
    negative_features: torch.Tensor,
    same_category: torch.Tensor,
    alpha: float,
    logit_scale: torch.Tensor,
) -> torch.Tensor:
    """L_cate = -log( e^{s+/tau} / (e^{s+/tau} + sum_k w_k e^{s_k/tau}) ), averaged over images.

    Shapes: images and positives [B, E]; negatives [B, K, E]; ``same_category`` [B, K] bool (does
    negative k keep the image's category under the chosen reading?). Negatives may be padded:
    pass their weight as 0 through ``same_category`` = -1 (int) to drop them.
    """
    s_pos = logit_scale * (image_features * positive_features).sum(-1, keepdim=True)  # [B, 1]
    s_neg = logit_scale * torch.einsum("be,bke->bk", image_features, negative_features)  # [B, K]
    weights = torch.where(same_category > 0, 1.0 + alpha, 1.0).to(s_neg.dtype)
    weights = torch.where(same_category < 0, torch.zeros_like(weights), weights)
    # log(w * e^s) = s + log(w); a zero weight drops the term (log 0 = -inf).
    s_neg = s_neg + torch.log(weights)
    logits = torch.cat([s_pos, s_neg], dim=1)
    return -(logits.log_softmax(dim=1)[:, 0]).mean()
