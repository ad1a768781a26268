"""Attribute perturbation: same kind, whole words, class names untouched, grammar kept."""

from __future__ import annotations

import random
import re

from dcar.negatives import DEFAULT_LEXICON, AttributeLexicon
from dcar.negatives.mentions import mention_pattern

CAPTION = "A large orange flower with two white petals on the left, in front of a blurred background."


def _kind_of(value: str) -> str:
    return next(k for k, groups in DEFAULT_LEXICON.items() for g in groups if value in g)


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
        assert new != slot.value and _kind_of(new) == slot.kind
        group = next(g for g in DEFAULT_LEXICON[slot.kind] if slot.value in g)
        assert new in group
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


def test_no_attributes_means_no_changes():
    assert AttributeLexicon().perturb("This is a rose.", random.Random(0)) == []


def test_same_seed_same_changes():
    a = AttributeLexicon().perturb(CAPTION, random.Random(5))
    b = AttributeLexicon().perturb(CAPTION, random.Random(5))
    assert a == b
