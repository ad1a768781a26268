from __future__ import annotations

from dataclasses import dataclass, field

import torch

from dcar.adapters import ClipAdapter
from dcar.backbone.base import Backbone
from dcar.methods.base import MethodConfig, OptimizerDefaults, RetrievalMethod
from dcar.methods.registry import register_method


@dataclass
class ClipAdapterConfig(MethodConfig):
    """Image adapter, bottleneck D/4, residual ratio alpha (0.2 generic, ~0.6 fine-grained data).

    The reference code ships no optimiser config; we use SGD as CoOp's configs, which it follows.
    """

    method = "clip-adapter"
    ratio: float = 0.6
    reduction: int = 4
    text_adapter: bool = False  # a second adapter on caption features (the paper's variant)
    optimizer: OptimizerDefaults = field(default_factory=lambda: OptimizerDefaults("sgd", 0.002, 5e-4))


@register_method("a residual bottleneck MLP on the image features")
class ClipAdapterModel(RetrievalMethod):
    config_class = ClipAdapterConfig

    def __init__(self, backbone: Backbone, config: ClipAdapterConfig):
        super().__init__(backbone, config)
        dim = backbone.info.embed_dim
        self.image_adapter = ClipAdapter(dim, config.reduction, config.ratio)
        self.text_adapter = ClipAdapter(dim, config.reduction, config.ratio) if config.text_adapter else None

    def image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():  # the tower is frozen: no activations kept for backward
            feats = self.backbone.encode_image(pixels).float()
        return self.image_adapter(feats)

    def text_features(self, ids: torch.Tensor, token_weights: torch.Tensor | None = None) -> torch.Tensor:
        with torch.no_grad():
            feats = self.backbone.encode_text(ids, token_weights=token_weights).float()
        return self.text_adapter(feats) if self.text_adapter is not None else feats
