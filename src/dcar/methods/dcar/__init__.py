"""DCAR: dual prompts + dynamic token re-weighting + category-aware augmentation (L_con + lambda L_cate)."""

from dcar.methods.dcar.model import DcarConfig, DcarModel

__all__ = ["DcarConfig", "DcarModel"]
