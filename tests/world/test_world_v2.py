"""World v2: deterministic, traits visible at the model's resolution, catalog captions that read
like FDRD's MLLM captions (and unlike the pretraining alt-text), domains that differ in kind."""

from __future__ import annotations

import re
import statistics

import numpy as np
import pytest
from open_clip.tokenizer import SimpleTokenizer

from dcar.pretrain import get_preset
from dcar.world.captions import caption, name_sentence
from dcar.world.domains import PRETRAIN_V2, downstream_domains, get_domain, split_size
from dcar.world.structural_negatives import negative_captions
from dcar.world.render import render_array
from dcar.world.sample import make_sample
from dcar.world.vocab import META_CATEGORIES_V2, locate

V2 = downstream_domains(2)
_TOKENIZER = SimpleTokenizer()


def _tokens(text: str) -> int:
    return len(_TOKENIZER.encode(text))


def test_v1_is_still_the_default_world():
    assert downstream_domains() == ["garden", "wildlife", "hangar"]
    # the recipe of the shipped model keeps its fingerprint (a v1 checkpoint still resumes)
    assert get_preset("synthetic-small").fingerprint() == "69193a0a8010bbdc"
    assert get_preset("synthetic-v2").fingerprint() != get_preset("synthetic-small").fingerprint()


@pytest.mark.parametrize("domain", [PRETRAIN_V2, *V2])
def test_same_arguments_same_sample_pixels_and_caption(domain):
    a, b = make_sample(domain, "test", 11, seed=2), make_sample(domain, "test", 11, seed=2)
    assert a == b and caption(a) == caption(b)
    assert np.array_equal(render_array(a, 96), render_array(b, 96))
    other = make_sample(domain, "test", 11, seed=3)
    assert not np.array_equal(render_array(a, 96), render_array(other, 96))


def test_domains_differ_in_kind():
    assert len(V2) >= 4
    sizes = [len(get_domain(d).subcategories) for d in V2]
    assert min(sizes) >= 16 and max(sizes) <= 48 and len(set(sizes)) >= 3
    siblings = set()
    for name in V2:
        d = get_domain(name)
        assert d.version == 2 and d.image_size == 96
        per_meta = {m: sum(1 for v in d.taxonomy.values() if v == m) for m in d.metas}
        siblings |= set(per_meta.values())
        assert split_size(d, "train") == 16 * len(d.subcategories)
        assert split_size(d, "test") >= 20 * len(d.subcategories)
        # the catalog shows backgrounds pretraining never does
        assert set(d.backgrounds) - set(get_domain(PRETRAIN_V2).backgrounds)
        assert d.style.tint_strength > 0 and d.style.noise > 0
    assert len(siblings) >= 2  # siblings per meta-category vary across catalogs
    assert len({get_domain(d).caption_style for d in V2}) == len(V2)


def test_subcategory_names_are_unique_and_belong_to_one_version():
    names = [s for m in META_CATEGORIES_V2 for s in m.subcategories]
    assert len(names) == len(set(names)) == 96
    for s in names:
        assert locate(s)[0] in META_CATEGORIES_V2


@pytest.mark.parametrize("meta", META_CATEGORIES_V2, ids=lambda m: m.name)
def test_every_trait_is_visible_at_96_px(meta):
    """Flipping any one of the four traits changes a visible patch of a large object at the
    model's resolution (not one stray pixel), still less than another meta-category does."""
    base = make_sample(PRETRAIN_V2, "train", 0).with_changes(
        meta=meta.name, subcategory=meta.subcategories[0], named=meta.name, size="large", count=1,
        position="center", background="white", pattern="plain", colour="red")
    img0 = render_array(base, 96).astype(int)
    other = next(m for m in META_CATEGORIES_V2 if m.name != meta.name)
    far = (np.abs(render_array(base.with_changes(meta=other.name, subcategory=other.subcategories[0]), 96)
                  - img0).sum(-1) > 30).sum()
    for bit in (8, 4, 2, 1):
        changed = (np.abs(render_array(base.with_changes(subcategory=meta.subcategories[bit]), 96) - img0).sum(-1) > 30).sum()
        assert 12 <= changed < far, f"{meta.subcategories[bit]}: {changed} pixels differ (other meta: {far})"


