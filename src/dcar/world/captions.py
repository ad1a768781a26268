"""FDRD-style captions built from a sample's structure: "This is a {name}. {attribute sentence}"."""

from __future__ import annotations

from dcar.world.sample import N_TEMPLATES, Sample
from dcar.world.vocab import META_BY_NAME

_COUNT_WORDS = {1: "one", 2: "two", 3: "three"}
_PATTERN_NOUN = {"plain": "plain", "striped": "striped", "dotted": "dotted"}
_PATTERN_PHRASE = {"plain": "with no pattern", "striped": "with stripes", "dotted": "with dots"}


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def attribute_sentence(s: Sample) -> str:
    """One sentence naming every attribute (colour, size, position, background, count, pattern)."""
    meta = META_BY_NAME[s.meta]
    many = s.count > 1
    noun = meta.plural if many else meta.name
    count = _COUNT_WORDS[s.count]
    be = "are" if many else "is"
    if s.template == 0:
        lead = count.capitalize() if many else "A"
        return (f"{lead} {s.size} {s.colour} {s.pattern} {noun} {be} at the {s.position} "
                f"on a {s.background} background.")
    if s.template == 1:
        return (f"The picture shows {count} {s.colour} {noun} with a {_PATTERN_NOUN[s.pattern]} "
                f"surface, {s.size}, at the {s.position}, against a {s.background} background.")
    if s.template == 2:
        sit = "sit" if many else "sits"
        its = "their" if many else "its"
        return (f"On a {s.background} background, {count} {s.size} {noun} in {s.colour} {sit} "
                f"at the {s.position}; {its} surface is {s.pattern}.")
    if s.template == 3:
        return (f"{count.capitalize()} {s.colour} {noun} {be} shown {s.size} at the {s.position}, "
                f"{_PATTERN_PHRASE[s.pattern]}, over a {s.background} background.")
    raise ValueError(f"template {s.template} out of range 0..{N_TEMPLATES - 1}")


def name_sentence(name: str) -> str:
    """The caption's first sentence, "This is a {name}." (also a zero-shot class prompt)."""
    return f"This is {_article(name)} {name}."


def caption(s: Sample) -> str:
    """The sample's caption; its first sentence uses ``s.named`` (see :class:`Sample`)."""
    return f"{name_sentence(s.named)} {attribute_sentence(s)}"
