"""Dynamic token re-weighting (DTR).

For caption tokens x_1..x_L paired with image I (start, end, padding and prompt slots excluded):

    Delta_j = | cos(u_j, f(I_blank)) - cos(u_j, f(I)) |                      [paper, figure]
    w_j     = (1 - gamma) + gamma * L * Delta_j / sum_l Delta_l              [ours: mean one]

u_j is the contextual feature of token j from the frozen, un-prompted text encoder (after the final
layer norm and projection, L2-normalised); f is the frozen image encoder; the blank image is the
all-zero tensor after normalisation (the mean-colour image). A token whose similarity moves a lot
between the real and the content-free image is grounded in this image, so it gets more weight.

Everything here uses frozen weights: no gradients, and u_j is cached per caption because it does
not depend on the image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dcar.backbone.base import Backbone


def caption_token_mask(ids: torch.Tensor) -> torch.Tensor:
    """True at caption tokens: after the start token, before the end token (argmax id)."""
    positions = torch.arange(ids.shape[1], device=ids.device)[None, :]
    end = ids.argmax(dim=-1, keepdim=True)
    return (positions >= 1) & (positions < end)


def dtr_weights(delta: torch.Tensor, mask: torch.Tensor, gamma: float) -> torch.Tensor:
    """Token weights from per-token contrasts ``delta`` [N, L]; 1 outside ``mask``.

    Over the masked tokens of each caption the weights average to one and none is zero for
    gamma < 1, so the caption keeps all its words and only their emphasis changes.
    """
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    delta = delta * mask
    n_tokens = mask.sum(dim=1, keepdim=True).clamp(min=1)
    total = delta.sum(dim=1, keepdim=True)
    # A caption whose tokens all have zero contrast keeps unit weights (avoid 0/0).
    share = torch.where(total > 0, n_tokens * delta / total.clamp(min=1e-12), torch.ones_like(delta))
    weights = (1.0 - gamma) + gamma * share
    return torch.where(mask, weights, torch.ones_like(weights))


class TokenReweighter:
    """Computes DTR weights for (caption ids, image) pairs with a frozen backbone."""

    def __init__(self, backbone: Backbone, gamma: float):
        self.backbone = backbone
        self.gamma = gamma
        self._blank: torch.Tensor | None = None
        self._token_cache: dict[tuple[int, ...], torch.Tensor] = {}

    @torch.no_grad()
    def blank_image_feature(self) -> torch.Tensor:
        """f(I_blank): the all-zero normalised image, computed once."""
        if self._blank is None:
            size = self.backbone.info.image_size
            zeros = torch.zeros(1, 3, size, size, device=self.backbone.device)
            self._blank = F.normalize(self.backbone.encode_image(zeros).float(), dim=-1)[0]
        return self._blank

    @torch.no_grad()
    def token_features(self, ids: torch.Tensor) -> torch.Tensor:
        """u_j for every position [N, L, E], cached per caption (captions repeat every epoch)."""
        keys = [tuple(row.tolist()) for row in ids.cpu()]
        missing = [i for i, k in enumerate(keys) if k not in self._token_cache]
        if missing:
            feats = self.backbone.encode_text_tokens(ids[missing], normalize=True).float()
            for i, f in zip(missing, feats):
                self._token_cache[keys[i]] = f
        return torch.stack([self._token_cache[k] for k in keys]).to(ids.device)

    @torch.no_grad()
    def weights(self, ids: torch.Tensor, image_features: torch.Tensor) -> torch.Tensor:
        """Weights [N, L] for captions ``ids`` paired row by row with frozen, normalised
        ``image_features`` [N, E] (or [E] for one image shared by all captions)."""
        u = self.token_features(ids)
        image_features = image_features.float()
        if image_features.dim() == 1:
            image_features = image_features.expand(ids.shape[0], -1)
        s_real = torch.einsum("nle,ne->nl", u, image_features)
        s_blank = u @ self.blank_image_feature()
        return dtr_weights((s_blank - s_real).abs(), caption_token_mask(ids), self.gamma)
