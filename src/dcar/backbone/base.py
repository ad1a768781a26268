"""The contract every CLIP backbone implements, whatever library it comes from.

A backbone wraps a pretrained dual encoder and exposes one *prompted* forward per tower:

- text: learnable context vectors inserted right after the start token (shallow: at the input;
  deep: fresh vectors replace the prompt slots before each of the first J blocks), optional
  per-token input weights for caption tokens, end-token pooling shifted by the prompt length;
- image (ViT): prompt tokens appended after the patch tokens, shallow or deep likewise.

With no prompts and unit weights both forwards equal the library's own encoders (tested).
Methods (CoOp, MaPLe, DCAR, ...) only ever talk to this interface, never to open_clip or
transformers directly, so each method works on every backbone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable

import torch
from PIL import Image
from torch import nn


@dataclass
class TowerPrompts:
    """Prompt tokens for one tower.

    ``layers[0]`` enters with the input sequence; ``layers[i]`` (i >= 1) replaces the prompt slots
    before transformer block i (deep prompting, MaPLe-style). Each tensor is ``[k, width]`` (shared
    by the batch) or ``[batch, k, width]``. Blocks at or beyond ``len(layers)`` carry the previous
    block's prompt outputs along.
    """

    layers: list[torch.Tensor] = field(default_factory=list)

    @property
    def length(self) -> int:
        """k, the number of prompt tokens."""
        return int(self.layers[0].shape[-2]) if self.layers else 0

    @property
    def depth(self) -> int:
        """J, the number of blocks that receive fresh prompts."""
        return len(self.layers)


@dataclass(frozen=True)
class BackboneInfo:
    """Sizes a prompt method needs to build its parameters (read from the model, never hard-coded)."""

    embed_dim: int
    text_width: int
    vision_width: int
    text_layers: int
    vision_layers: int
    context_length: int
    image_size: int


class Backbone(nn.Module, ABC):
    """A frozen-by-default CLIP dual encoder with a prompted forward in both towers."""

    spec: str  # the model spec string it was loaded from, recorded in checkpoints

    @property
    @abstractmethod
    def info(self) -> BackboneInfo: ...

    @property
    @abstractmethod
    def logit_scale(self) -> torch.Tensor:
        """exp(logit_scale) of the pretrained model, as a 0-d tensor (kept frozen by all methods)."""

    @abstractmethod
    def tokenize(self, texts: list[str], prompt_length: int = 0) -> torch.Tensor:
        """Token ids ``[N, context_length - prompt_length]``: start token, caption, end token, padding.

        Captions too long for the room left by the prompts are truncated with the end token kept.
        """

    @abstractmethod
    def encode_text(
        self,
        ids: torch.Tensor,
        prompts: TowerPrompts | None = None,
        token_weights: torch.Tensor | None = None,
        normalize: bool = False,
    ) -> torch.Tensor:
        """Pooled text features ``[N, embed_dim]``.

        ``ids`` come from :meth:`tokenize` with ``prompt_length = prompts.length``.
        ``token_weights`` (``[N, ids.shape[1]]``) multiplies each token's input embedding.
        """

    @abstractmethod
    def token_embeddings(self, ids: torch.Tensor) -> torch.Tensor:
        """Input token embeddings ``[N, L, text_width]`` (no positions): e.g. to initialise prompt
        vectors from real words, as CoOp's and MaPLe's "a photo of a"."""

    @abstractmethod
    def encode_text_tokens(self, ids: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """Per-token text features ``[N, L, embed_dim]`` of the un-prompted model: every position
        after the final layer norm and the text projection (what token re-weighting compares with
        image features)."""

    @abstractmethod
    def encode_image(
        self, images: torch.Tensor, prompts: TowerPrompts | None = None, normalize: bool = False
    ) -> torch.Tensor:
        """Pooled image features ``[N, embed_dim]`` from preprocessed pixels ``[N, 3, H, W]``."""

    @abstractmethod
    def image_transform(self, train: bool = False) -> Callable[[Image.Image], torch.Tensor]:
        """The model's preprocessing (resize, crop, normalise) for a PIL RGB image."""

    def freeze(self) -> "Backbone":
        """Turn off gradients for every pretrained weight (prompt methods train only their own)."""
        for p in self.parameters():
            p.requires_grad_(False)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device
