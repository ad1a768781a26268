from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from dcar.adapters import ResidualBottleneck
from dcar.backbone.base import Backbone
from dcar.data.records import Entry
from dcar.losses import category_loss, contrastive_loss
from dcar.methods.base import DualPromptMethod, MethodConfig, OptimizerDefaults, TrainBatch
from dcar.methods.registry import register_method
from dcar.methods.dcar.category_negatives import NegativeBank
from dcar.prompts import DualPrompts
from dcar.reweighting import TokenReweighter

READINGS = ("A", "B")
INFERENCE_MODES = ("unit", "rerank")


@dataclass
class DcarConfig(MethodConfig):
    """Every DCAR component has a switch so each can be ablated (see DCAR.md for the tags)."""

    method = "dcar"
    retired = {"seed": "DCAR's negatives follow the run seed, train.seed"}
    # dual prompts (MaPLe's k=2, J=9 as the starting point)
    n_ctx: int = 2
    depth: int = 9
    init_words: str | None = "a photo of a"
    image_prompts: bool = True
    # dynamic token re-weighting
    dtr: bool = True
    gamma: float = 0.5
    dtr_cached_images: bool = True  # frozen f_I(I) from the un-augmented image, computed once
    inference: str = "unit"  # "unit": w = 1 (indexable); "rerank": image-conditioned top-K re-score
    rerank_k: int = 10
    # category-aware augmentation
    negatives_k: int = 4
    swap_negatives: bool = True
    attribute_negatives: bool = True
    # False: negatives' text features are computed without gradients (a forward pass only). The
    # prompts then learn L_cate through the positive caption and the image; CAA still sees the
    # negatives. Cheaper on long captions, where K extra backward passes dominate the step.
    negative_gradients: bool = True
    caa: bool = True
    caa_at_inference: bool = False
    # loss: L_con + lam * L_cate with w = 1 + alpha when the negative keeps the image's category
    lam: float = 1.0
    alpha: float = 0.5
    reading: str = "A"  # "A": category = subcategory; "B": category = meta-category
    optimizer: OptimizerDefaults = field(default_factory=lambda: OptimizerDefaults("sgd", 0.0035, 5e-4))

    def __post_init__(self) -> None:
        if self.reading not in READINGS:
            raise ValueError(f"reading must be one of {READINGS}, got {self.reading!r}")
        if self.inference not in INFERENCE_MODES:
            raise ValueError(f"inference must be one of {INFERENCE_MODES}, got {self.inference!r}")


