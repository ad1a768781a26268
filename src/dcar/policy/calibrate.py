"""Thresholds with a finite-sample precision guarantee: Learn-then-Test with a binomial test.

A query's top-1 is *accepted* when its score is at least ``lambda_hi``. We want the precision of
accepted matches, P(right | score >= lambda), to be at least the target, with probability at
least ``confidence`` over the draw of the calibration set (Angelopoulos et al., "Learn then Test",
2021). For each threshold on a fixed grid the null hypothesis "precision(lambda) < target" is
tested with the exact binomial tail: of the n(lambda) calibration queries at or above lambda,
k(lambda) are right; p(lambda) = P[Binomial(n, target) >= k]. Thresholds are tested from the
strictest down (fixed-sequence testing, which needs no multiplicity correction) and the walk stops
at the first p-value >= delta = 1 - confidence; lambda_hi is the last threshold that passed.

A single walk from the strictest threshold would stop at once: the first thresholds accept a
handful of queries, too few for any test to pass. So walks start at the thresholds that first
accept 5%, 15% and 40% of the queries (at least :func:`min_sample_size`), each at delta / 3
(Bonferroni over the walks), and lambda_hi is the lowest threshold any walk reaches. The starts
are chosen from the scores alone, never the labels. When two scores are tried (``auto``), each
is tested at delta / 2 as well, so the guarantee holds for whichever one is kept.

Below lambda_hi, the review band [lambda_lo, lambda_hi) takes the next highest-scoring queries, at
most ``max_review`` of them; the rest is rejected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import binom

from dcar.errors import DcarError
from dcar.evaluation.topk import SCORES

# Fixed before any data is seen: cosine similarities lie in [-1, 1], margins in [0, 2].
GRID = np.round(np.linspace(2.0, -1.0, 300001), 6)  # strictest first, steps of 1e-5
# Where the fixed-sequence walks start: the first threshold accepting this share of the queries.
# One start at the very top would stop at the first unlucky handful of strict thresholds.
START_SHARES = (0.05, 0.15, 0.4)


def min_sample_size(target: float, delta: float) -> int:
    """Fewest right answers that could show precision >= target at level delta: target**n < delta."""
    return math.floor(math.log(delta) / math.log(target)) + 1


@dataclass
class Threshold:
    """The outcome of the test for one score."""

    score: str
    delta: float
    lambda_hi: float | None  # None: no threshold meets the target at this confidence
    n_accepted: int = 0
    right_accepted: int = 0
    curve: dict = field(default_factory=dict)  # per grid point: n, k, p-value (for the chart)

    @property
    def coverage_count(self) -> int:
        return self.n_accepted


def counts_at(scores: np.ndarray, correct: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """n(lambda) and k(lambda): queries with score >= lambda, and how many of them are right."""
    order = np.argsort(-scores, kind="stable")
    s_desc = scores[order]
    right_cum = np.concatenate([[0], np.cumsum(correct[order])])
    n = np.searchsorted(-s_desc, -grid, side="right")  # count of s >= lambda
    return n, right_cum[n]


def ltt_threshold(scores: np.ndarray, correct: np.ndarray, target: float, delta: float, score: str = "") -> Threshold:
    """Learn-then-Test over :data:`GRID`: fixed-sequence walks from several starts, each at
    delta / len(START_SHARES) (see module docstring); the lowest threshold any walk reaches."""
    if not np.all(np.isfinite(scores)):
        raise DcarError("calibration scores hold a non-finite value: the features are broken")
    n, k = counts_at(scores, correct.astype(np.int64), GRID)
    level = delta / len(START_SHARES)
    need = min_sample_size(target, level)
    pvalues = np.ones(len(GRID))
    testable = n >= need
    # P[Bin(n, target) >= k], computed once per distinct count (n only changes at a score).
    firsts = np.unique(n[testable], return_index=True)[1] + int(np.argmax(testable))
    where = np.searchsorted(n[firsts], n[testable])
    pvalues[testable] = binom.sf(k[firsts] - 1, n[firsts], target)[where]
    chosen = None
    for share in START_SHARES:
        start_n = max(need, int(np.ceil(share * len(scores))))
        if n[-1] < start_n:
            continue
        start = int(np.argmax(n >= start_n))
        failed = np.nonzero(pvalues[start:] >= level)[0]
        stop = start + (int(failed[0]) if len(failed) else len(GRID) - start)
        if stop > start and (chosen is None or stop - 1 > chosen):
            chosen = stop - 1
    curve = {"lambda": GRID, "n": n, "k": k, "p": pvalues}
    if chosen is None:
        return Threshold(score, delta, None, curve=curve)
    # The lowest passing grid point may lie far below the next calibration score: take the
    # highest grid point that accepts the same queries.
    chosen = int(np.argmax(n == n[chosen]))
    return Threshold(score, delta, float(GRID[chosen]), int(n[chosen]), int(k[chosen]), curve)


def review_floor(scores: np.ndarray, lambda_hi: float | None, max_review: float) -> float | None:
    """lambda_lo: the review band [lambda_lo, lambda_hi) holds the highest-scoring queries below
    lambda_hi, at most ``max_review`` of all. Of the grid points giving the same band, the highest
    (the band reaches down to its lowest member). lambda_hi itself when the band is empty."""
    hi = np.inf if lambda_hi is None else lambda_hi
    below = GRID[GRID < hi]
    n_hi = int(np.sum(scores >= hi))
    n, _ = counts_at(scores, np.zeros(len(scores), dtype=np.int64), below)
    in_band = n - n_hi
    fits = np.nonzero(in_band <= max_review * len(scores))[0]
    if not len(fits) or in_band[fits[-1]] == 0:
        return lambda_hi
    return float(below[int(np.argmax(in_band == in_band[fits[-1]]))])


def score_kinds(score: str) -> list[str]:
    if score != "auto" and score not in SCORES:
        raise DcarError(f"unknown score {score!r}: expected auto, {', '.join(SCORES)}")
    return list(SCORES) if score == "auto" else [score]


def check_sample_size(n_queries: int, target: float, confidence: float, score: str = "auto") -> None:
    """Refuse (one line) a set too small to show the target even if every match were right."""
    delta = (1 - confidence) / len(score_kinds(score)) / len(START_SHARES)
    need = min_sample_size(target, delta)
    if n_queries < need:
        raise DcarError(
            f"{n_queries} labelled queries cannot show precision {target} at confidence {confidence}: "
            f"even if all were right it takes at least {need}"
        )


@dataclass
class Fit:
    """What ``dcar calibrate`` decides, with the numbers to report."""

    score: str
    lambda_hi: float | None
    lambda_lo: float | None
    tried: dict[str, Threshold]
    stats: dict


def band_stats(scores: np.ndarray, correct: np.ndarray, hi: float | None, lo: float | None) -> dict:
    """Shares and empirical precision of the accept / review / reject bands."""
    hi_v = np.inf if hi is None else hi
    lo_v = hi_v if lo is None else lo
    bands = {"accept": scores >= hi_v, "review": (scores >= lo_v) & (scores < hi_v), "reject": scores < lo_v}
    out: dict = {}
    for name, mask in bands.items():
        m = int(mask.sum())
        out[name] = {"share": m / len(scores), "count": m, "top1_right": (float(correct[mask].mean()) if m else None)}
    return out


def fit_thresholds(
    scores: dict[str, np.ndarray],
    correct: np.ndarray,
    target: float,
    confidence: float,
    max_review: float,
    score: str = "auto",
) -> Fit:
    """Thresholds for one score, or for each of top1/margin at delta/2 keeping the larger coverage."""
    if not 0 < target < 1 or not 0 < confidence < 1:
        raise DcarError("--target-precision and --confidence must lie strictly between 0 and 1")
    if not 0 <= max_review <= 1:
        raise DcarError("--max-review must lie in [0, 1]")
    kinds = score_kinds(score)
    delta = (1 - confidence) / len(kinds)
    check_sample_size(len(correct), target, confidence, score)
    tried = {k: ltt_threshold(scores[k], correct, target, delta, k) for k in kinds}
    # Larger coverage wins; on a tie the first listed (top1, the simpler score).
    best = max(kinds, key=lambda k: (tried[k].n_accepted, -kinds.index(k)))
    hi = tried[best].lambda_hi
    lo = review_floor(scores[best], hi, max_review)
    return Fit(best, hi, lo, tried, band_stats(scores[best], correct, hi, lo))
