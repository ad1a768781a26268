"""Attribute perturbation: change one attribute phrase of a caption to another value of its kind.

The lexicon groups interchangeable values (a colour for a colour, a plural count for a plural
count, ``left`` for ``right``) so that the perturbed caption stays grammatical and plausible but
no longer describes the image. Words that are part of a class-name mention are never touched
(``white`` in ``giant white arum lily`` is part of the category, not an attribute).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Iterable

from dcar.negatives.mentions import indefinite_article

# kind -> groups; values of one group replace each other. Multi-word values are matched whole.
DEFAULT_LEXICON: dict[str, list[list[str]]] = {
    "colour": [
        [
            "red", "orange", "yellow", "green", "blue", "purple", "pink", "white", "black",
            "brown", "grey", "violet", "magenta", "crimson", "lavender", "golden", "silver",
            "beige", "maroon", "turquoise", "scarlet",
        ],
    ],
    "count": [
        ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "several", "many",
         "numerous", "multiple"],
        ["single", "lone", "solitary"],
    ],
    "size": [
        ["small", "large", "big", "tiny", "huge", "little", "enormous", "massive"],
        ["tall", "short"],
        ["long", "brief"],
        ["wide", "narrow"],
        ["thin", "thick"],
    ],
    "material": [
        ["wooden", "metal", "metallic", "plastic", "glass", "stone", "ceramic", "marble", "brick",
         "concrete", "leather", "wicker", "paper", "fabric"],
    ],
    "pattern": [
        ["striped", "spotted", "speckled", "checkered", "plain", "mottled", "dotted", "streaked",
         "solid"],
        ["stripes", "spots", "speckles", "dots", "streaks", "checks"],
    ],
    "position": [
        ["left", "right"],
        ["top", "bottom"],
        ["above", "below"],
        ["foreground", "background"],
        ["upper", "lower"],
        ["inside", "outside"],
        ["in front of", "behind"],
        ["center", "edge"],
        ["centre", "corner"],
    ],
    "pose": [
        ["standing", "sitting", "lying", "running", "walking", "flying", "swimming", "sleeping",
         "perched", "crouching", "jumping"],
        ["upright", "drooping"],
        ["open", "closed"],
        ["facing", "turned away from"],
    ],
}


@dataclass(frozen=True)
class AttributeSlot:
    """One attribute phrase found in a caption."""

    start: int
    end: int
    kind: str
    value: str  # lexicon spelling (lower case)
    alternatives: tuple[str, ...]  # other values of the same group


class AttributeLexicon:
    """Whole-word lookup of attribute values and their same-kind alternatives."""

    def __init__(self, lexicon: dict[str, list[list[str]]] | None = None) -> None:
        self.lexicon = lexicon or DEFAULT_LEXICON
        self._group: dict[str, tuple[str, tuple[str, ...]]] = {}
        for kind, groups in self.lexicon.items():
            for group in groups:
                for value in group:
                    # first group wins for a value listed twice (e.g. ``short``)
                    self._group.setdefault(value.lower(), (kind, tuple(v.lower() for v in group)))
        values = sorted(self._group, key=len, reverse=True)  # longest first: "a few" before "few"
        alternation = "|".join(r"\s+".join(map(re.escape, v.split())) for v in values)
        self._pattern = re.compile(r"(?<![\w\-])(" + alternation + r")(?![\w\-])", re.IGNORECASE)

    def slots(self, text: str, protected: Iterable[tuple[int, int]] = ()) -> list[AttributeSlot]:
        """Every attribute phrase in ``text`` outside the ``protected`` character spans."""
        blocked = list(protected)
        found = []
        for m in self._pattern.finditer(text):
            if any(m.start() < end and start < m.end() for start, end in blocked):
                continue
            value = " ".join(m.group(1).lower().split())
            kind, group = self._group[value]
            found.append(AttributeSlot(m.start(), m.end(), kind, value, tuple(v for v in group if v != value)))
        return found

    def perturb(
        self, text: str, rng: random.Random, protected: Iterable[tuple[int, int]] = (), limit: int = 8
    ) -> list[tuple[str, AttributeSlot, str]]:
        """Up to ``limit`` distinct single-attribute changes of ``text``, in random order.

        Each result is ``(new_text, slot, new_value)``. Changes are spread over different phrases
        first (round robin over the slots in random order), and values already present in the
        caption come last, so "purple and white" becomes "purple and yellow" before
        "purple and purple".
        """
        slots = self.slots(text, protected)
        rng.shuffle(slots)
        present = {s.value for s in slots}
        queues = []
        for slot in slots:
            alts = list(slot.alternatives)
            rng.shuffle(alts)
            alts.sort(key=lambda v: v in present)  # stable: keeps the random order within each class
            queues.append([(slot, alt) for alt in alts])
        seen: set[str] = set()
        out: list[tuple[str, AttributeSlot, str]] = []
        for rank in range(max((len(q) for q in queues), default=0)):
            for queue in queues:
                if rank >= len(queue) or len(out) >= limit:
                    continue
                slot, alt = queue[rank]
                new_text = substitute(text, slot, alt)
                if new_text not in seen:
                    seen.add(new_text)
                    out.append((new_text, slot, alt))
        return out


def substitute(text: str, slot: AttributeSlot, value: str) -> str:
    """``text`` with ``slot`` replaced by ``value`` in the slot's capitalisation; a directly
    preceding ``a``/``an`` is corrected for the new first letter."""
    original = text[slot.start : slot.end]
    head = text[: slot.start]
    article = re.search(r"(?<![\w\-])(a|an)(\s+)$", head, flags=re.IGNORECASE)
    if article:
        word = indefinite_article(value)
        word = word.capitalize() if article.group(1)[:1].isupper() else word
        head = head[: article.start()] + word + article.group(2)
    return head + _match_case(original, value) + text[slot.end :]


def _match_case(original: str, value: str) -> str:
    if len(original) > 1 and original.isupper():
        return value.upper()
    if original[:1].isupper():
        return value[:1].upper() + value[1:]
    return value
