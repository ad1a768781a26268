"""Hard negative captions built from a sample's *structure* (exact, no text parsing).

The project's shared generator, ``dcar.negatives``, edits caption *text* and works on any data;
world exports can use it (``materialise(..., negatives_from="shared")``). The default for the world
is this structural version: it changes the sample and re-renders the caption, so a negative is
never secretly still true, and it only uses values the domain itself uses (a text lexicon also
proposes words this world never shows, "mottled" or "six", which a model can reject from the words
alone, so such negatives are easier than real ones).

K negatives per sample (FDRD files carry 4): half category swaps (a sibling subcategory of the same
meta-category), half attribute perturbations (one attribute set to another value the domain uses).
"""

from __future__ import annotations

import numpy as np

from dcar.world.captions import caption
from dcar.world.domains import get_domain
from dcar.world.sample import Sample
from dcar.world.vocab import META_BY_NAME, META_CATEGORIES

_ATTRIBUTE_FIELDS = {"colour": "colours", "size": "sizes", "position": "positions",
                     "background": "backgrounds", "count": "counts", "pattern": "patterns"}


def category_swap(s: Sample, rng: np.random.Generator) -> Sample:
    """The same scene captioned as another subcategory of its meta-category.

    A caption that names only the meta-category (pretraining) gets another meta-category instead.
    """
    if s.named == s.meta:
        others = [m for m in META_CATEGORIES if m.name != s.meta]
        m = others[int(rng.integers(len(others)))]
        return s.with_changes(meta=m.name, subcategory=m.subcategories[0], named=m.name)
    siblings = [x for x in META_BY_NAME[s.meta].subcategories if x != s.named]
    return s.with_changes(named=siblings[int(rng.integers(len(siblings)))])


def attribute_perturbation(s: Sample, rng: np.random.Generator, avoid: set[str] = frozenset()) -> Sample:
    """The same subcategory with one attribute (not in ``avoid``) changed to another allowed value."""
    d = get_domain(s.domain)
    fields = [f for f, allowed in _ATTRIBUTE_FIELDS.items()
              if f not in avoid and len(getattr(d, allowed)) > 1]
    if not fields:
        fields = [f for f, allowed in _ATTRIBUTE_FIELDS.items() if len(getattr(d, allowed)) > 1]
    name = fields[int(rng.integers(len(fields)))]
    choices = [v for v in getattr(d, _ATTRIBUTE_FIELDS[name]) if v != getattr(s, name)]
    return s.with_changes(**{name: choices[int(rng.integers(len(choices)))]})


def negative_captions(s: Sample, k: int = 4) -> list[str]:
    """``k`` distinct captions that are false for the sample's image (deterministic per sample)."""
    rng = np.random.default_rng([s.nuisance, 7])
    positive = caption(s)
    out: list[str] = []
    changed: set[str] = set()
    for attempt in range(20 * k):
        if len(out) == k:
            break
        if len(out) < (k + 1) // 2:
            neg = category_swap(s, rng)
        else:
            neg = attribute_perturbation(s, rng, avoid=changed)
            changed |= {f for f in _ATTRIBUTE_FIELDS if getattr(neg, f) != getattr(s, f)}
        text = caption(neg)
        if text != positive and text not in out:
            out.append(text)
    return out
