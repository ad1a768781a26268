"""The negative caption generator used by `dcar data build`, `dcar data negatives` and training.

Two kinds of negatives, because DCAR's category loss weights them differently:

- ``swap``: every mention of the category replaced by a sibling category (the category changes);
- ``attribute``: one attribute phrase changed to another value of its kind (the category stays).

Negatives are never identical to the positive (compared case-, spacing- and underscore-
insensitively) and never repeat. Output depends only on ``seed``, the caption, the category and
the optional ``key``, not on call order, so parallel workers and resumed runs agree.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Literal

from dcar.negatives.attributes import AttributeLexicon
from dcar.negatives.mentions import display_name, indefinite_article, mention_pattern, replace_mentions
from dcar.negatives.siblings import LexicalRanker, SiblingFn

Kind = Literal["swap", "attribute"]
Strategy = Literal["swap", "attribute", "mixed"]
STRATEGIES: tuple[str, ...] = ("swap", "attribute", "mixed")


@dataclass(frozen=True)
class NegativeCaption:
    """One negative caption and how it was made."""

    text: str
    kind: Kind
    swapped_to: str | None = None  # the new category of a swap
    attribute: str | None = None  # the attribute kind changed ("colour", "count", ...)


def normalize(text: str) -> str:
    """Comparison form: case, whitespace and underscores do not make two captions different."""
    return " ".join(text.replace("_", " ").lower().split())


def keeps_category(text: str, category: str) -> bool:
    """Whether ``text`` still names ``category`` (how a published negative's kind can be told:
    a swap no longer names it, an attribute perturbation does)."""
    return mention_pattern(category).search(text) is not None


def stable_rng(*parts: object) -> random.Random:
    """A generator seeded from ``parts`` by SHA-256 (Python's ``hash`` is salted per process)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


class NegativeGenerator:
    """Makes ``k`` hard negatives for a (caption, category) pair.

    ``taxonomy`` maps subcategory -> meta-category: swaps go to same-meta siblings first.
    ``sibling_fn(category)`` ranks the other categories hardest first (default: lexical name
    overlap; pass :class:`~dcar.negatives.siblings.EmbeddingRanker` for text-embedding
    similarity); swaps beyond the taxonomy siblings are drawn from its top ``pool_size``.
    ``strategy``: ``swap``, ``attribute`` or ``mixed`` (ceil(k/2) swaps, the rest attributes);
    when one kind runs out the other fills in, so fewer than ``k`` come back only when both do.
    ``fits(text)``: the text encoder's length check; when the positive fits, negatives that do not
    are skipped (truncation could cut the very words that make them negative).
    """

    def __init__(
        self,
        categories: Iterable[str],
        taxonomy: dict[str, str] | None = None,
        sibling_fn: SiblingFn | None = None,
        k: int = 4,
        strategy: Strategy = "mixed",
        seed: int = 0,
        pool_size: int = 10,
        lexicon: AttributeLexicon | None = None,
        fits: Callable[[str], bool] | None = None,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
        if k < 0:
            raise ValueError("k must be >= 0")
        self.categories = list(dict.fromkeys(categories))
        self.taxonomy = dict(taxonomy or {})
        self.sibling_fn = sibling_fn or LexicalRanker(self.categories)
        self.k, self.strategy, self.seed, self.pool_size = k, strategy, seed, pool_size
        self.lexicon = lexicon or AttributeLexicon()
        self.fits = fits
        self._by_meta: dict[str, list[str]] = {}
        for c in self.categories:
            if c in self.taxonomy:
                self._by_meta.setdefault(self.taxonomy[c], []).append(c)

    # -- public -------------------------------------------------------------------------------
    def generate(
        self, caption: str, category: str, key: str | None = None, k: int | None = None, exclude: Iterable[str] = ()
    ) -> list[NegativeCaption]:
        """``k`` (default ``self.k``) negatives of ``caption``; none equal to the caption, to each
        other or to a text in ``exclude``."""
        k = self.k if k is None else k
        rng = stable_rng(self.seed, category, caption, key)
        taken = {normalize(caption)} | {normalize(t) for t in exclude}
        n_swap = {"swap": k, "attribute": 0, "mixed": math.ceil(k / 2)}[self.strategy]
        fits = self.fits if self.fits is not None and self.fits(caption) else None
        swaps = self._unique(self._swaps(caption, category, rng), taken, fits)
        attributes = self._unique(self._attributes(caption, category, rng), taken, fits)
        first, second = (swaps, attributes) if n_swap else (attributes, swaps)
        n_first = n_swap if n_swap else k
        out = _take(first, n_first)
        out += _take(second, k - len(out))
        out += _take(first, k - len(out))  # the second kind ran short: fill from the first
        return out

    def siblings(self, category: str) -> list[str]:
        """Same-meta-category siblings from the taxonomy (empty without one)."""
        meta = self.taxonomy.get(category)
        return [c for c in self._by_meta.get(meta, []) if c != category] if meta else []

    # -- internals ----------------------------------------------------------------------------
    def _swap_targets(self, category: str, rng: random.Random) -> Iterator[str]:
        """Taxonomy siblings (random order), then the hardest ``pool_size`` ranked siblings (random
        order), then the remaining ranked categories (hardest first)."""
        seen = {category}
        siblings = self.siblings(category)
        rng.shuffle(siblings)
        ranked = [c for c in self.sibling_fn(category) if c != category and c not in siblings]
        pool, rest = ranked[: self.pool_size], ranked[self.pool_size :]
        rng.shuffle(pool)
        for target in [*siblings, *pool, *rest]:
            if target not in seen:
                seen.add(target)
                yield target

    def _swaps(self, caption: str, category: str, rng: random.Random) -> Iterator[NegativeCaption]:
        for target in self._swap_targets(category, rng):
            text, n = replace_mentions(caption, category, target)
            if n == 0:  # the caption never names its class: state the wrong one up front
                name = display_name(target)
                text = f"This is {indefinite_article(name)} {name}. {caption}".strip()
            yield NegativeCaption(text, "swap", swapped_to=target)

    def _attributes(self, caption: str, category: str, rng: random.Random) -> Iterator[NegativeCaption]:
        protected = [m.span("name") for m in mention_pattern(category).finditer(caption)]
        for text, slot, _ in self.lexicon.perturb(caption, rng, protected, limit=max(4 * self.k, 8)):
            yield NegativeCaption(text, "attribute", attribute=slot.kind)

    @staticmethod
    def _unique(
        items: Iterator[NegativeCaption], taken: set[str], fits: Callable[[str], bool] | None
    ) -> Iterator[NegativeCaption]:
        """Drop items whose text is already taken (``taken`` is shared, so both kinds stay
        distinct) or, with ``fits``, too long for the text encoder."""
        for item in items:
            norm = normalize(item.text)
            if norm not in taken and (fits is None or fits(item.text)):
                taken.add(norm)
                yield item


def _take(items: Iterator[NegativeCaption], n: int) -> list[NegativeCaption]:
    out: list[NegativeCaption] = []
    while len(out) < n:
        item = next(items, None)
        if item is None:
            break
        out.append(item)
    return out
