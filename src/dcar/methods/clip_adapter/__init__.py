"""CLIP-Adapter: a residual bottleneck MLP on the frozen image feature (text tower untouched)."""

from dcar.methods.clip_adapter.model import ClipAdapterConfig, ClipAdapterModel

__all__ = ["ClipAdapterConfig", "ClipAdapterModel"]
