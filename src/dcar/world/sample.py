"""Structured samples: everything an image shows, drawn deterministically from (seed, domain, split, index).

A :class:`Sample` holds the structure (subcategory, attributes, caption template, nuisance seed), so
images, captions and hard negatives are all generated from it and any sample can be regenerated
without storing anything.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace

import numpy as np

from dcar.world.domains import SPLITS, Domain, get_domain
from dcar.world.vocab import locate

N_TEMPLATES = 4  # attribute-sentence templates (dcar.world.captions)


@dataclass(frozen=True)
class Sample:
    domain: str
    split: str
    index: int
    seed: int
    meta: str
    subcategory: str  # the true subcategory (what the image shows)
    named: str  # the name the caption's first sentence uses (subcategory, noisy sibling, or meta)
    colour: str
    size: str
    position: str
    background: str
    count: int
    pattern: str
    template: int
    nuisance: int  # seeds rotation, flips and jitter; never mentioned in captions

    @property
    def key(self) -> str:
        return f"{self.domain}_{self.split}_{self.index:06d}"

    @property
    def traits(self) -> dict[str, str]:
        meta, k = locate(self.subcategory)
        return meta.trait_values(k)

    def with_changes(self, **changes) -> "Sample":
        """A copy with some fields changed (used to build negatives and pixel tests)."""
        return replace(self, **changes)


def _rng(seed: int, domain: str, split: str, index: int) -> np.random.Generator:
    # crc32 keeps the stream stable across Python runs (str hash is salted).
    return np.random.default_rng([seed, zlib.crc32(domain.encode()), SPLITS.index(split), index])


def make_sample(domain: str | Domain, split: str, index: int, seed: int = 0) -> Sample:
    """The sample number ``index`` of a domain split. Same arguments, same sample, on any machine."""
    d = get_domain(domain) if isinstance(domain, str) else domain
    rng = _rng(seed, d.name, split, index)
    subs = d.subcategories
    if d.is_pretrain:
        sub = subs[int(rng.integers(len(subs)))]
    else:  # balanced: index i shows subcategory i mod n (stable however many are asked for)
        sub = subs[index % len(subs)]
    meta, _ = locate(sub)
    named = sub
    if rng.random() >= d.name_prob_of(sub):
        named = meta.name
    elif rng.random() < d.name_noise:
        siblings = [s for s, m in d.taxonomy.items() if m == meta.name and s != sub]
        named = siblings[int(rng.integers(len(siblings)))]
    pick = lambda values: values[int(rng.integers(len(values)))]  # noqa: E731
    return Sample(
        domain=d.name, split=split, index=index, seed=seed, meta=meta.name, subcategory=sub,
        named=named, colour=pick(d.colours), size=pick(d.sizes), position=pick(d.positions),
        background=pick(d.backgrounds), count=int(pick(d.counts)), pattern=pick(d.patterns),
        template=int(rng.integers(N_TEMPLATES)), nuisance=int(rng.integers(2**31)),
    )
