"""Hard negatives for DCAR's category loss, generated once per training entry.

Generating once (deterministically from the seed) keeps a resumed run identical to an
uninterrupted one, and mirrors FDRD files, which carry fixed negatives per image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dcar.backbone.base import Backbone
from dcar.backbone.tokenizer import fits
from dcar.data.records import Entry


@dataclass
class BatchNegatives:
    texts: list[str]  # flat list of negative captions
    owner: torch.Tensor  # [M] index of the batch entry each negative belongs to
    slot: torch.Tensor  # [M] position among that entry's K negatives
    same_category: torch.Tensor  # [B, K] 1: keeps the image's category, 0: another, -1: padding
    k: int


@dataclass
class NegativeBank:
    by_key: dict[str, list[tuple[str, bool]]]  # key -> [(text, keeps the image's category)]
    k: int

    @classmethod
    def build(
        cls,
        entries: list[Entry],
        taxonomy: dict[str, str] | None,
        backbone: Backbone,
        k: int,
        swap: bool,
        attribute: bool,
        reading: str,
        seed: int,
        prompt_length: int = 0,
    ) -> "NegativeBank":
        from dcar.negatives.factory import make_generator

        strategy = "mixed" if swap and attribute else ("swap" if swap else "attribute")
        categories = sorted({e.category for e in entries})
        context = backbone.info.context_length
        generator = make_generator(
            categories,
            k=k,
            strategy=strategy,
            taxonomy=taxonomy,
            # Without a taxonomy, hard siblings are the nearest class names for the frozen text encoder.
            model=None if taxonomy else backbone,
            seed=seed,
            fits=lambda text: fits(text, context, prompt_length),
        )
        meta = taxonomy or {}
        by_key: dict[str, list[tuple[str, bool]]] = {}
        for entry in entries:
            out = []
            for neg in generator.generate(entry.caption, entry.category, key=entry.key):
                neg_category = neg.swapped_to if neg.kind == "swap" and neg.swapped_to else entry.category
                if reading == "A":
                    same = neg_category == entry.category
                else:  # reading B: category = meta-category (unknown meta never matches)
                    m = meta.get(entry.category)
                    same = m is not None and meta.get(neg_category) == m
                out.append((neg.text, same))
            by_key[entry.key] = out
        return cls(by_key, k)

    def for_batch(self, entries: list[Entry]) -> BatchNegatives:
        texts, owner, slot = [], [], []
        same = torch.full((len(entries), self.k), -1, dtype=torch.long)
        for i, entry in enumerate(entries):
            for j, (text, keeps) in enumerate(self.by_key.get(entry.key, [])[: self.k]):
                texts.append(text)
                owner.append(i)
                slot.append(j)
                same[i, j] = int(keeps)
        return BatchNegatives(texts, torch.tensor(owner, dtype=torch.long), torch.tensor(slot, dtype=torch.long), same, self.k)
