"""Full fine-tuning of both towers: the cost/accuracy reference (not parameter-efficient)."""

from dcar.methods.finetune.model import FineTune, FineTuneConfig

__all__ = ["FineTune", "FineTuneConfig"]
