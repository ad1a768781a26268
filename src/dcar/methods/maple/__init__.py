"""MaPLe: deep text prompts with image prompts coupled to them by linear maps (ViT towers)."""

from dcar.methods.maple.model import MapleConfig, MapleModel

__all__ = ["MapleConfig", "MapleModel"]
