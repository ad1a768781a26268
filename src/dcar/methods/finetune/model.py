from __future__ import annotations

from dataclasses import dataclass, field

from dcar.backbone.base import Backbone
from dcar.losses import contrastive_loss
from dcar.methods.base import MethodConfig, OptimizerDefaults, RetrievalMethod, TrainBatch


@dataclass
class FineTuneConfig(MethodConfig):
    """All weights trainable except the logit scale (kept frozen like every other method here);
    AdamW at a fine-tuning learning rate as FineCLIP/ALIP use on CLIP (1e-5)."""

    method = "finetune"
    optimizer: OptimizerDefaults = field(default_factory=lambda: OptimizerDefaults("adamw", 1e-5, 0.1))


class FineTune(RetrievalMethod):
    config_class = FineTuneConfig

    def __init__(self, backbone: Backbone, config: FineTuneConfig):
        super().__init__(backbone, config)
        for name, p in self.backbone.named_parameters():
            p.requires_grad_("logit_scale" not in name)

    def training_losses(self, batch: TrainBatch) -> dict:
        loss = contrastive_loss(
            self.encode_images(batch.pixels), self.encode_texts(batch.captions), self.backbone.logit_scale
        )
        return {"loss": loss, "l_con": loss.detach()}
