"""The world is deterministic, and what captions say is actually drawn in the pixels."""

from __future__ import annotations

import numpy as np
import pytest

from dcar.world.domains import DOMAINS, PRETRAIN, downstream_domains, get_domain, split_size
from dcar.world.render import render_array
from dcar.world.sample import make_sample
from dcar.world.vocab import ATTRIBUTE_VALUES, META_CATEGORIES, full_taxonomy


def test_same_arguments_same_sample_and_pixels():
    a, b = make_sample("garden", "test", 17, seed=3), make_sample("garden", "test", 17, seed=3)
    assert a == b
    assert np.array_equal(render_array(a), render_array(b))


def test_seed_index_and_split_change_the_sample():
    base = render_array(make_sample(PRETRAIN, "train", 5))
    for other in (make_sample(PRETRAIN, "train", 6), make_sample(PRETRAIN, "train", 5, seed=1),
                  make_sample(PRETRAIN, "val", 5)):
        assert not np.array_equal(base, render_array(other))


def test_world_size_requirements():
    assert len(META_CATEGORIES) >= 6
    assert all(len(m.subcategories) >= 8 for m in META_CATEGORIES)
    assert len(set(full_taxonomy())) == sum(len(m.subcategories) for m in META_CATEGORIES)  # unique names
    assert len(ATTRIBUTE_VALUES["colour"]) >= 6 and len(ATTRIBUTE_VALUES["size"]) >= 2
    assert len(ATTRIBUTE_VALUES["position"]) >= 5 and len(ATTRIBUTE_VALUES["background"]) >= 4
    assert set(ATTRIBUTE_VALUES["count"]) == {1, 2, 3}
    assert len(downstream_domains()) >= 3
    assert split_size(DOMAINS[PRETRAIN], "train") >= 100_000
    for name in downstream_domains():
        d = get_domain(name)
        assert 2 <= len(d.metas) <= 3 and split_size(d, "test") >= 40 * len(d.subcategories)


@pytest.mark.parametrize("meta", [m.name for m in META_CATEGORIES])
def test_every_trait_changes_pixels_but_less_than_another_meta(meta):
    """Siblings differ (each of the three traits is drawn), but only in details."""
    m = next(x for x in META_CATEGORIES if x.name == meta)
    base = make_sample(PRETRAIN, "train", 0).with_changes(
        meta=meta, subcategory=m.subcategories[0], named=meta, size="large", count=1,
        position="center", background="white", pattern="plain", colour="red")
    img0 = render_array(base).astype(int)
    other_meta = next(x for x in META_CATEGORIES if x.name != meta)
    far = np.abs(render_array(base.with_changes(meta=other_meta.name, subcategory=other_meta.subcategories[0])) - img0)
    for bit in (4, 2, 1):  # flip one trait at a time
        sib = render_array(base.with_changes(subcategory=m.subcategories[bit])).astype(int)
        diff = np.abs(sib - img0)
        assert diff.sum() > 0, f"{m.subcategories[bit]} looks exactly like {m.subcategories[0]}"
        assert (diff.sum(-1) > 0).sum() < (far.sum(-1) > 0).sum()


@pytest.mark.parametrize("field,value", [("colour", "blue"), ("size", "small"), ("position", "top left"),
                                         ("background", "grass"), ("count", 3), ("pattern", "striped")])
def test_every_attribute_changes_pixels(field, value):
    base = make_sample(PRETRAIN, "train", 0).with_changes(
        colour="red", size="large", position="center", background="white", count=1, pattern="plain")
    assert not np.array_equal(render_array(base), render_array(base.with_changes(**{field: value})))


def test_image_size_is_configurable():
    s = make_sample("hangar", "val", 1)
    assert render_array(s, 32).shape == (32, 32, 3)
    assert render_array(s, 96).shape == (96, 96, 3)


def test_downstream_splits_are_balanced_and_disjoint():
    d = get_domain("wildlife")
    train = [make_sample(d, "train", i) for i in range(split_size(d, "train", shots=4))]
    counts = {s: 0 for s in d.subcategories}
    for s in train:
        counts[s.subcategory] += 1
    assert set(counts.values()) == {4}
    seen: dict[bytes, str] = {}
    for split, n in (("train", 64), ("val", 64), ("test", 128)):
        for i in range(n):
            key = render_array(make_sample(d, split, i)).tobytes()
            assert seen.setdefault(key, split) == split, f"an image of {split} is also in {seen[key]}"


def test_downstream_samples_stay_in_their_domain():
    d = get_domain("garden")
    for i in range(200):
        s = make_sample(d, "test", i)
        assert s.meta in d.metas and s.colour in d.colours and s.background in d.backgrounds
        assert s.position in d.positions and s.count in d.counts and s.pattern in d.patterns
        assert s.named == s.subcategory
