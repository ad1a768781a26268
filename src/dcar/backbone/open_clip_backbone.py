"""Backbone over an open_clip ``CLIP`` or ``CustomTextCLIP`` (open_clip 3.x, batch-first blocks).

The text and ViT forwards are re-written block by block (the same calls open_clip makes) so prompts
can be inserted and replaced between blocks; with no prompts they reproduce ``encode_text`` /
``encode_image`` (tested to 1e-5).
"""

from __future__ import annotations

from typing import Callable

import open_clip
import torch
import torch.nn.functional as F
from open_clip.transform import PreprocessCfg, image_transform_v2
from open_clip.transformer import VisionTransformer
from PIL import Image
from torch import nn

from dcar.backbone import prompting as P
from dcar.backbone.base import Backbone, BackboneInfo, TowerPrompts
from dcar.backbone.tokenizer import VOCAB_SIZE, tokenize
from dcar.errors import ModelSpecError


def _block_call(mask: torch.Tensor | None) -> P.BlockCall:
    return lambda block, x: block(x, attn_mask=mask)


def _project(x: torch.Tensor, proj: nn.Module | torch.Tensor | None) -> torch.Tensor:
    if proj is None:
        return x
    if isinstance(proj, nn.Linear):
        return proj(x)
    return x @ proj


