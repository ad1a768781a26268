"""What evaluation needs from a model: normalised image and text features, nothing else.

:class:`RetrievalEncoder` is the seam between evaluation and methods: zero-shot CLIP implements it
here; trained prompt methods (CoOp, MaPLe, DCAR, ...) implement it over their learned prompts and
reuse :func:`dcar.evaluation.evaluate.evaluate` and ``dcar embed`` unchanged.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Protocol, runtime_checkable

import torch
from PIL import Image

from dcar.backbone.base import Backbone


@runtime_checkable
class RetrievalEncoder(Protocol):
    """A dual encoder as evaluation sees it."""

    model: str  # the backbone spec it was built on (recorded in results)
    method: str  # "zeroshot", "coop", "dcar", ... (recorded in results)

    def fingerprint(self) -> str:
        """Changes whenever the encoder's outputs may change: keys resumable embedding caches."""

    def image_transform(self) -> Callable[[Image.Image], torch.Tensor]:
        """PIL RGB image -> pixel tensor ``[3, H, W]`` (runs in data-loader workers: picklable)."""

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` -> L2-normalised features ``[B, E]``."""

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        """Captions -> L2-normalised features ``[len(texts), E]``."""


class ZeroShotEncoder:
    """The backbone as pretrained: no prompts, unit token weights."""

    method = "zeroshot"

    def __init__(self, backbone: Backbone):
        self.backbone = backbone.eval()
        self.model = backbone.spec

    def fingerprint(self) -> str:
        # The spec alone is not enough: ``open_clip:ARCH`` is a fresh random init on every load.
        return f"{self.method}|{self.model}|{weights_digest(self.backbone)}"

    def image_transform(self) -> Callable[[Image.Image], torch.Tensor]:
        return self.backbone.image_transform(train=False)

    @torch.inference_mode()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        pixels = pixels.to(self.backbone.device, non_blocking=True)
        return self.backbone.encode_image(pixels, normalize=True).float()

    @torch.inference_mode()
    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        ids = self.backbone.tokenize(list(texts)).to(self.backbone.device)
        return self.backbone.encode_text(ids, normalize=True).float()


def weights_digest(module: torch.nn.Module, sample: int = 4096) -> str:
    """A cheap digest of a module's weights: names, shapes and the first ``sample`` values of each."""
    h = hashlib.sha256()
    for name, p in module.state_dict().items():
        h.update(f"{name}{tuple(p.shape)}{p.dtype}".encode())
        h.update(p.detach().flatten()[:sample].float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]
