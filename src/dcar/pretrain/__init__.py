"""Pretraining recipe for the small built-in CLIP (`dcar pretrain`)."""

from dcar.pretrain.presets import PRESETS, Preset, get_preset
from dcar.pretrain.train import train

__all__ = ["PRESETS", "Preset", "get_preset", "train"]