class OpenClipBackbone(Backbone):
    """A frozen open_clip model with prompted text and (ViT) image forwards."""

    def __init__(self, model: nn.Module, spec: str):
        super().__init__()
        self.model = model
        self.spec = spec
        # CLIP keeps the text tower's parts on the model itself, CustomTextCLIP under model.text.
        self._text = model.text if hasattr(model, "text") else model
        self._check_text_tower()
        self._vit = model.visual if isinstance(model.visual, VisionTransformer) else None

    # ----------------------------------------------------------------- checks and sizes
    def _check_text_tower(self) -> None:
        t = self._text
        needed = ("token_embedding", "positional_embedding", "transformer", "ln_final")
        if not all(hasattr(t, a) for a in needed):
            raise ModelSpecError(f"{self.spec}: text tower {type(t).__name__} is not a CLIP text transformer")
        pool = getattr(t, "text_pool_type", getattr(t, "pool_type", "argmax"))
        if pool != "argmax" or getattr(t, "cls_emb", None) is not None:
            raise ModelSpecError(f"{self.spec}: text pooling {pool!r} is not CLIP's end-token pooling")
        if t.token_embedding.num_embeddings != VOCAB_SIZE:
            raise ModelSpecError(f"{self.spec}: text vocabulary is not CLIP's 49,408-token BPE")
        if not getattr(t.transformer, "batch_first", True):
            raise ModelSpecError(f"{self.spec}: sequence-first text transformer (open_clip < 2.26) is not supported")

    @property
    def info(self) -> BackboneInfo:
        t, v = self._text, self.model.visual
        proj = t.text_projection
        embed_dim = (
            proj.out_features if isinstance(proj, nn.Linear) else proj.shape[1] if proj is not None
            else t.ln_final.weight.shape[0]
        )
        size = v.image_size
        return BackboneInfo(
            embed_dim=int(embed_dim),
            text_width=int(t.ln_final.weight.shape[0]),
            vision_width=int(self._vit.conv1.out_channels) if self._vit is not None else 0,
            text_layers=len(t.transformer.resblocks),
            vision_layers=len(self._vit.transformer.resblocks) if self._vit is not None else 0,
            context_length=int(t.positional_embedding.shape[0]),
            image_size=int(size[0] if isinstance(size, (tuple, list)) else size),
        )

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.model.logit_scale.detach().exp().reshape(())

    def train(self, mode: bool = True) -> "OpenClipBackbone":
        """A frozen backbone always runs in eval mode (no patch dropout), even when a method puts
        its own modules in training mode; call ``backbone.model.train()`` to fine-tune on purpose."""
        return super().train(False)

    # ----------------------------------------------------------------- text
    def tokenize(self, texts: list[str], prompt_length: int = 0) -> torch.Tensor:
        return tokenize(texts, self.info.context_length, prompt_length)

    def token_embeddings(self, ids: torch.Tensor) -> torch.Tensor:
        return self._text.token_embedding(ids.to(self.device))

    def _text_mask(self, length: int) -> torch.Tensor | None:
        mask = getattr(self._text, "attn_mask", None)
        return None if mask is None else mask[:length, :length]

    def encode_text(
        self,
        ids: torch.Tensor,
        prompts: TowerPrompts | None = None,
        token_weights: torch.Tensor | None = None,
        normalize: bool = False,
    ) -> torch.Tensor:
        t = self._text
        ids = ids.to(self.device)
        ids, token_weights = P.trim_after_end(ids, ids.argmax(dim=-1), token_weights)
        dtype = t.transformer.get_cast_dtype()
        blocks = t.transformer.resblocks
        deep = P.batch_prompts(prompts, ids.shape[0], t.ln_final.weight.shape[0], len(blocks), dtype, "text")
        k = deep[0].shape[1] if deep else 0
        length = ids.shape[1] + k
        P.check_text_length(ids.shape[1], k, t.positional_embedding.shape[0])

        x = P.weight_tokens(t.token_embedding(ids).to(dtype), token_weights)
        x = P.insert_text_prompts(x, deep[0] if deep else None)
        x = x + t.positional_embedding[:length].to(dtype)
        x = P.run_blocks(x, blocks, deep, 1, _block_call(self._text_mask(length)))
        # LayerNorm acts per token, so pooling first and normalising one row per caption equals
        # open_clip's ln_final-then-pool, at 1/L of the cost.
        pooled = t.ln_final(P.gather_rows(x, ids.argmax(dim=-1) + k))
        out = _project(pooled, t.text_projection)
        return F.normalize(out, dim=-1) if normalize else out

    def encode_text_tokens(self, ids: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        t = self._text
        ids = ids.to(self.device)
        dtype = t.transformer.get_cast_dtype()
        P.check_text_length(ids.shape[1], 0, t.positional_embedding.shape[0])
        x = t.token_embedding(ids).to(dtype) + t.positional_embedding[: ids.shape[1]].to(dtype)
        x = P.run_blocks(x, t.transformer.resblocks, [], 1, _block_call(self._text_mask(ids.shape[1])))
        out = _project(t.ln_final(x), t.text_projection)
        return F.normalize(out, dim=-1) if normalize else out

    # ----------------------------------------------------------------- image
    def encode_image(
        self, images: torch.Tensor, prompts: TowerPrompts | None = None, normalize: bool = False
    ) -> torch.Tensor:
        images = images.to(self.device)
        if self._vit is None:
            if prompts is not None and prompts.depth:
                raise ModelSpecError(
                    f"{self.spec}: image prompts need a ViT image tower, this one is {type(self.model.visual).__name__}"
                )
            out = self.model.encode_image(images)
        else:
            out = self._encode_vit(images, prompts)
        return F.normalize(out, dim=-1) if normalize else out

    def _encode_vit(self, images: torch.Tensor, prompts: TowerPrompts | None) -> torch.Tensor:
        v = self._vit
        blocks = v.transformer.resblocks
        dtype = v.transformer.get_cast_dtype()
        deep = P.batch_prompts(prompts, images.shape[0], v.conv1.out_channels, len(blocks), dtype, "image")
        k = deep[0].shape[1] if deep else 0

        # VisionTransformer._embeds up to (excluding) ln_pre, so prompts are normalised with the rest.
        x = v.conv1(images.to(dtype)).flatten(2).transpose(1, 2)
        cls = v.class_embedding.to(x.dtype).view(1, 1, -1).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + v.positional_embedding.to(x.dtype)
        x = v.patch_dropout(x)
        if deep:
            x = torch.cat([x, deep[0]], dim=1)
        x = v.ln_pre(x)
        x = P.run_blocks(x, blocks, deep, x.shape[1] - k, _block_call(None))
        pooled, _ = v._pool(x[:, : x.shape[1] - k])  # pooling never sees the prompt tokens
        return _project(pooled, v.proj)

    def image_transform(self, train: bool = False) -> Callable[[Image.Image], torch.Tensor]:
        cfg = open_clip.get_model_preprocess_cfg(self.model)
        return image_transform_v2(PreprocessCfg(**cfg), is_train=train)
