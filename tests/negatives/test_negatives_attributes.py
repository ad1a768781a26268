"""Attribute perturbation: same kind, whole words, class names untouched, grammar kept."""

from __future__ import annotations

import random
import re

from dcar.negatives import DEFAULT_LEXICON, AttributeLexicon
from dcar.negatives.mentions import mention_pattern

CAPTION = "A large orange flower with two white petals on the left, in front of a blurred background."


def _senses(value: str) -> list[tuple[str, list[str], list[str]]]:
    """(kind, group values, the value's synonyms) for every group listing ``value``."""
    out = []
    for kind, groups in DEFAULT_LEXICON.items():
        for group in groups:
            senses = [sense.split("|") for sense in group]
            for sense in senses:
                if value in sense:
                    out.append((kind, [v for s in senses for v in s], sense))
    return out


def test_slots_found_by_kind():
    slots = AttributeLexicon().slots(CAPTION)
    assert [(s.value, s.kind) for s in slots] == [
        ("large", "size"), ("orange", "colour"), ("two", "count"), ("white", "colour"),
        ("left", "position"), ("in front of", "position"), ("background", "position"),
    ]


def test_each_change_swaps_one_value_for_another_of_its_group():
    lex = AttributeLexicon()
    changes = lex.perturb(CAPTION, random.Random(0), limit=30)
    assert len(changes) == 30 and len({c[0] for c in changes}) == 30
    for text, slot, new in changes:
        kind, group, synonyms = _senses(slot.value)[0]
        assert kind == slot.kind and new in group and new not in synonyms  # another meaning, same kind
        # the rest of the caption is untouched, except "A"/"An" before the changed word
        suffix = CAPTION[slot.end :]
        assert text.endswith(suffix)
        head = text[: len(text) - len(suffix)]
        assert head.lower().endswith(new)
        before = head[: len(head) - len(new)]
        assert re.sub(r"\bAn? ", "A ", before) == re.sub(r"\bAn? ", "A ", CAPTION[: slot.start])


def test_first_changes_touch_different_phrases_and_avoid_values_already_present():
    changes = AttributeLexicon().perturb(CAPTION, random.Random(3), limit=7)
    assert len({(c[1].start, c[1].end) for c in changes}) == 7  # round robin over the 7 slots
    assert "white" not in {new for _, slot, new in changes if slot.value == "orange"}


def test_synonyms_never_replace_each_other():
    lex = AttributeLexicon()
    (slot,) = lex.slots("a large flower")
    assert "big" not in slot.alternatives and "huge" not in slot.alternatives and "small" in slot.alternatives
    (slot,) = lex.slots("a golden centre", protected=[(9, 15)])
    assert "yellow" not in slot.alternatives and "red" in slot.alternatives
    texts = {t for t, _, _ in lex.perturb("A single red rose.", random.Random(0), limit=50)}
    assert texts and not any(w in t for t in texts for w in ("crimson", "scarlet", "maroon"))


def test_article_follows_the_new_word():
    lex = AttributeLexicon({"colour": [["orange", "red"]]})
    (text, _, _), = lex.perturb("An orange bloom.", random.Random(0))
    assert text == "A red bloom."
    (text, _, _), = lex.perturb("a red bloom", random.Random(0))
    assert text == "an orange bloom"


def test_class_name_words_are_protected():
    caption = "This is a giant white arum lily with a white spathe."
    protected = [m.span("name") for m in mention_pattern("giant_white_arum_lily").finditer(caption)]
    slots = AttributeLexicon().slots(caption, protected)
    assert [(s.value, s.start) for s in slots] == [("white", caption.rindex("white"))]


def test_idioms_are_not_attributes():
    slots = AttributeLexicon().slots("Purple flowers standing out against the sky, a cat standing on the left.")
    assert [(s.value, s.start) for s in slots] == [("purple", 0), ("standing", 51), ("left", 67)]


def test_no_attributes_means_no_changes():
    assert AttributeLexicon().perturb("This is a rose.", random.Random(0)) == []


def test_same_seed_same_changes():
    a = AttributeLexicon().perturb(CAPTION, random.Random(5))
    b = AttributeLexicon().perturb(CAPTION, random.Random(5))
    assert a == b
