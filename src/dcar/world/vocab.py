"""The world's vocabulary: meta-categories, their invented subcategories, and the attribute values.

Each meta-category has three binary *traits* (e.g. 5 vs 6 petals, an inner ring or not, round vs
pointed petal tips). Its eight subcategories are the eight trait combinations, so two siblings
share the overall form and differ only in small details that coarse features cannot separate.
Subcategory names are invented and split into several BPE pieces, like real species or model names.

Everything here is data: changing an entry changes the world (and invalidates a trained model).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetaCategory:
    name: str  # caption word (singular)
    plural: str
    traits: tuple[tuple[str, tuple[str, str]], ...]  # (trait, (value when bit 0, value when bit 1))
    subcategories: tuple[str, ...]  # 2**len(traits) names; subcategory k has trait bits trait_bits(k, ...)

    def trait_values(self, sub_index: int) -> dict[str, str]:
        """The trait values of subcategory ``sub_index`` (0..7)."""
        bits = trait_bits(sub_index, len(self.traits))
        return {trait: values[bit] for (trait, values), bit in zip(self.traits, bits)}


META_CATEGORIES: tuple[MetaCategory, ...] = (
    MetaCategory(
        "flower", "flowers",
        (("petals", ("five", "six")), ("ring", ("none", "inner")), ("tips", ("round", "pointed"))),
        ("velmorine starwort", "quillan bellpetal", "ostrabel moonbloom", "carveline sunbract",
         "dellowen frostcup", "marrisca windpetal", "tobrinel emberlily", "sauvelle dawnstar"),
    ),
    MetaCategory(
        "mushroom", "mushrooms",
        (("cap", ("dome", "cone")), ("annulus", ("none", "ring")), ("base", ("plain", "bulb"))),
        ("grellish toadcap", "umbervane puffhood", "moskerel fairycap", "brindlewort sporelet",
         "tavishroom gilly", "cobbelin parasol", "hettigrew inkhood", "orlesse milkcap"),
    ),
    MetaCategory(
        "fish", "fish",
        (("tail", ("round", "forked")), ("dorsal", ("none", "fin")), ("gill", ("none", "bar"))),
        ("sprattlin finback", "corvella reefdart", "baskerine gillfish", "tollimer silverjaw",
         "quenby loachtail", "marlowin glassfin", "dursel snapperling", "ebbrin tetrafin"),
    ),
    MetaCategory(
        "beetle", "beetles",
        (("horn", ("none", "horn")), ("seam", ("none", "seam")), ("antennae", ("straight", "clubbed"))),
        ("kestrine dungrove", "vorrel shieldbug", "amberlin clickwing", "pottersby weevil",
         "glimmerhorn scarab", "tessaly barkrunner", "orvick longjaw", "wendril ladyshell"),
    ),
    MetaCategory(
        "airplane", "airplanes",
        (("wings", ("straight", "swept")), ("tail", ("flat", "vee")), ("engines", ("two", "four"))),
        ("Corvane KX-7", "Alderin Merlo 210", "Tessaro Vantis", "Brelvik SK-40",
         "Hollan Aerostrel", "Quimby Falcette 9", "Norvanta C-12", "Ostrel Sparrowjet"),
    ),
    MetaCategory(
        "crest", "crests",
        (("chevron", ("up", "down")), ("mark", ("dot", "bar")), ("border", ("single", "double"))),
        ("Harrowgate sigil", "Vellamy shieldmark", "Dunmore escutcheon", "Brackwell blazon",
         "Ostwick roundel", "Pemberly crestling", "Ravensholt badge", "Quillfort armorial"),
    ),
)

META_BY_NAME: dict[str, MetaCategory] = {m.name: m for m in META_CATEGORIES}

# Attribute values. RGB for colours; the caption word is the key.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (205, 40, 40),
    "orange": (240, 135, 25),
    "yellow": (235, 210, 40),
    "green": (50, 160, 60),
    "blue": (45, 90, 210),
    "purple": (130, 55, 175),
    "pink": (240, 120, 175),
    "brown": (125, 80, 40),
}
SIZES: tuple[str, ...] = ("small", "large")
POSITIONS: tuple[str, ...] = ("center", "top left", "top right", "bottom left", "bottom right")
BACKGROUNDS: tuple[str, ...] = ("white", "dark", "grass", "sand", "sky")
COUNTS: tuple[int, ...] = (1, 2, 3)
PATTERNS: tuple[str, ...] = ("plain", "striped", "dotted")

ATTRIBUTE_VALUES: dict[str, tuple] = {
    "colour": tuple(COLOURS),
    "size": SIZES,
    "position": POSITIONS,
    "background": BACKGROUNDS,
    "count": COUNTS,
    "pattern": PATTERNS,
}


def full_taxonomy() -> dict[str, str]:
    """Every subcategory name mapped to its meta-category name."""
    return {sub: m.name for m in META_CATEGORIES for sub in m.subcategories}


def locate(subcategory: str) -> tuple[MetaCategory, int]:
    """The meta-category of a subcategory name (of either world version) and its index (trait code) in it."""
    for m in META_CATEGORIES + META_CATEGORIES_V2:
        if subcategory in m.subcategories:
            return m, m.subcategories.index(subcategory)
    raise KeyError(subcategory)


# ---------------------------------------------------------------------------------------------
# World v2 (docs/world/v2.md): the same six forms, each with a fourth binary trait, so every
# meta-category has 16 subcategories (the 16 combinations of 4 traits). The first three traits are
# v1's; names are new (so a subcategory name says which world it belongs to). Subcategory k has trait
# bits (k>>3 & 1, k>>2 & 1, k>>1 & 1, k & 1): the first n subcategories of a meta-category differ in
# its last log2(n) traits.

def _v2_names(suffixes: tuple[str, ...], seed: int, styled: bool = False) -> tuple[str, ...]:
    """16 invented names, e.g. "tamoswick starwort", deterministic (several BPE pieces each)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    heads = ("bel", "cor", "dun", "fen", "gal", "hol", "jas", "kel", "lom", "mar", "nev", "ors",
             "pel", "quin", "ros", "sal", "tam", "ulv", "ven", "wil", "yar", "zor", "brim", "cad")
    mids = ("a", "e", "i", "o", "u", "ae", "ie", "ou")
    tails = ("brin", "dell", "mont", "rick", "ton", "vel", "wick", "stead", "lan", "more", "ther", "sby")
    names: list[str] = []
    while len(names) < 16:
        word = heads[rng.integers(len(heads))] + mids[rng.integers(len(mids))] + tails[rng.integers(len(tails))]
        name = f"{word.capitalize() if styled else word} {suffixes[len(names) % len(suffixes)]}"
        if name not in names:
            names.append(name)
    return tuple(names)


