"""Split a labelled set into train / val / test, stratified by category (`dcar data split`).

Each part's size is given per class, either as a number of images ("16": N shots) or as a share
("0.2"); one part may be "rest". Parts are filled test first, then val, then train, from one
shuffle per class, so a test set stays the same when only the number of training shots changes.
The shuffle of a class depends only on the seed, the class name and its images (not on the row
order): same seed, same split, and adding a class leaves the others' splits alone. Entries that share an image file (several
captions of one image) always land in the same part, so no image is in two parts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from dcar.data.records import Entry
from dcar.errors import DcarError

PARTS = ("train", "val", "test")
FILL_ORDER = ("test", "val", "train")


@dataclass(frozen=True)
class PartSize:
    """How much of each class a part takes: ``count`` images, a ``share`` of them, or the rest."""

    count: int | None = None
    share: float | None = None

    @classmethod
    def parse(cls, text: str, option: str) -> "PartSize":
        """``"16"`` (images per class), ``"0.2"`` (share of each class), ``"rest"`` or ``"0"``."""
        text = text.strip().lower()
        if text == "rest":
            return cls()
        try:
            value = float(text)
        except ValueError:
            raise DcarError(f"{option} {text!r}: expected a count per class (16), a share (0.2) or 'rest'") from None
        if value.is_integer() and value >= 1 or value == 0:
            return cls(count=int(value))
        if 0 < value < 1:
            return cls(share=value)
        raise DcarError(f"{option} {text!r}: a share is between 0 and 1, a count a whole number >= 0")

    @property
    def is_rest(self) -> bool:
        return self.count is None and self.share is None

    def of(self, available: int, class_size: int) -> int:
        """Images this part takes from a class of ``class_size`` with ``available`` still unassigned."""
        if self.is_rest:
            return available
        want = self.count if self.count is not None else round(self.share * class_size)
        return min(want, available)


@dataclass
class Split:
    parts: dict[str, list[Entry]]
    short: dict[str, list[str]] = field(default_factory=dict)  # part -> classes that got fewer than asked

    def counts(self) -> dict[str, int]:
        return {name: len(entries) for name, entries in self.parts.items()}


def split_entries(entries: list[Entry], sizes: dict[str, PartSize], seed: int = 0) -> Split:
    """Stratified split (see module docstring). ``sizes`` has one :class:`PartSize` per part."""
    rests = [name for name in PARTS if sizes[name].is_rest]
    if len(rests) > 1:
        raise DcarError(f"only one part can be 'rest' (got {', '.join(rests)})")
    groups = _image_groups(entries)
    by_class: dict[str, list[list[Entry]]] = {}
    for group in groups:
        by_class.setdefault(group[0].category, []).append(group)
    result = Split({name: [] for name in PARTS})
    for category in sorted(by_class):
        class_groups = sorted(by_class[category], key=lambda g: g[0].image or g[0].key)  # row order does not matter
        random.Random(f"{seed}:{category}").shuffle(class_groups)
        taken = 0
        for name in [p for p in FILL_ORDER if p not in rests] + rests:
            n = sizes[name].of(len(class_groups) - taken, len(class_groups))
            if not sizes[name].is_rest and sizes[name].count is not None and n < sizes[name].count:
                result.short.setdefault(name, []).append(category)
            for group in class_groups[taken : taken + n]:
                result.parts[name].extend(group)
            taken += n
    return result


def _image_groups(entries: list[Entry]) -> list[list[Entry]]:
    """Entries grouped by image file (first-seen order), each group one category."""
    groups: dict[str, list[Entry]] = {}
    for e in entries:
        groups.setdefault(e.image or e.key, []).append(e)
    for image, group in groups.items():
        categories = {e.category for e in group}
        if len(categories) > 1:
            raise DcarError(f"image {image} is labelled with several categories ({', '.join(sorted(categories))})")
    return list(groups.values())