@register_method("dual prompts + token re-weighting + category-aware negatives (L_con + lambda L_cate)")
class DcarModel(DualPromptMethod):
    config_class = DcarConfig

    def __init__(self, backbone: Backbone, config: DcarConfig):
        super().__init__(backbone, config)
        self.prompts = DualPrompts(backbone, config.n_ctx, config.depth, config.init_words, config.image_prompts)
        self.caa = ResidualBottleneck(backbone.info.embed_dim) if config.caa else None
        self.reweighter = TokenReweighter(backbone, config.gamma) if config.dtr else None
        self.negatives: NegativeBank | None = None
        self._frozen_cache: dict[str, torch.Tensor] = {}

    # ---- encoders ------------------------------------------------------------------------------
    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        feats = self.text_features(self.tokenize(texts)).float()
        if self.caa is not None and self.config.caa_at_inference:
            feats = self.caa(feats)
        return F.normalize(feats, dim=-1)

    @torch.no_grad()
    def frozen_image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """f_I(I) of the un-prompted model, normalised: what DTR contrasts tokens against."""
        return F.normalize(self.backbone.encode_image(pixels.to(self.backbone.device)).float(), dim=-1)

    @property
    def rerank_k(self) -> int:
        return self.config.rerank_k if self.config.inference == "rerank" else 0

    def encode_texts_for_images(self, texts: list[str], frozen_image_features: torch.Tensor) -> torch.Tensor:
        """Text j weighted by DTR with image j (pairwise; the re-rank inference mode)."""
        ids = self.tokenize(texts)
        weights = self.reweighter.weights(ids, frozen_image_features) if self.reweighter else None
        feats = self.text_features(ids, token_weights=weights).float()
        if self.caa is not None and self.config.caa_at_inference:
            feats = self.caa(feats)
        return F.normalize(feats, dim=-1)

    # ---- training ------------------------------------------------------------------------------
    def prepare_training(self, entries: list[Entry], taxonomy: dict[str, str] | None, seed: int = 0) -> None:
        cfg = self.config
        if self.reweighter is not None and cfg.dtr_cached_images:
            self._frozen_cache = self._frozen_features_of(entries)
        wants_negatives = cfg.lam > 0 and cfg.negatives_k > 0 and (cfg.swap_negatives or cfg.attribute_negatives)
        self.negatives = (
            NegativeBank.build(
                entries,
                taxonomy,
                self.backbone,
                k=cfg.negatives_k,
                swap=cfg.swap_negatives,
                attribute=cfg.attribute_negatives,
                reading=cfg.reading,
                seed=seed,
                prompt_length=self.text_prompt_length,
            )
            if wants_negatives
            else None
        )

    def _frozen_features_of(self, entries: list[Entry]) -> dict[str, torch.Tensor]:
        """f_I of every training image (eval transform), once: the frozen tower's answer does not
        change between epochs, so DTR needs no frozen image pass per step."""
        from dcar.evaluation.embed import embed_images
        from dcar.evaluation.encoders import ZeroShotEncoder

        paths = [e.image for e in entries]
        got = embed_images(ZeroShotEncoder(self.backbone), paths, batch_size=64, num_workers=0, progress=False)
        feats = iter(torch.from_numpy(got.features))
        return {e.key: next(feats) for e, ok in zip(entries, got.ok) if ok}

    def _batch_frozen_features(self, batch: TrainBatch, pixels: torch.Tensor) -> torch.Tensor:
        keys = [e.key for e in batch.entries]
        if self._frozen_cache and all(k in self._frozen_cache for k in keys):
            return torch.stack([self._frozen_cache[k] for k in keys]).to(pixels.device)
        return self.frozen_image_features(pixels)

    def _caption_features(
        self, ids: torch.Tensor, weights: torch.Tensor | None, n_pos: int, with_negative_gradients: bool
    ) -> torch.Tensor:
        """Prompted features of the positives (rows < n_pos) and negatives, in one pass when the
        negatives need gradients, else a gradient pass for the positives and a forward-only one."""
        if with_negative_gradients or ids.shape[0] == n_pos:
            return self.text_features(ids, token_weights=weights).float()
        positives = self.text_features(ids[:n_pos], token_weights=None if weights is None else weights[:n_pos])
        with torch.no_grad():
            negatives = self.text_features(ids[n_pos:], token_weights=None if weights is None else weights[n_pos:])
        return torch.cat([positives.float(), negatives.float()])

    def training_losses(self, batch: TrainBatch) -> dict[str, torch.Tensor]:
        cfg = self.config
        scale = self.backbone.logit_scale
        pixels = batch.pixels.to(self.backbone.device)
        images = F.normalize(self.image_features(pixels).float(), dim=-1)
        frozen_images = self._batch_frozen_features(batch, pixels) if self.reweighter else None

        captions = batch.captions
        n_pos = len(captions)
        negatives = self.negatives.for_batch(batch.entries) if self.negatives is not None else None
        texts = captions + (negatives.texts if negatives is not None else [])
        owners = torch.arange(n_pos)
        if negatives is not None:
            owners = torch.cat([owners, negatives.owner])

        ids = self.tokenize(texts)
        weights = self.reweighter.weights(ids, frozen_images[owners]) if self.reweighter else None
        text_feats = self._caption_features(ids, weights, n_pos, with_negative_gradients=cfg.negative_gradients)
        # CAA feeds L_cate; when it is also part of the inference text encoder, L_con trains
        # through it too, so training matches retrieval. Otherwise it is only needed for L_cate.
        caa_in_encoder = self.caa is not None and cfg.caa_at_inference
        needs_caa = self.caa is not None and (negatives is not None or caa_in_encoder)
        adapted = F.normalize(self.caa(text_feats) if needs_caa else text_feats, dim=-1)
        positives = adapted[:n_pos] if caa_in_encoder else F.normalize(text_feats[:n_pos], dim=-1)
        l_con = contrastive_loss(images, positives, scale)
        losses = {"l_con": l_con.detach()}
        total = l_con
        if negatives is not None:
            neg_feats = adapted.new_zeros(n_pos, negatives.k, adapted.shape[1])
            neg_feats[negatives.owner, negatives.slot] = adapted[n_pos:]
            same = negatives.same_category.to(images.device)
            l_cate = category_loss(images, adapted[:n_pos], neg_feats, same, cfg.alpha, scale)
            total = total + cfg.lam * l_cate
            losses["l_cate"] = l_cate.detach()
        losses["loss"] = total
        return losses
