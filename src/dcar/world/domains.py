"""Domains: the pretraining corpus and the downstream "catalogs".

A domain restricts the world to some meta-categories and attribute values and gives it a visual
style, like a real fine-grained dataset (a field guide of flowers, a catalog of aircraft). As in
real fine-grained data, a downstream domain's captions vary little apart from the subcategory
name, so retrieving the right caption needs fine-grained knowledge (the narrow attribute ranges
were tuned so that the shipped model's zero-shot R@1 lands at roughly 15-40%; see docs/world/). The
pretraining domain covers everything; its captions name the subcategory only sometimes, and then
with some label noise, so a model pretrained on it learns the coarse world well and the fine one
weakly. Downstream captions always name the subcategory ("This is a {subcategory}. ...").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dcar.world.vocab import (
    BACKGROUNDS, COLOURS, COUNTS, META_BY_NAME, PATTERNS, POSITIONS, SIZES,
)

SPLITS: tuple[str, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class Style:
    """A domain's look: a colour cast blended over the image and pixel noise."""

    tint: tuple[int, int, int] = (0, 0, 0)
    tint_strength: float = 0.0  # 0 = no cast
    noise: float = 0.0  # std of per-pixel Gaussian noise, in 0..255 units


@dataclass(frozen=True)
class Domain:
    name: str
    description: str
    metas: tuple[str, ...]
    colours: tuple[str, ...] = tuple(COLOURS)
    sizes: tuple[str, ...] = SIZES
    positions: tuple[str, ...] = POSITIONS
    backgrounds: tuple[str, ...] = BACKGROUNDS
    counts: tuple[int, ...] = COUNTS
    patterns: tuple[str, ...] = PATTERNS
    style: Style = field(default_factory=Style)
    name_prob: float = 1.0  # share of captions that name the subcategory (else the meta-category)
    name_noise: float = 0.0  # share of named captions that name a random sibling instead
    per_sub: dict[str, int] = field(default_factory=lambda: {"train": 16, "val": 8, "test": 40})

    @property
    def subcategories(self) -> tuple[str, ...]:
        """The domain's subcategories in a fixed order (meta by meta)."""
        return tuple(s for m in self.metas for s in META_BY_NAME[m].subcategories)

    @property
    def taxonomy(self) -> dict[str, str]:
        return {s: m for m in self.metas for s in META_BY_NAME[m].subcategories}

    @property
    def is_pretrain(self) -> bool:
        return self.name == PRETRAIN


PRETRAIN = "pretrain"

DOMAINS: dict[str, Domain] = {
    d.name: d
    for d in (
        Domain(
            PRETRAIN,
            "the pretraining corpus: every meta-category and attribute; the subcategory is named in "
            "a minority of captions, with label noise",
            metas=("flower", "mushroom", "fish", "beetle", "airplane", "crest"),
            name_prob=0.25,
            name_noise=0.25,
            per_sub={"train": 100_000, "val": 1_000, "test": 1_000},  # totals, not per subcategory
        ),
        Domain(
            "garden",
            "a field guide of single flowers and mushrooms on natural ground, greenish cast",
            metas=("flower", "mushroom"),
            colours=("red", "yellow", "pink"),
            positions=("center", "bottom left"),
            backgrounds=("grass", "sand"),
            counts=(1,),
            patterns=("plain", "striped"),
            style=Style(tint=(60, 120, 40), tint_strength=0.12, noise=4.0),
        ),
        Domain(
            "wildlife",
            "an illustrated catalog of fish and beetles, one or two per plate, bluish cast",
            metas=("fish", "beetle"),
            colours=("orange", "blue"),
            positions=("center", "top right"),
            backgrounds=("sky", "sand"),
            counts=(1, 2),
            patterns=("plain", "dotted"),
            style=Style(tint=(30, 60, 110), tint_strength=0.10, noise=3.0),
        ),
        Domain(
            "hangar",
            "a studio catalog of aircraft models and heraldic crests on plain backdrops",
            metas=("airplane", "crest"),
            colours=("red", "blue", "yellow"),
            positions=("center", "top left"),
            backgrounds=("white", "sky"),
            counts=(1,),
            patterns=("plain", "striped"),
            style=Style(tint=(128, 128, 128), tint_strength=0.08, noise=2.0),
        ),
    )
}


def get_domain(name: str) -> Domain:
    from dcar.errors import DcarError

    try:
        return DOMAINS[name]
    except KeyError:
        raise DcarError(f"unknown domain {name!r}; known: {', '.join(DOMAINS)}") from None


def downstream_domains() -> list[str]:
    return [n for n in DOMAINS if n != PRETRAIN]


def split_size(domain: Domain, split: str, shots: int | None = None) -> int:
    """Default number of images in a split (balanced over subcategories downstream)."""
    if split not in SPLITS:
        from dcar.errors import DcarError

        raise DcarError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    if domain.is_pretrain:
        return domain.per_sub[split]
    per_sub = shots if (split == "train" and shots is not None) else domain.per_sub[split]
    return per_sub * len(domain.subcategories)
