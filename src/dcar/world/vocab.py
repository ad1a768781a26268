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
    subcategories: tuple[str, ...]  # 8 names; subcategory k has trait bits (k>>2 & 1, k>>1 & 1, k & 1)

    def trait_values(self, sub_index: int) -> dict[str, str]:
        """The trait values of subcategory ``sub_index`` (0..7)."""
        bits = [(sub_index >> 2) & 1, (sub_index >> 1) & 1, sub_index & 1]
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
    """The meta-category of a subcategory name and its index (trait code) in it."""
    for m in META_CATEGORIES:
        if subcategory in m.subcategories:
            return m, m.subcategories.index(subcategory)
    raise KeyError(subcategory)
