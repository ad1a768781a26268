"""Any method as the evaluation's ``RetrievalEncoder`` (inference mode, normalised features)."""

from __future__ import annotations

from typing import Callable

import torch
from PIL import Image

from dcar.evaluation.encoders import weights_digest
from dcar.methods.base import RetrievalMethod


class MethodEncoder:
    def __init__(self, method: RetrievalMethod, label: str | None = None):
        self.impl = method.eval()
        self.model = method.backbone.spec
        self.method = label or method.config.method
        self.rerank_k = method.rerank_k  # > 0: the evaluation re-scores each query's top-K pairwise

    def frozen_encoder(self):
        from dcar.evaluation.encoders import ZeroShotEncoder

        return ZeroShotEncoder(self.impl.backbone)

    @torch.inference_mode()
    def encode_texts_for_images(self, texts: list[str], frozen_image_features: torch.Tensor) -> torch.Tensor:
        return self.impl.encode_texts_for_images(list(texts), frozen_image_features.to(self.impl.backbone.device))

    def fingerprint(self) -> str:
        return f"{self.method}|{self.model}|{self.impl.config.to_dict()}|{weights_digest(self.impl)}"

    def image_transform(self) -> Callable[[Image.Image], torch.Tensor]:
        return self.impl.image_transform(train=False)

    @torch.inference_mode()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.impl.encode_images(pixels)

    @torch.inference_mode()
    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        return self.impl.encode_texts(list(texts))
