from __future__ import annotations

from dataclasses import dataclass, field

from dcar.backbone.base import Backbone
from dcar.methods.base import DualPromptMethod, MethodConfig, OptimizerDefaults
from dcar.methods.registry import register_method
from dcar.prompts import DualPrompts


@dataclass
class MapleConfig(MethodConfig):
    """MaPLe defaults: 2 prompts, depth 9, layer-0 text prompts from "a photo", SGD lr 0.0035.

    With captions the init string's remaining words are not kept as frozen text (they would
    precede every caption); only the first ``n_ctx`` words initialise the vectors.
    """

    method = "maple"
    n_ctx: int = 2
    depth: int = 9
    init_words: str | None = "a photo of a"
    optimizer: OptimizerDefaults = field(default_factory=lambda: OptimizerDefaults("sgd", 0.0035, 5e-4))


@register_method("deep text prompts coupled to image prompts by linear maps")
class MapleModel(DualPromptMethod):
    config_class = MapleConfig

    def __init__(self, backbone: Backbone, config: MaPLeConfig):
        super().__init__(backbone, config)
        self.prompts = DualPrompts(backbone, config.n_ctx, config.depth, config.init_words)
