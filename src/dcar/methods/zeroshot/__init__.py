"""Zero-shot CLIP: the frozen backbone as it is (the reference every method must beat)."""

from dcar.methods.zeroshot.model import ZeroShotConfig, ZeroShotModel

__all__ = ["ZeroShotConfig", "ZeroShotModel"]
