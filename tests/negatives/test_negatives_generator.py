"""The generator: kinds, k, never identical, deterministic, taxonomy and hard siblings."""

from __future__ import annotations

import pytest

from dcar.negatives.mentions import indefinite_article

from dcar.negatives import (
    LexicalRanker,
    NegativeGenerator,
    NegativeStats,
    display_name,
    keeps_category,
    lexical_similarity,
    normalize,
)

CATEGORIES = ["sunflower", "tiger_lily", "fire_lily", "corn_poppy", "tree_poppy", "californian_poppy", "rose",
              "orange_dahlia", "pink-yellow_dahlia"]
TAXONOMY = {"tiger_lily": "lily", "fire_lily": "lily", "corn_poppy": "poppy", "tree_poppy": "poppy",
            "californian_poppy": "poppy", "orange_dahlia": "dahlia", "pink-yellow_dahlia": "dahlia",
            "sunflower": "daisy family", "rose": "rose family"}
CAPTION = "This is a tree poppy. A large white flower with a yellow centre stands on the left."


@pytest.mark.parametrize("strategy", ["swap", "attribute", "mixed"])
def test_k_distinct_negatives_of_the_requested_kinds(strategy):
    gen = NegativeGenerator(CATEGORIES, k=4, strategy=strategy)
    negs = gen.generate(CAPTION, "tree_poppy", key="k1")
    assert len(negs) == 4
    assert len({normalize(n.text) for n in negs} | {normalize(CAPTION)}) == 5
    kinds = [n.kind for n in negs]
    assert kinds == {"swap": ["swap"] * 4, "attribute": ["attribute"] * 4, "mixed": ["swap"] * 2 + ["attribute"] * 2}[strategy]
    for n in negs:
        if n.kind == "swap":
            assert n.swapped_to != "tree_poppy" and n.attribute is None
            assert not keeps_category(n.text, "tree_poppy") and keeps_category(n.text, n.swapped_to)
        else:
            assert n.swapped_to is None and n.attribute in {"size", "colour", "pose", "position"}
            assert keeps_category(n.text, "tree_poppy")


def test_swaps_replace_every_mention():
    caption = "This is a sunflower. Sunflowers turn; the sunflower's head is big."
    negs = NegativeGenerator(CATEGORIES, k=3, strategy="swap").generate(caption, "sunflower")
    for n in negs:
        assert "sunflower" not in n.text.lower()


def test_deterministic_given_seed_and_varies_with_key_and_seed():
    gen = NegativeGenerator(CATEGORIES, k=4, strategy="mixed", seed=1)
    again = NegativeGenerator(list(reversed(CATEGORIES)), k=4, strategy="mixed", seed=1)
    a = gen.generate(CAPTION, "tree_poppy", key="x")
    assert a == gen.generate(CAPTION, "tree_poppy", key="x") == again.generate(CAPTION, "tree_poppy", key="x")
    others = {tuple(n.text for n in gen.generate(CAPTION, "tree_poppy", key=f"k{i}")) for i in range(10)}
    assert len(others) > 1
    seeds = {tuple(n.text for n in NegativeGenerator(CATEGORIES, seed=s).generate(CAPTION, "tree_poppy")) for s in range(10)}
    assert len(seeds) > 1


def test_taxonomy_siblings_come_first():
    gen = NegativeGenerator(CATEGORIES, taxonomy=TAXONOMY, k=2, strategy="swap")
    for key in range(20):
        negs = gen.generate(CAPTION, "tree_poppy", key=str(key))
        assert {n.swapped_to for n in negs} == {"corn_poppy", "californian_poppy"}
    # only one sibling: the rest come from the hard (lexical) ranking
    negs = NegativeGenerator(CATEGORIES, taxonomy=TAXONOMY, k=3, strategy="swap").generate(
        "This is a tiger lily.", "tiger_lily")
    assert negs[0].swapped_to == "fire_lily" and len(negs) == 3


