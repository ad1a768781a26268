"""A tiny deterministic RetrievalEncoder with known answers, for evaluation tests without a model.

An image's feature is its mean colour; a caption's feature is the colour it names ("red", "green",
"blue", or three numbers "r g b"). So red images retrieve "red" captions, and so on.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

COLOURS = {"red": (1.0, 0.0, 0.0), "green": (0.0, 1.0, 0.0), "blue": (0.0, 0.0, 1.0)}


def to_pixels(im: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(im.resize((4, 4)), dtype=np.float32) / 255.0).permute(2, 0, 1)


class ColourEncoder:
    model = "test:colour"
    method = "zeroshot"

    def __init__(self):
        self.text_calls: list[list[str]] = []
        self.image_rows = 0

    def fingerprint(self) -> str:
        return "colour-v1"

    def image_transform(self):
        return to_pixels

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        self.image_rows += pixels.shape[0]
        return torch.nn.functional.normalize(pixels.mean((2, 3)) + 1e-3, dim=1)

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        self.text_calls.append(list(texts))
        rows = [COLOURS.get(t.split()[-1]) or tuple(float(x) for x in t.split()[-3:]) for t in texts]
        return torch.nn.functional.normalize(torch.tensor(rows) + 1e-3, dim=1)
