"""Learnable prompt tokens for the text and image towers.

- :class:`TextPrompts`: context vectors v_1..v_k after the start token, one fresh set per layer for
  the first J layers (J = 1 is shallow prompting).
- :class:`CoupledImagePrompts`: image prompts generated from the text prompts by a learnable linear
  map per layer, e = F_i(v_i) (MaPLe's coupling; DCAR's "semantic analysis guides generation").

Each module returns a :class:`~dcar.backbone.base.TowerPrompts` that the backbone consumes.
"""

from __future__ import annotations

import torch
from torch import nn

from dcar.backbone.base import Backbone, TowerPrompts


def _layer_count(depth: int, n_layers: int) -> int:
    """Prompt depth J clipped to the tower's depth (MaPLe's J=9 on a 6-layer model means all 6)."""
    if depth < 1:
        raise ValueError(f"prompt depth must be >= 1, got {depth}")
    return min(depth, n_layers)


class TextPrompts(nn.Module):
    """k context vectors per layer for the first J text layers.

    ``init_words`` initialises the layer-0 vectors from the token embeddings of real words (CoOp's
    CTX_INIT, e.g. "a photo of a"); the remaining layers start at N(0, 0.02) as in MaPLe.
    """

    def __init__(self, backbone: Backbone, length: int, depth: int = 1, init_words: str | None = None):
        super().__init__()
        if length < 1:
            raise ValueError(f"prompt length must be >= 1, got {length}")
        info = backbone.info
        self.length = length
        n_layers = _layer_count(depth, info.text_layers)
        vectors = [torch.randn(length, info.text_width) * 0.02 for _ in range(n_layers)]
        if init_words:
            vectors[0] = _word_embeddings(backbone, init_words, length)
        self.layers = nn.ParameterList([nn.Parameter(v) for v in vectors])

    def forward(self) -> TowerPrompts:
        return TowerPrompts(list(self.layers))


def _word_embeddings(backbone: Backbone, words: str, length: int) -> torch.Tensor:
    """The first ``length`` token embeddings of ``words`` (after the start token)."""
    ids = backbone.tokenize([words])[0]
    n_tokens = int((ids > 0).sum()) - 2  # minus start and end tokens
    if n_tokens < length:
        raise ValueError(f"init words {words!r} give {n_tokens} tokens, fewer than the {length} prompts")
    with torch.no_grad():
        emb = backbone.token_embeddings(ids[None, 1 : 1 + length])[0]
    return emb.detach().float().cpu().clone()


class CoupledImagePrompts(nn.Module):
    """Image prompts e_i = F_i(v_i): one linear map (text width -> vision width) per prompted layer.

    The vision tower gets as many prompted layers as the text tower (capped at its own depth).
    Unlike MaPLe's clones of one layer, each map starts from its own random initialisation.
    """

    def __init__(self, backbone: Backbone, text_prompts: TextPrompts):
        super().__init__()
        info = backbone.info
        n_layers = min(len(text_prompts.layers), info.vision_layers)
        self.text_prompts = [text_prompts]  # a list so the text prompts are not registered twice
        self.maps = nn.ModuleList(nn.Linear(info.text_width, info.vision_width) for _ in range(n_layers))

    def forward(self) -> TowerPrompts:
        text = self.text_prompts[0].layers
        return TowerPrompts([f(v) for f, v in zip(self.maps, text)])


class DualPrompts(nn.Module):
    """Text prompts plus image prompts generated from them (MaPLe's and DCAR's prompt pair).

    ``image=False`` keeps only the text side (the "without image prompts" ablation).
    """

    def __init__(
        self, backbone: Backbone, length: int, depth: int, init_words: str | None = None, image: bool = True
    ):
        super().__init__()
        self.text = TextPrompts(backbone, length, depth, init_words)
        self.image = CoupledImagePrompts(backbone, self.text) if image else None

    @property
    def length(self) -> int:
        return self.text.length

    def text_prompts(self) -> TowerPrompts:
        return self.text()

    def image_prompts(self) -> TowerPrompts | None:
        return self.image() if self.image is not None else None
