"""Which classes a category is most easily confused with ("hard siblings").

A category swap is only a useful negative when the new class is plausible for the image: a
``tree poppy`` caption turned into ``corn poppy`` teaches more than one turned into ``aircraft``.
Rankers order the other categories hardest first:

- :class:`EmbeddingRanker`: cosine similarity of the frozen text encoder's embeddings of
  ``"a photo of a {name}."``; categories whose similarities carry no signal (non-finite, or all
  equal, as with a model that maps every name to the same point) fall back to lexical ranking;
- :class:`LexicalRanker`: character-trigram and word overlap of the names (no model needed).

Taxonomy siblings (same meta-category) are handled by the generator before either ranker.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable, Protocol, Sequence

import torch

from dcar.negatives.mentions import display_name

SiblingFn = Callable[[str], list[str]]


class TextEncoder(Protocol):
    """The part of :class:`dcar.backbone.base.Backbone` the embedding ranker needs."""

    def tokenize(self, texts: list[str], prompt_length: int = 0) -> torch.Tensor: ...

    def encode_text(
        self, ids: torch.Tensor, prompts=None, token_weights=None, normalize: bool = False
    ) -> torch.Tensor: ...


def _trigrams(name: str) -> set[str]:
    padded = f"  {display_name(name).lower()} "
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


def _word_set(name: str) -> set[str]:
    return set(display_name(name).lower().replace("-", " ").split())


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def lexical_similarity(a: str, b: str) -> float:
    """Mean of character-trigram and word Jaccard overlap of two class names, in [0, 1]."""
    return 0.5 * _jaccard(_trigrams(a), _trigrams(b)) + 0.5 * _jaccard(_word_set(a), _word_set(b))


def _ranked(category: str, others: Sequence[str], scores: Sequence[float]) -> list[str]:
    """Other categories by descending score; ties by name so the order is deterministic."""
    pairs = [(s, o) for o, s in zip(others, scores) if o != category]
    return [o for _, o in sorted(pairs, key=lambda p: (-p[0], p[1]))]


class LexicalRanker:
    """Hard siblings by name overlap: works for any names and needs no model."""

    def __init__(self, categories: Sequence[str]) -> None:
        self.categories = list(dict.fromkeys(categories))
        self._grams = {c: _trigrams(c) for c in self.categories}
        self._words = {c: _word_set(c) for c in self.categories}
        self.rank = lru_cache(maxsize=None)(self._rank)

    def _rank(self, category: str) -> list[str]:
        grams, words = _trigrams(category), _word_set(category)
        scores = [
            0.5 * _jaccard(grams, self._grams[o]) + 0.5 * _jaccard(words, self._words[o])
            for o in self.categories
        ]
        return _ranked(category, self.categories, scores)

    def __call__(self, category: str) -> list[str]:
        return self.rank(category)


class EmbeddingRanker:
    """Hard siblings by text-embedding similarity of the class names under a frozen backbone."""

    TEMPLATE = "a photo of a {}."

    def __init__(
        self, categories: Sequence[str], encoder: TextEncoder, batch_size: int = 256, min_spread: float = 1e-4
    ) -> None:
        self.categories = list(dict.fromkeys(categories))
        self._index = {c: i for i, c in enumerate(self.categories)}
        self._lexical = LexicalRanker(self.categories)
        self.min_spread = min_spread
        self.similarity = self._similarities(encoder, batch_size)
        self.fallbacks: set[str] = set()  # categories ranked lexically, for the report

    @torch.no_grad()
    def _similarities(self, encoder: TextEncoder, batch_size: int) -> torch.Tensor:
        texts = [self.TEMPLATE.format(display_name(c)) for c in self.categories]
        feats = []
        for i in range(0, len(texts), batch_size):
            ids = encoder.tokenize(texts[i : i + batch_size])
            feats.append(encoder.encode_text(ids.to(_device_of(encoder)), normalize=True).float().cpu())
        f = torch.cat(feats) if feats else torch.zeros(0, 1)
        return f @ f.T

    def _usable(self, row: torch.Tensor, i: int) -> bool:
        others = torch.cat([row[:i], row[i + 1 :]])
        if others.numel() == 0 or not torch.isfinite(others).all():
            return False
        return float(others.max() - others.min()) >= self.min_spread

    def __call__(self, category: str) -> list[str]:
        i = self._index.get(category)
        if i is None or not self._usable(self.similarity[i], i):
            self.fallbacks.add(category)
            return self._lexical(category)
        return _ranked(category, self.categories, self.similarity[i].tolist())


def _device_of(encoder: object) -> torch.device:
    device = getattr(encoder, "device", None)
    return device if isinstance(device, torch.device) else torch.device("cpu")
