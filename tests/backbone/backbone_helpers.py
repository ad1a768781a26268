"""Tiny random-weight CLIP models and helpers shared by the backbone tests.

Architectures are registered with open_clip under ``dcar-test-*`` names (``open_clip.add_model_config``
on JSON files in a temporary folder, see conftest.py), so the real ``open_clip:ARCH[:FILE]`` code path
is exercised. Max abs differences against the libraries' own encoders are collected in
``EQUIVALENCE`` and printed in the terminal summary (conftest.py) so they can be reported.
"""

from __future__ import annotations

import open_clip
import torch

# name -> open_clip model config ("dcar-test-tiny" comes from tests/conftest.py's tiny fixture).
# Shapes differ in widths, heads, patch size, depth, image size, activation and text-tower layout
# (CLIP vs CustomTextCLIP); the ResNet one has no ViT tower.
OPEN_CLIP_TEST_CFGS: dict[str, dict] = {
    "dcar-test-wide": {
        "embed_dim": 24,
        "vision_cfg": {"image_size": 48, "layers": 3, "width": 96, "patch_size": 16, "head_width": 32},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 48, "heads": 4, "layers": 3},
    },
    "dcar-test-custom": {
        "embed_dim": 16,
        "quick_gelu": True,
        "custom_text": True,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 4, "head_width": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 4},
    },
    "dcar-test-resnet": {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
    },
}
VIT_ARCHS = ["dcar-test-tiny", "dcar-test-wide", "dcar-test-custom"]

HF_TINY_CFG = dict(
    text_config=dict(
        vocab_size=49408, hidden_size=64, intermediate_size=256, num_hidden_layers=3,
        num_attention_heads=2, max_position_embeddings=77, projection_dim=32,
    ),
    vision_config=dict(
        hidden_size=48, intermediate_size=192, num_hidden_layers=3, num_attention_heads=3,
        image_size=32, patch_size=8, projection_dim=32,
    ),
    projection_dim=32,
)

CAPTIONS = [
    "a photo of a small striped cat sitting on a wooden chair",
    "This is a Boeing 747. It has four engines and a white fuselage with blue stripes.",
    "dog",
    " ".join(["very"] * 120) + " long caption",  # longer than the context: truncated
]

EQUIVALENCE: dict[str, float] = {}


def record_equivalence(name: str, diff: float) -> None:
    EQUIVALENCE[name] = max(diff, EQUIVALENCE.get(name, 0.0))


def make_open_clip(name: str, seed: int = 0) -> torch.nn.Module:
    """A random-weight open_clip model, deterministic for a given seed, in eval mode."""
    torch.manual_seed(seed)
    return open_clip.create_model(name, precision="fp32").eval()


def make_hf_clip(seed: int = 0):
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(seed)
    return CLIPModel(CLIPConfig(**HF_TINY_CFG)).eval()


def images_for(size: int, n: int = 3, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=g)


# ----------------------------------------------------------------------------- internals access
class Internals:
    """The library modules a test needs to look inside a backbone (blocks, embeddings, norms)."""

    def __init__(self, backbone):
        from dcar.backbone.hf_backbone import HFClipBackbone

        if isinstance(backbone, HFClipBackbone):
            m = backbone.model
            self.text_blocks = list(m.text_model.encoder.layers)
            self.image_blocks = list(m.vision_model.encoder.layers)
            self.token_embedding = m.text_model.embeddings.token_embedding
            self.text_positions = m.text_model.embeddings.position_embedding.weight
            self.image_pre_norm = m.vision_model.pre_layrnorm
        else:
            text, vit = backbone._text, backbone._vit
            self.text_blocks = list(text.transformer.resblocks)
            self.image_blocks = list(vit.transformer.resblocks)
            self.token_embedding = text.token_embedding
            self.text_positions = text.positional_embedding
            self.image_pre_norm = vit.ln_pre


class BlockRecorder:
    """Records each block's input and output (first positional argument / return value)."""

    def __init__(self, blocks):
        self.blocks = blocks
        self.inputs: list[torch.Tensor] = []
        self.outputs: list[torch.Tensor] = []
        self._handles = []

    def __enter__(self) -> "BlockRecorder":
        for block in self.blocks:
            self._handles.append(block.register_forward_pre_hook(lambda m, a: self.inputs.append(a[0].detach().clone())))
            self._handles.append(block.register_forward_hook(lambda m, a, o: self.outputs.append(o.detach().clone())))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