def test_without_taxonomy_swaps_come_from_the_hardest_pool():
    gen = NegativeGenerator(CATEGORIES, k=2, strategy="swap", pool_size=2)
    hardest = set(LexicalRanker(CATEGORIES)("tree_poppy")[:2])
    assert hardest == {"corn_poppy", "californian_poppy"}
    for key in range(10):
        assert {n.swapped_to for n in gen.generate(CAPTION, "tree_poppy", key=str(key))} == hardest


def test_custom_sibling_fn():
    gen = NegativeGenerator(CATEGORIES, sibling_fn=lambda c: ["rose", "sunflower"], k=1, strategy="swap", pool_size=1)
    assert gen.generate(CAPTION, "tree_poppy")[0].swapped_to == "rose"


def test_never_identical_even_when_names_collide():
    # "orange dahlia" and "orange_dahlia" spell the same class: a swap between them is no negative
    cats = ["orange_dahlia", "orange dahlia", "rose"]
    negs = NegativeGenerator(cats, k=4, strategy="swap").generate("This is an orange dahlia.", "orange_dahlia")
    assert [n.swapped_to for n in negs] == ["rose"]  # the only real alternative; no attributes to fill


def test_one_kind_fills_in_for_the_other():
    gen = NegativeGenerator(CATEGORIES, k=4, strategy="attribute")
    negs = gen.generate("This is a rose.", "rose")  # no attribute words at all
    assert len(negs) == 4 and all(n.kind == "swap" for n in negs)
    single = NegativeGenerator(["rose"], k=4, strategy="swap").generate("A red rose on the left.", "rose")
    assert len(single) == 4 and all(n.kind == "attribute" for n in single)


def test_caption_without_the_class_name_gets_a_wrong_class_statement():
    negs = NegativeGenerator(CATEGORIES, k=3, strategy="swap").generate("A flower in a field.", "rose")
    for n in negs:
        name = display_name(n.swapped_to)
        assert n.text == f"This is {indefinite_article(name)} {name}. A flower in a field."


def test_exclude_and_fits():
    gen = NegativeGenerator(CATEGORIES, k=2, strategy="swap", pool_size=2)
    first = gen.generate(CAPTION, "tree_poppy")
    more = gen.generate(CAPTION, "tree_poppy", exclude=[n.text for n in first])
    assert not {n.text for n in first} & {n.text for n in more}
    short = NegativeGenerator(CATEGORIES, k=3, strategy="swap", fits=lambda t: len(t) <= len(CAPTION))
    assert all(len(n.text) <= len(CAPTION) for n in short.generate(CAPTION, "tree_poppy"))
    # a positive that is itself too long does not starve the generator
    too_long = NegativeGenerator(CATEGORIES, k=3, strategy="swap", fits=lambda t: False)
    assert len(too_long.generate(CAPTION, "tree_poppy")) == 3


def test_stats_count_kinds_and_same_meta_share():
    gen = NegativeGenerator(CATEGORIES, taxonomy=TAXONOMY, k=4, strategy="mixed")
    stats = NegativeStats()
    stats.add(CAPTION, gen.generate(CAPTION, "tree_poppy"), "tree_poppy", 4, TAXONOMY)
    assert stats.identical == 0 and stats.kinds == {"swap": 2, "attribute": 2}
    assert stats.same_meta_share == 1.0


def test_bad_arguments():
    with pytest.raises(ValueError, match="strategy"):
        NegativeGenerator(CATEGORIES, strategy="random")
    with pytest.raises(ValueError, match="k"):
        NegativeGenerator(CATEGORIES, k=-1)


def test_lexical_similarity_prefers_shared_words_and_letters():
    assert lexical_similarity("tree_poppy", "corn_poppy") > lexical_similarity("tree_poppy", "rose")
    assert lexical_similarity("rose", "rose") == 1.0
    ranked = LexicalRanker(CATEGORIES)("orange_dahlia")
    assert ranked[0] == "pink-yellow_dahlia" and "orange_dahlia" not in ranked
