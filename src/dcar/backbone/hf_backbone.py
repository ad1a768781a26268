"""Backbone over a Hugging Face transformers 5.x ``CLIPModel``.

transformers 5.x differences handled here (BASELINES.md section 9): encoder layers take an additive
attention mask and return a tensor; without a mask the text stack would silently run
bidirectionally, so the causal mask is built explicitly; prompts enter through
``embeddings(inputs_embeds=...)``, which adds the position embeddings.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from open_clip.transform import PreprocessCfg, image_transform_v2
from PIL import Image
from torch import nn

from dcar.backbone import prompting as P
from dcar.backbone.base import Backbone, BackboneInfo, TowerPrompts
from dcar.backbone.tokenizer import VOCAB_SIZE, eot_positions, tokenize
from dcar.errors import ModelSpecError


def _causal_mask(length: int, like: torch.Tensor) -> torch.Tensor:
    """Additive [1, 1, L, L] mask: position j attends to positions <= j only."""
    mask = torch.full((length, length), float("-inf"), dtype=like.dtype, device=like.device)
    return mask.triu_(1)[None, None]


def _block_call(mask: torch.Tensor | None) -> P.BlockCall:
    return lambda layer, x: layer(x, mask)


class HFClipBackbone(Backbone):
    """A frozen transformers ``CLIPModel`` with prompted text and image forwards."""

    def __init__(self, model: nn.Module, spec: str, preprocess: dict[str, Any] | None = None):
        super().__init__()
        self.model = model
        self.spec = spec
        self._preprocess = preprocess or {}
        text = model.text_model
        if not all(hasattr(text, a) for a in ("embeddings", "encoder", "final_layer_norm")):
            raise ModelSpecError(f"{spec}: {type(text).__name__} is not a transformers 5.x CLIP text model")
        if text.embeddings.token_embedding.num_embeddings != VOCAB_SIZE:
            raise ModelSpecError(f"{spec}: text vocabulary is not CLIP's 49,408-token BPE")

    @property
    def info(self) -> BackboneInfo:
        tc, vc = self.model.config.text_config, self.model.config.vision_config
        return BackboneInfo(
            embed_dim=int(self.model.text_projection.out_features),
            text_width=int(tc.hidden_size),
            vision_width=int(vc.hidden_size),
            text_layers=len(self.model.text_model.encoder.layers),
            vision_layers=len(self.model.vision_model.encoder.layers),
            context_length=int(tc.max_position_embeddings),
            image_size=int(vc.image_size),
        )

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.model.logit_scale.detach().exp().reshape(())

    def train(self, mode: bool = True) -> "HFClipBackbone":
        """A frozen backbone always runs in eval mode (no dropout), whatever its parent's mode."""
        return super().train(False)

    # ----------------------------------------------------------------- text
    def tokenize(self, texts: list[str], prompt_length: int = 0) -> torch.Tensor:
        return tokenize(texts, self.info.context_length, prompt_length)

    def token_embeddings(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model.text_model.embeddings.token_embedding(ids.to(self.device))

    def encode_text(
        self,
        ids: torch.Tensor,
        prompts: TowerPrompts | None = None,
        token_weights: torch.Tensor | None = None,
        normalize: bool = False,
    ) -> torch.Tensor:
        text = self.model.text_model
        ids = ids.to(self.device)
        ids, token_weights = P.trim_after_end(ids, eot_positions(ids), token_weights)
        emb = text.embeddings
        dtype = emb.token_embedding.weight.dtype
        layers = text.encoder.layers
        deep = P.batch_prompts(prompts, ids.shape[0], self.info.text_width, len(layers), dtype, "text")
        k = deep[0].shape[1] if deep else 0
        P.check_text_length(ids.shape[1], k, self.info.context_length)

        x = P.weight_tokens(emb.token_embedding(ids), token_weights)
        x = emb(inputs_embeds=P.insert_text_prompts(x, deep[0] if deep else None))
        x = P.run_blocks(x, layers, deep, 1, _block_call(_causal_mask(x.shape[1], x)))
        # Per-token LayerNorm: pooling first equals HF's norm-then-pool, at 1/L of the cost.
        pooled = text.final_layer_norm(P.gather_rows(x, eot_positions(ids) + k))
        out = self.model.text_projection(pooled)
        return F.normalize(out, dim=-1) if normalize else out

    def encode_text_tokens(self, ids: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        text = self.model.text_model
        ids = ids.to(self.device)
        P.check_text_length(ids.shape[1], 0, self.info.context_length)
        x = text.embeddings(input_ids=ids)
        x = P.run_blocks(x, text.encoder.layers, [], 1, _block_call(_causal_mask(x.shape[1], x)))
        out = self.model.text_projection(text.final_layer_norm(x))
        return F.normalize(out, dim=-1) if normalize else out

    # ----------------------------------------------------------------- image
    def encode_image(
        self, images: torch.Tensor, prompts: TowerPrompts | None = None, normalize: bool = False
    ) -> torch.Tensor:
        vision = self.model.vision_model
        layers = vision.encoder.layers
        dtype = vision.embeddings.patch_embedding.weight.dtype
        images = images.to(self.device)
        deep = P.batch_prompts(prompts, images.shape[0], self.info.vision_width, len(layers), dtype, "image")
        k = deep[0].shape[1] if deep else 0

        x = vision.embeddings(images)  # CLS + patches + position embeddings
        if deep:
            x = torch.cat([x, deep[0]], dim=1)  # prompts: no position embedding, normalised below
        x = vision.pre_layrnorm(x)
        x = P.run_blocks(x, layers, deep, x.shape[1] - k, _block_call(None))
        out = self.model.visual_projection(vision.post_layernorm(x[:, 0]))
        return F.normalize(out, dim=-1) if normalize else out

    def image_transform(self, train: bool = False) -> Callable[[Image.Image], torch.Tensor]:
        """Resize (bicubic, shortest side) + centre crop to the model's size and normalise with the
        folder's preprocessor_config.json mean/std when present, else CLIP's; the train transform is
        open_clip's (random resized crop)."""
        pp = self._preprocess
        cfg = PreprocessCfg(
            size=self.info.image_size,
            mean=tuple(pp.get("image_mean", OPENAI_DATASET_MEAN)),
            std=tuple(pp.get("image_std", OPENAI_DATASET_STD)),
        )
        return image_transform_v2(cfg, is_train=train)
