"""CoOp: learnable text context vectors after the start token (shallow, text tower only)."""

from dcar.methods.coop.model import CoOp, CoOpConfig

__all__ = ["CoOp", "CoOpConfig"]
