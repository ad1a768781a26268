from __future__ import annotations

from dataclasses import dataclass, field

from dcar.backbone.base import Backbone
from dcar.methods.base import MethodConfig, OptimizerDefaults, RetrievalMethod
from dcar.methods.registry import register_method


@dataclass
class FinetuneConfig(MethodConfig):
    """All weights trainable except the logit scale (kept frozen like every other method here);
    AdamW at a fine-tuning learning rate as FineCLIP/ALIP use on CLIP (1e-5)."""

    method = "finetune"
    optimizer: OptimizerDefaults = field(default_factory=lambda: OptimizerDefaults("adamw", 1e-5, 0.1))


@register_method("every weight trained (the cost/accuracy reference)")
class FinetuneModel(RetrievalMethod):
    config_class = FinetuneConfig

    def __init__(self, backbone: Backbone, config: FineTuneConfig):
        super().__init__(backbone, config)
        for name, p in self.backbone.named_parameters():
            p.requires_grad_("logit_scale" not in name)
