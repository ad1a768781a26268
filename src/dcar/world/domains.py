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

import zlib
from dataclasses import dataclass, field

from dcar.world.vocab import (
    BACKGROUNDS, COLOURS, COUNTS, PATTERNS, POSITIONS, SIZES, metas_of,
)

SPLITS: tuple[str, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class Style:
    """A domain's look: a colour cast blended over the image, blur and pixel noise."""

    tint: tuple[int, int, int] = (0, 0, 0)
    tint_strength: float = 0.0  # 0 = no cast
    noise: float = 0.0  # std of per-pixel Gaussian noise, in 0..255 units
    blur: float = 0.0  # Gaussian blur radius in pixels at 96 px (scaled with the image side)


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
    version: int = 1  # world version (vocabulary, drawings, captions); docs/world/v2.md
    image_size: int = 64  # the side its images are exported at by default
    # v2: the first N subcategories of each meta-category (0 = all), or one N per meta-category
    siblings: int | tuple[int, ...] = 0
    # v2 pretraining: each subcategory's name is mentioned with its own probability, drawn
    # log-uniformly from this range (some names common, some rare), instead of name_prob.
    name_prob_range: tuple[float, float] | None = None
    trait_prob: float = 0.0  # v2 pretraining: share of alt-texts that mention visible traits in words
    # v2 pretraining: share of alt-texts followed by a long web tail (tags, specs, page filler), so
    # that every text position up to the context length is trained, as in a real CLIP's web data
    long_prob: float = 0.0
    caption_style: str = "fdrd"  # v1: "fdrd"; v2: "alt" (pretraining) or a dcar.world.captions style

    @property
    def subcategories(self) -> tuple[str, ...]:
        """The domain's subcategories in a fixed order (meta by meta)."""
        return tuple(s for m in self.metas for s in self._subs_of(m))

    @property
    def taxonomy(self) -> dict[str, str]:
        return {s: m for m in self.metas for s in self._subs_of(m)}

    def _subs_of(self, meta: str) -> tuple[str, ...]:
        subs = metas_of(self.version)[meta].subcategories
        n = self.siblings if isinstance(self.siblings, int) else self.siblings[self.metas.index(meta)]
        return subs[:n] if n else subs

    @property
    def is_pretrain(self) -> bool:
        return self.name in (PRETRAIN, PRETRAIN_V2)

    def name_prob_of(self, subcategory: str) -> float:
        """How often pretraining text names this subcategory (fixed per name, deterministic)."""
        if self.name_prob_range is None:
            return self.name_prob
        lo, hi = self.name_prob_range
        u = zlib.crc32(subcategory.encode()) / 2**32  # a stable per-name draw in [0, 1)
        return float(lo * (hi / lo) ** u)


PRETRAIN = "pretrain"
PRETRAIN_V2 = "pretrain-v2"
V2_SPLITS_PRETRAIN = {"train": 200_000, "val": 1_000, "test": 1_000}

# World v2 (docs/world/v2.md): 96 px images, 16 subcategories per meta-category, alt-text
# pretraining, and four downstream catalogs that differ in kind (siblings per meta-category,
# number of subcategories, visual style with backgrounds pretraining never shows, caption style).
# One object per image, as in object-centric fine-grained photos (render.py says why v2 spares
# the model pairs, off-centre placement and scale changes).
V2 = dict(version=2, image_size=96, sizes=("small", "large"), counts=(1,))
V2_DOMAINS = (
    Domain(
        PRETRAIN_V2,
        "world v2 pretraining corpus: short alt-text; names mentioned unevenly (some rare) with "
        "label noise; visible traits sometimes described in words",
        metas=("flower", "mushroom", "fish", "beetle", "airplane", "crest"),
        name_prob=0.0, name_noise=0.15, name_prob_range=(0.02, 0.5), trait_prob=0.9,
        long_prob=0.2,
        caption_style="alt", per_sub=V2_SPLITS_PRETRAIN, **V2,
    ),
    Domain(
        "meadow",
        "v2: wild flowers and mushrooms photographed on moss and soil, warm cast, soft focus "
        "(8 siblings per meta-category, 16 subcategories)",
        metas=("flower", "mushroom"), siblings=8,
        colours=("red", "yellow", "pink", "purple", "orange", "blue"),
        positions=("center", "bottom left", "top right", "top left"),
        backgrounds=("moss", "soil", "sand", "water"), patterns=("plain", "striped", "dotted"),
        style=Style(tint=(200, 150, 60), tint_strength=0.15, noise=4.0, blur=0.5),
        caption_style="nature", per_sub={"train": 16, "val": 8, "test": 40}, **V2,
    ),
    Domain(
        "pond",
        "v2: an aquarium of fish (12 siblings) and water beetles (8), bluish water, noisy "
        "(20 subcategories)",
        metas=("fish", "beetle"), siblings=(12, 8),
        colours=("orange", "blue", "yellow", "red", "green", "purple"),
        positions=("center", "top left", "bottom right", "top right"),
        backgrounds=("water", "sand", "moss"), patterns=("plain", "dotted", "striped"),
        style=Style(tint=(30, 80, 140), tint_strength=0.2, noise=7.0, blur=0.4),
        caption_style="aquarium", per_sub={"train": 16, "val": 6, "test": 30}, **V2,
    ),
    Domain(
        "airshow",
        "v2: aircraft and crests on dusk skies and paper, grey cast (16 siblings per "
        "meta-category, 32 subcategories)",
        metas=("airplane", "crest"), siblings=16,
        colours=("red", "blue", "green", "yellow", "purple"),
        positions=("center", "top right", "bottom left"),
        backgrounds=("dusk", "white", "sky", "paper"), patterns=("plain", "striped", "dotted"),
        style=Style(tint=(128, 128, 140), tint_strength=0.18, noise=3.0, blur=0.0),
        caption_style="catalog", per_sub={"train": 16, "val": 4, "test": 24}, **V2,
    ),
    Domain(
        "cabinet",
        "v2: a museum cabinet of all six forms, 8 siblings each, sepia paper, blurred scans "
        "(48 subcategories)",
        metas=("flower", "mushroom", "fish", "beetle", "airplane", "crest"), siblings=8,
        colours=("brown", "orange", "purple", "red", "blue"), positions=("center", "top left", "bottom right"),
        backgrounds=("paper", "white"), patterns=("plain", "striped", "dotted"),
        style=Style(tint=(150, 110, 60), tint_strength=0.45, noise=8.0, blur=1.2),
        caption_style="archive", per_sub={"train": 16, "val": 3, "test": 20}, **V2,
    ),
)

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
        *V2_DOMAINS,
    )
}


def get_domain(name: str) -> Domain:
    from dcar.errors import DcarError

    try:
        return DOMAINS[name]
    except KeyError:
        raise DcarError(f"unknown domain {name!r}; known: {', '.join(DOMAINS)}") from None


def downstream_domains(version: int = 1) -> list[str]:
    """The downstream catalogs of one world version (v1 by default: the shipped model's world)."""
    return [n for n, d in DOMAINS.items() if not d.is_pretrain and d.version == version]


def split_size(domain: Domain, split: str, shots: int | None = None) -> int:
    """Default number of images in a split (balanced over subcategories downstream)."""
    if split not in SPLITS:
        from dcar.errors import DcarError

        raise DcarError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    if domain.is_pretrain:
        return domain.per_sub[split]
    per_sub = shots if (split == "train" and shots is not None) else domain.per_sub[split]
    return per_sub * len(domain.subcategories)
