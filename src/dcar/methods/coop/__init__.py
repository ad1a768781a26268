"""CoOp: learnable text context vectors after the start token (shallow, text tower only)."""

from dcar.methods.coop.model import CoOpConfig, CoOpModel

__all__ = ["CoOpConfig", "CoOpModel"]
