from __future__ import annotations

from dataclasses import dataclass

from dcar.methods.base import MethodConfig, RetrievalMethod


@dataclass
class ZeroShotConfig(MethodConfig):
    method = "zeroshot"


class ZeroShot(RetrievalMethod):
    config_class = ZeroShotConfig
