"""What every retrieval method is: a config dataclass and a module around a frozen backbone.

A method encodes images and texts for retrieval (the evaluation's ``RetrievalEncoder`` protocol)
and, when it has trainable parameters, returns its training losses for a batch. The checkpoint of
a method is only its trainable tensors plus its config; the backbone comes from its spec.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, ClassVar

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from dcar.backbone.base import Backbone, TowerPrompts
from dcar.data.records import Entry
from dcar.losses import contrastive_loss
from dcar.prompts import DualPrompts


@dataclass
class OptimizerDefaults:
    """The optimiser a method's reference implementation used (overridable per run)."""

    name: str = "sgd"  # "sgd" (Dassl: momentum 0.9, wd 5e-4) or "adamw"
    lr: float = 0.002
    weight_decay: float = 5e-4


@dataclass
class MethodConfig:
    """Base of every method's config. Subclasses add their own fields (all JSON-serialisable)."""

    method: ClassVar[str] = ""
    # Keys earlier versions wrote that no longer mean anything, with the note shown when a saved
    # config still carries one (old run folders must keep loading).
    retired: ClassVar[dict[str, str]] = {}
    optimizer: OptimizerDefaults = field(default_factory=OptimizerDefaults)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, **asdict(self)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "MethodConfig":
        values = {k: v for k, v in values.items() if k != "method"}
        for key in sorted(set(values) & set(cls.retired)):
            warnings.warn(f"{cls.method} config: {key!r} is ignored ({cls.retired[key]})", UserWarning, stacklevel=2)
            del values[key]
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown {cls.method} config keys: {', '.join(unknown)}")
        if isinstance(values.get("optimizer"), dict):
            values["optimizer"] = OptimizerDefaults(**values["optimizer"])
        return cls(**values)


@dataclass
class TrainBatch:
    """One training batch: augmented pixels and the entries they came from."""

    pixels: torch.Tensor
    entries: list[Entry]

    @property
    def captions(self) -> list[str]:
        return [e.caption for e in self.entries]


class RetrievalMethod(nn.Module):
    """A frozen backbone plus a method's (possibly empty) set of trainable parameters."""

    config_class: ClassVar[type[MethodConfig]] = MethodConfig

    def __init__(self, backbone: Backbone, config: MethodConfig):
        super().__init__()
        self.backbone = backbone.freeze()
        self.config = config

    # ---- inference -------------------------------------------------------------------------
    @property
    def text_prompt_length(self) -> int:
        return 0

    def text_prompts(self) -> TowerPrompts | None:
        return None

    def image_prompts(self) -> TowerPrompts | None:
        return None

    def image_transform(self, train: bool = False) -> Callable[[Image.Image], torch.Tensor]:
        return self.backbone.image_transform(train=train)

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        return self.backbone.tokenize(texts, prompt_length=self.text_prompt_length).to(self.backbone.device)

    def text_features(self, ids: torch.Tensor, token_weights: torch.Tensor | None = None) -> torch.Tensor:
        """Un-normalised prompted text features (the hook adapters wrap)."""
        return self.backbone.encode_text(ids, prompts=self.text_prompts(), token_weights=token_weights)

    def image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """Un-normalised prompted image features (the hook adapters wrap)."""
        return self.backbone.encode_image(pixels, prompts=self.image_prompts())

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        return F.normalize(self.text_features(self.tokenize(texts)).float(), dim=-1)

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image_features(pixels.to(self.backbone.device)).float(), dim=-1)

    # ---- re-rank inference -----------------------------------------------------------------
    @property
    def rerank_k(self) -> int:
        """Candidates per query the evaluation re-scores pairwise with
        :meth:`encode_texts_for_images` after the indexable first stage; 0: no re-ranking."""
        return 0

    def encode_texts_for_images(self, texts: list[str], frozen_image_features: torch.Tensor) -> torch.Tensor:
        """Text j encoded for image j (given its frozen, un-prompted features). By default a
        caption's features do not depend on the image."""
        return self.encode_texts(texts)

    # ---- training --------------------------------------------------------------------------
    @property
    def trainable(self) -> bool:
        return any(p.requires_grad for p in self.parameters())

    def prepare_training(self, entries: list[Entry], taxonomy: dict[str, str] | None, seed: int = 0) -> None:
        """Called once before training with the training entries and the run seed (e.g. to build
        negatives: anything random here must follow ``seed``)."""

    def training_losses(self, batch: TrainBatch) -> dict[str, torch.Tensor]:
        """Losses for one batch; key ``loss`` is what is minimised. Default: L_con, the symmetric
        InfoNCE over the batch with the backbone's frozen temperature (what the baselines use)."""
        images = self.encode_images(batch.pixels)
        texts = self.encode_texts(batch.captions)
        loss = contrastive_loss(images, texts, self.backbone.logit_scale)
        return {"loss": loss, "l_con": loss.detach()}

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        return {n: p.detach() for n, p in self.named_parameters() if p.requires_grad}

    def load_trainable_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        params = dict(self.named_parameters())
        expected = {n for n, p in params.items() if p.requires_grad}
        if set(state) != expected:
            missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
            raise ValueError(f"checkpoint does not fit this method (missing {missing[:3]}, unexpected {extra[:3]})")
        wrong = [n for n, v in state.items() if tuple(v.shape) != tuple(params[n].shape)]
        if wrong:
            n = wrong[0]
            raise ValueError(f"checkpoint does not fit this method ({n}: shape {tuple(state[n].shape)}, expected {tuple(params[n].shape)})")
        with torch.no_grad():
            for name, value in state.items():
                params[name].copy_(value.to(params[name].dtype))

    def count_trainable(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


class DualPromptMethod(RetrievalMethod):
    """A method whose prompts are a :class:`~dcar.prompts.DualPrompts` pair (MaPLe, DCAR)."""

    prompts: DualPrompts

    @property
    def text_prompt_length(self) -> int:
        return self.prompts.length

    def text_prompts(self) -> TowerPrompts:
        return self.prompts.text_prompts()

    def image_prompts(self) -> TowerPrompts | None:
        return self.prompts.image_prompts()
