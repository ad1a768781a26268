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

# kind -> groups. Values of one group replace each other; "a|b" are synonyms, which never
# replace each other ("large" -> "big" would be no negative at all). Multi-word values match whole.
DEFAULT_LEXICON: dict[str, list[list[str]]] = {
    "colour": [
        ["red|crimson|scarlet|maroon", "orange", "yellow|golden", "green", "blue|turquoise",
         "purple|violet|lavender|magenta", "pink", "white", "black", "brown|beige", "grey|silver"],
    ],
    "count": [
        ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "several|many|numerous|multiple"],
    ],
    "size": [
        ["small|tiny|little", "large|big|huge|enormous|massive"],
        ["tall", "short"],
        ["long", "short"],
        ["wide", "narrow"],
        ["thin", "thick"],
    ],
    "material": [
        ["wooden", "metal|metallic", "plastic", "glass", "stone", "ceramic", "marble", "brick", "concrete",
         "leather", "wicker", "paper", "fabric"],
    ],
    "pattern": [
        ["striped", "spotted|dotted|speckled", "checkered", "plain|solid", "mottled", "streaked"],
        ["stripes", "spots|dots|speckles", "streaks", "checks"],
    ],
    "position": [
        ["left", "right"],
        ["top", "bottom"],
        ["above", "below"],
        ["foreground", "background"],
        ["upper", "lower"],
        ["inside", "outside"],
        ["in front of", "behind"],
        ["center|centre", "edge|corner"],
    ],
    "pose": [
        ["standing", "sitting", "lying", "running", "walking", "flying", "swimming", "sleeping", "perched",
         "crouching", "jumping"],
        ["upright", "drooping"],
        ["open", "closed"],
        ["facing", "turned away from"],
    ],
}


# Fixed phrases whose lexicon words are not attributes ("standing out" is no pose).
DEFAULT_IDIOMS: tuple[str, ...] = (
    "stand out", "stands out", "standing out", "stood out", "right now", "all right", "right away",
    "left over", "open air", "in the open", "lying ahead", "bottom line", "top notch",
)


@dataclass(frozen=True)
class AttributeSlot:
    """One attribute phrase found in a caption."""

    start: int
    end: int
    kind: str
    value: str  # lexicon spelling (lower case)
    alternatives: tuple[str, ...]  # values of the same group with another meaning


class AttributeLexicon:
    """Whole-word lookup of attribute values and their same-kind alternatives."""

    def __init__(
        self, lexicon: dict[str, list[list[str]]] | None = None, idioms: Iterable[str] = DEFAULT_IDIOMS
    ) -> None:
        self.lexicon = lexicon or DEFAULT_LEXICON
        idioms = list(idioms)
        self._idioms = _phrases(idioms) if idioms else None
        # value -> (kind, the values that may replace it); the first group wins for a value
        # listed twice (``short``)
        self._group: dict[str, tuple[str, tuple[str, ...]]] = {}
        for kind, groups in self.lexicon.items():
            for group in groups:
                senses = [[v.strip().lower() for v in sense.split("|")] for sense in group]
                for i, sense in enumerate(senses):
                    others = tuple(v for j, other in enumerate(senses) if j != i for v in other)
                    for value in sense:
                        self._group.setdefault(value, (kind, others))
        self._pattern = _phrases(self._group)

    def slots(self, text: str, protected: Iterable[tuple[int, int]] = ()) -> list[AttributeSlot]:
        """Every attribute phrase in ``text`` outside the ``protected`` character spans and idioms."""
        blocked = list(protected)
        if self._idioms is not None:
            blocked += [m.span() for m in self._idioms.finditer(text)]
        found = []
        for m in self._pattern.finditer(text):
            if any(m.start() < end and start < m.end() for start, end in blocked):
                continue
            value = " ".join(m.group(1).lower().split())
            kind, others = self._group[value]
            found.append(AttributeSlot(m.start(), m.end(), kind, value, others))
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


def _phrases(phrases: Iterable[str]) -> re.Pattern[str]:
    """Whole-word, case-insensitive match of any phrase (group 1), longest first, any spacing."""
    ordered = sorted(phrases, key=len, reverse=True)  # "in front of" before anything shorter
    alternation = "|".join(r"\s+".join(map(re.escape, p.split())) for p in ordered)
    return re.compile(r"(?<![\w\-])(" + alternation + r")(?![\w\-])", re.IGNORECASE)


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
