"""Class-name mentions: spelling variants, plurals, case, articles, word boundaries."""

from __future__ import annotations

import pytest

from dcar.negatives import display_name, mentions, replace_mentions


@pytest.mark.parametrize(
    ("text", "category", "new", "expected", "count"),
    [
        ("This is a sunflower. Sunflowers face east.", "sunflower", "tiger_lily",
         "This is a tiger lily. Tiger lilies face east.", 2),
        ("This is a orange_dahlia.The orange dahlia glows.", "orange_dahlia", "oxeye_daisy",
         "This is an oxeye daisy.The oxeye daisy glows.", 2),
        ("An Orange Dahlia and two ORANGE DAHLIAS.", "orange_dahlia", "rose",
         "A Rose and two ROSES.", 2),
        ("Two lilies beside a lily.", "lily", "iris", "Two irises beside an iris.", 2),
        ("This is a black-eyed susan.", "black-eyed_susan", "colt's_foot", "This is a colt's foot.", 1),
        ("A black eyed susan.", "black-eyed_susan", "rose", "A rose.", 1),
        ("This is a photo of face.", "face", "leopard", "This is a photo of leopard.", 1),
        ("The sunflower's petals.", "sunflower", "daisy", "The daisy's petals.", 1),
    ],
)
def test_every_mention_is_replaced(text, category, new, expected, count):
    assert replace_mentions(text, category, new) == (expected, count)


def test_no_match_inside_longer_words_or_hyphenated_names():
    text = "A desert-rose, a primrose and rose-tinted petals; roses too."
    out, n = replace_mentions(text, "rose", "tulip")
    assert n == 1 and out == "A desert-rose, a primrose and rose-tinted petals; tulips too."
    assert mentions("a sunflowerish hue", "sunflower") == 0


def test_display_name():
    assert display_name("giant_white_arum_lily") == "giant white arum lily"
    assert display_name("  passion__flower ") == "passion flower"
