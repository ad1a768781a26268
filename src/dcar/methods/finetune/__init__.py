"""Full fine-tuning of both towers: the cost/accuracy reference (not parameter-efficient)."""

from dcar.methods.finetune.model import FinetuneConfig, FinetuneModel

__all__ = ["FinetuneConfig", "FinetuneModel"]
