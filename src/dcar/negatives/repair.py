"""Repairing published negatives: replace those identical to the positive or repeated.

The published FDRD files swap class names uniformly at random over all classes, sometimes
drawing the image's own class, so about 2.5% of their negatives equal the positive. Such a
negative is a second positive in the loss; repairing replaces it (and any repeat) with a fresh
negative from the generator and leaves every other negative as published.
"""

from __future__ import annotations

from dataclasses import dataclass

from dcar.negatives.generator import NegativeGenerator, normalize


@dataclass
class RepairCounts:
    """What :func:`repair_negatives` found and fixed, summed over entries."""

    entries: int = 0
    negatives: int = 0
    identical: int = 0  # equal to the positive
    repeated: int = 0  # equal to an earlier negative of the same entry
    replaced: int = 0
    unfixable: int = 0  # no fresh negative could be made: dropped

    def add(self, other: "RepairCounts") -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def repair_negatives(
    positive: str, negatives: list[str], category: str, generator: NegativeGenerator, key: str | None = None
) -> tuple[list[str], RepairCounts]:
    """``negatives`` with every bad one replaced in place (order kept); bad ones that cannot be
    replaced are dropped and counted as unfixable."""
    counts = RepairCounts(entries=1, negatives=len(negatives))
    pos = normalize(positive)
    seen: set[str] = set()
    bad: list[int] = []
    for i, neg in enumerate(negatives):
        norm = normalize(neg)
        if norm == pos:
            counts.identical += 1
            bad.append(i)
        elif norm in seen:
            counts.repeated += 1
            bad.append(i)
        seen.add(norm)
    if not bad:
        return list(negatives), counts
    keep = [n for i, n in enumerate(negatives) if i not in set(bad)]
    fresh = iter(generator.generate(positive, category, key=key, k=len(bad), exclude=keep))
    out: list[str] = []
    for i, neg in enumerate(negatives):
        if i not in bad:
            out.append(neg)
            continue
        replacement = next(fresh, None)
        if replacement is None:
            counts.unfixable += 1
        else:
            out.append(replacement.text)
            counts.replaced += 1
    return out, counts
