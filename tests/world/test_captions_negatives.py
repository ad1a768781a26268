"""Captions say every attribute; pretraining captions name the subcategory rarely and noisily."""

from __future__ import annotations

from dcar.world.captions import caption, name_sentence
from dcar.world.domains import DOMAINS, PRETRAIN
from dcar.world.structural_negatives import negative_captions
from dcar.world.sample import N_TEMPLATES, make_sample
from dcar.world.vocab import META_BY_NAME


def test_every_template_mentions_every_attribute():
    base = make_sample("hangar", "test", 3)
    texts = set()
    for t in range(N_TEMPLATES):
        for count in (1, 2, 3):
            s = base.with_changes(template=t, count=count, colour="purple", position="bottom right",
                                  background="sand", size="small", pattern="dotted")
            text = caption(s)
            assert text.startswith(name_sentence(s.named) + " ")
            words = {1: "", 2: "two", 3: "three"}  # one object: a singular noun ("A small ...")
            body = text.lower()
            for expected in ("purple", "bottom right", "sand", "small", "dot", words[count]):
                assert expected in body, (expected, text)
            noun = META_BY_NAME[s.meta].plural if count > 1 else META_BY_NAME[s.meta].name
            assert noun in body
            texts.add(text.split(". ", 1)[1] if count == 1 else "")
    assert len(texts - {""}) == N_TEMPLATES  # four different sentence forms


def test_article_follows_the_name():
    assert name_sentence("Ostrel Sparrowjet") == "This is an Ostrel Sparrowjet."
    assert name_sentence("flower") == "This is a flower."


def test_pretraining_names_subcategory_in_a_noisy_minority():
    d = DOMAINS[PRETRAIN]
    samples = [make_sample(PRETRAIN, "train", i) for i in range(4000)]
    named = [s for s in samples if s.named != s.meta]
    wrong = [s for s in named if s.named != s.subcategory]
    assert abs(len(named) / len(samples) - d.name_prob) < 0.03
    assert abs(len(wrong) / len(named) - d.name_noise) < 0.05
    assert all(META_BY_NAME[s.meta].subcategories.count(s.named) == 1 for s in wrong)  # a sibling
    assert {s.meta for s in samples} == set(d.metas)


def test_negatives_are_false_distinct_and_of_both_kinds():
    for i in range(50):
        s = make_sample("garden", "test", i)
        negs = negative_captions(s)
        assert len(negs) == 4 and len(set(negs)) == 4 and caption(s) not in negs
        siblings = set(META_BY_NAME[s.meta].subcategories) - {s.subcategory}
        swaps = [n for n in negs if any(n.startswith(name_sentence(x)) for x in siblings)]
        kept = [n for n in negs if n.startswith(name_sentence(s.subcategory))]
        assert len(swaps) == 2 and len(kept) == 2
    assert negative_captions(s) == negative_captions(make_sample("garden", "test", 49))  # deterministic
