from __future__ import annotations

from dataclasses import dataclass

from dcar.methods.base import MethodConfig, RetrievalMethod
from dcar.methods.registry import register_method


@dataclass
class ZeroShotConfig(MethodConfig):
    method = "zeroshot"


@register_method("the frozen backbone as it is, nothing trained")
class ZeroShotModel(RetrievalMethod):
    config_class = ZeroShotConfig
