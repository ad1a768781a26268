"""CLIP backbones with a prompted forward: load one with :func:`load_backbone` from a spec string.

Implementations (``OpenClipBackbone``, ``HFClipBackbone``) are imported lazily by the loaders so
``import dcar.backbone`` stays cheap and transformers stays optional.
"""

from dcar.backbone.base import Backbone, BackboneInfo, TowerPrompts
from dcar.backbone.registry import LOADERS, load_backbone, register_loader

__all__ = [
    "Backbone",
    "BackboneInfo",
    "TowerPrompts",
    "LOADERS",
    "load_backbone",
    "register_loader",
]
