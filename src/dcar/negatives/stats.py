"""Counting what the generator made, for the CLI reports and the tests."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from dcar.negatives.generator import NegativeCaption, normalize


def bad_negatives(positive: str, negatives: list[str]) -> tuple[int, int]:
    """(identical to the positive, repeats of an earlier negative) in one entry's list."""
    pos = normalize(positive)
    identical = repeated = 0
    seen: set[str] = set()
    for n in map(normalize, negatives):
        identical += n == pos
        repeated += n != pos and n in seen
        seen.add(n)
    return identical, repeated


@dataclass
class NegativeStats:
    entries: int = 0
    negatives: int = 0
    identical: int = 0  # equal to the positive: must stay 0
    repeated: int = 0  # equal to another negative of the same entry: must stay 0
    short_entries: int = 0  # entries that got fewer than k
    kinds: Counter = field(default_factory=Counter)  # swap / attribute
    attributes: Counter = field(default_factory=Counter)  # colour / count / ...
    swaps_with_meta: int = 0  # swaps whose source category is in the taxonomy
    swaps_same_meta: int = 0  # ... and whose target has the same meta-category

    def add(self, positive: str, negatives: list[NegativeCaption], category: str, k: int,
            taxonomy: dict[str, str] | None = None) -> None:
        self.entries += 1
        self.negatives += len(negatives)
        self.short_entries += len(negatives) < k
        identical, repeated = bad_negatives(positive, [n.text for n in negatives])
        self.identical += identical
        self.repeated += repeated
        for n in negatives:
            self.kinds[n.kind] += 1
            if n.attribute:
                self.attributes[n.attribute] += 1
            if n.kind == "swap" and taxonomy and category in taxonomy:
                self.swaps_with_meta += 1
                self.swaps_same_meta += taxonomy.get(n.swapped_to or "") == taxonomy[category]

    @property
    def same_meta_share(self) -> float | None:
        """Share of swaps that stay inside the meta-category (None without a taxonomy)."""
        return self.swaps_same_meta / self.swaps_with_meta if self.swaps_with_meta else None

    def summary(self) -> dict[str, object]:
        return {
            "entries": self.entries,
            "negatives": self.negatives,
            "identical": self.identical,
            "repeated": self.repeated,
            "entries_with_fewer_than_k": self.short_entries,
            "kinds": dict(self.kinds),
            "attributes": dict(self.attributes),
            "swaps_same_meta_share": self.same_meta_share,
        }