@pytest.mark.parametrize("domain", V2)
def test_catalog_captions_read_like_fdrd(domain):
    """'This is a {name}.' then 2-4 sentences; 20-50 tokens at p5/p95 (FDRD flowers: 21/36/48)."""
    d = get_domain(domain)
    samples = [make_sample(d, "test", i) for i in range(300)]
    caps = [caption(s) for s in samples]
    lengths = [_tokens(c) for c in caps]
    p5, p95 = np.percentile(lengths, [5, 95])
    assert 20 <= p5 and p95 <= 50, (p5, p95)
    assert 28 <= statistics.median(lengths) <= 42
    for s, c in zip(samples, caps):
        assert c.startswith(name_sentence(s.subcategory) + " ")
        rest = c[len(name_sentence(s.subcategory)) + 1:]
        assert 2 <= len(re.findall(r"[.!?](?:\s|$)", rest)) <= 4, c
    assert len(set(caps)) > 0.9 * len(caps)  # varied wording, not one template per image


def test_pretraining_alt_text_is_shorter_and_names_subcategories_unevenly():
    d = get_domain(PRETRAIN_V2)
    samples = [make_sample(d, "train", i) for i in range(3000)]
    alt = [_tokens(caption(s)) for s in samples]
    catalog = [_tokens(caption(make_sample(name, "test", i))) for name in V2 for i in range(100)]
    assert np.median(alt) < np.percentile(catalog, 5)  # mostly short and plain
    # a long tail, as web text has: every position the catalog captions (plus prompts) use is trained
    assert 0.1 < np.mean(np.array(alt) > 30) < 0.3 and np.percentile(alt, 99) > 55
    assert not any(caption(s).startswith("This is") for s in samples[:200])
    probs = [d.name_prob_of(s) for s in d.subcategories]
    assert min(probs) < 0.05 and max(probs) > 0.3  # some names rare, some common
    named = [s for s in samples if s.named != s.meta]
    assert 0.05 < len(named) / len(samples) < 0.4
    noisy = [s for s in named if s.named != s.subcategory]
    assert 0.05 < len(noisy) / len(named) < 0.3  # label noise: a sibling's name
    assert all(locate(s.named)[0].name == s.meta for s in noisy)


def test_catalog_negatives_swap_the_name_and_keep_the_rest():
    s = make_sample("meadow", "test", 3)
    negs = negative_captions(s)
    pos = caption(s)
    assert len(negs) == 4 and pos not in negs
    swaps = [n for n in negs if n.split(". ", 1)[1] == pos.split(". ", 1)[1]]
    assert len(swaps) >= 2


def test_cli_exports_a_v2_catalog_at_its_own_resolution(tmp_path):
    import json

    from PIL import Image

    from dcar.cli import main
    from dcar.data.taxonomy import read_taxonomy

    main(["data", "synth", "--domain", "pond", "--split", "train", "--shots", "1", "--out", str(tmp_path)])
    data = json.loads((tmp_path / "pond_train.json").read_text())
    assert len(data) == 20 and read_taxonomy(tmp_path / "pond_taxonomy.json") == get_domain("pond").taxonomy
    first = next(iter(data.values()))
    with Image.open(tmp_path / first["file_path"]) as im:
        assert im.size == (96, 96)
    assert first["positive"].startswith("This is a ") and len(first["negative"]) == 4


def test_trait_phrases_never_reuse_an_attribute_word():
    from dcar.world.captions import TRAIT_WORDS
    from dcar.world.vocab import ATTRIBUTE_VALUES

    attribute_words = {w for values in ATTRIBUTE_VALUES.values() for v in values for w in str(v).split()}
    attribute_words |= {"one", "two", "stripe", "stripes", "dot", "dots"}
    for meta, traits in TRAIT_WORDS.items():
        for phrases in traits.values():
            for phrase in phrases:
                assert not set(phrase.split()) & attribute_words, (meta, phrase)


def test_v2_keeps_a_large_corner_object_in_frame_and_v1_places_as_before():
    import numpy as np

    from dcar.world.render import _frames
    from dcar.world.sample import make_sample

    rng = lambda: np.random.default_rng(0)  # noqa: E731
    v2 = make_sample("meadow", "test", 0).with_changes(size="large", count=1, position="top left")
    (f,) = _frames(v2, 96, rng())
    assert f.cx - f.r >= 0 and f.cy - f.r >= 0  # the whole object is inside the 96-px image
    v1 = make_sample("garden", "test", 0).with_changes(size="large", count=1, position="top left")
    (g,) = _frames(v1, 64, rng())
    assert abs(g.cx - 0.27 * 64) <= 2 and g.r == 15.0  # v1: corner anchor and radius unchanged