def _v2_model_names(seed: int) -> tuple[str, ...]:
    """16 aircraft-style names ("Velmar TK-40"): a maker and a model code."""
    import numpy as np

    rng = np.random.default_rng(seed)
    makers = ("Velmar", "Ostrane", "Kadrel", "Brisco", "Tellwin", "Hameroy", "Quistar", "Dornel")
    names: list[str] = []
    while len(names) < 16:
        code = "".join(chr(65 + int(c)) for c in rng.integers(0, 26, 2))
        name = f"{makers[rng.integers(len(makers))]} {code}-{int(rng.integers(2, 99))}"
        if name not in names:
            names.append(name)
    return tuple(names)


META_CATEGORIES_V2: tuple[MetaCategory, ...] = (
    MetaCategory("flower", "flowers", META_CATEGORIES[0].traits + (("centre", ("small", "large")),),
                 _v2_names(("starwort", "bellflower", "moonbloom", "lily"), 101)),
    MetaCategory("mushroom", "mushrooms", META_CATEGORIES[1].traits + (("spots", ("none", "spots")),),
                 _v2_names(("toadcap", "milkcap", "puffball", "inkhood"), 102)),
    MetaCategory("fish", "fish", META_CATEGORIES[2].traits + (("stripe", ("none", "stripe")),),
                 _v2_names(("finback", "reefdart", "loach", "tetra"), 103)),
    MetaCategory("beetle", "beetles", META_CATEGORIES[3].traits + (("spots", ("none", "spots")),),
                 _v2_names(("weevil", "scarab", "clickwing", "shieldbug"), 104)),
    MetaCategory("airplane", "airplanes", META_CATEGORIES[4].traits + (("cockpit", ("none", "canopy")),),
                 _v2_model_names(105)),
    MetaCategory("crest", "crests", META_CATEGORIES[5].traits + (("crown", ("none", "crown")),),
                 _v2_names(("sigil", "blazon", "roundel", "badge"), 106, styled=True)),
)
META_BY_NAME_V2: dict[str, MetaCategory] = {m.name: m for m in META_CATEGORIES_V2}


def metas_of(version: int) -> dict[str, MetaCategory]:
    """The meta-categories of world version 1 or 2, by name."""
    return META_BY_NAME if version == 1 else META_BY_NAME_V2


def trait_bits(sub_index: int, n_traits: int) -> list[int]:
    """The trait bits of subcategory ``sub_index``: the first trait is the highest bit."""
    return [(sub_index >> (n_traits - 1 - j)) & 1 for j in range(n_traits)]
