from __future__ import annotations

from dataclasses import dataclass, field

from dcar.backbone.base import Backbone, TowerPrompts
from dcar.methods.base import MethodConfig, OptimizerDefaults, RetrievalMethod
from dcar.methods.registry import register_method
from dcar.prompts import TextPrompts


@dataclass
class CoOpConfig(MethodConfig):
    """CoOp defaults: 16 unified context vectors, "end" class position, SGD lr 0.002.

    Captions replace class names: [SOS][ctx_1..ctx_M][caption][EOT] (BASELINES.md section 1).
    """

    method = "coop"
    n_ctx: int = 16
    init_words: str | None = None  # e.g. "a photo of a" (then n_ctx = its word count, as CoOp)
    optimizer: OptimizerDefaults = field(default_factory=lambda: OptimizerDefaults("sgd", 0.002, 5e-4))


@register_method("16 learnable text context vectors after the start token")
class CoOpModel(RetrievalMethod):
    config_class = CoOpConfig

    def __init__(self, backbone: Backbone, config: CoOpConfig):
        super().__init__(backbone, config)
        n_ctx = len(config.init_words.split()) if config.init_words else config.n_ctx
        self.ctx = TextPrompts(backbone, n_ctx, depth=1, init_words=config.init_words)

    @property
    def text_prompt_length(self) -> int:
        return self.ctx.length

    def text_prompts(self) -> TowerPrompts:
        return self.ctx()
