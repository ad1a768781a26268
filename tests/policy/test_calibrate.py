"""Learn-then-Test thresholds: the precision guarantee, refusals, bands and the policy file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dcar.errors import DcarError
from dcar.policy.calibrate import GRID, fit_thresholds, ltt_threshold, min_sample_size, review_floor
from dcar.policy.policy import Policy, load_policy


def _draw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Score ~ U(0, 1); P(right | score) = 0.97 above 0.5 and 0.3 below, so precision(lambda)
    = 0.97 for lambda >= 0.5 and falls to 0.9 at lambda* = 0.265 / 0.6 below it."""
    s = rng.random(n)
    return s, rng.random(n) < np.where(s >= 0.5, 0.97, 0.3)


def test_guarantee_holds_over_repeated_calibration_draws():
    # The chosen lambda_hi must be >= lambda* in at least `confidence` of the draws (Monte Carlo
    # error of 300 draws: sd 0.017 at 0.9).
    rng = np.random.default_rng(0)
    target, confidence, boundary = 0.9, 0.9, 0.265 / 0.6
    chosen = []
    for _ in range(300):
        s, right = _draw(rng, 400)
        chosen.append(ltt_threshold(s, right, target, 1 - confidence).lambda_hi)
    chosen = np.array([np.inf if c is None else c for c in chosen])
    assert np.mean(chosen >= boundary) >= confidence - 0.03
    # ... and it is not vacuous: most draws accept at least the clean half.
    assert np.mean(chosen <= 0.5) > 0.8


def test_a_threshold_fails_when_precision_is_below_target_everywhere():
    rng = np.random.default_rng(1)
    s = rng.random(2000)
    right = rng.random(2000) < 0.7  # precision 0.7 whatever the score
    assert ltt_threshold(s, right, 0.9, 0.1).lambda_hi is None


def test_all_right_accepts_everything_at_the_lowest_score():
    s = np.linspace(0.1, 0.9, 200)
    t = ltt_threshold(s, np.ones(200, bool), 0.95, 0.1)
    assert t.n_accepted == 200 and t.lambda_hi <= 0.1 and t.lambda_hi > 0.1 - 2e-5


def test_min_sample_size_is_where_all_right_first_passes():
    need = min_sample_size(0.95, 0.1)
    assert 0.95**need < 0.1 <= 0.95 ** (need - 1)
    few = np.linspace(0.5, 0.6, need - 1)
    assert ltt_threshold(few, np.ones(need - 1, bool), 0.95, 0.1).lambda_hi is None
    with pytest.raises(DcarError, match="cannot show precision"):
        fit_thresholds({"top1": few, "margin": few}, np.ones(need - 1, bool), 0.95, 0.9, 0.2)


def test_review_band_takes_at_most_max_review_just_below_accept():
    s = np.arange(100) / 100.0  # 0.00 ... 0.99
    lo = review_floor(s, 0.8, 0.1)
    band = (s >= lo) & (s < 0.8)
    assert band.sum() == 10 and s[band].min() == pytest.approx(0.7)
    assert review_floor(s, 0.8, 0.0) == 0.8  # no band
    assert review_floor(s, None, 1.0) <= 0.0  # nothing accepted: everything can be reviewed


def test_auto_keeps_the_score_with_larger_coverage_each_at_half_delta():
    rng = np.random.default_rng(2)
    good, right = _draw(rng, 1000)
    noise = rng.random(1000)  # carries no information about being right
    fit = fit_thresholds({"top1": noise, "margin": good}, right, 0.9, 0.9, 0.2)
    assert fit.score == "margin"
    assert all(t.delta == pytest.approx(0.05) for t in fit.tried.values())
    assert fit.tried["top1"].lambda_hi is None
    bands = fit.stats
    assert sum(b["share"] for b in bands.values()) == pytest.approx(1.0)
    assert bands["review"]["share"] <= 0.2


def test_grid_is_fixed_and_strictest_first():
    assert GRID[0] == 2.0 and GRID[-1] == -1.0 and np.all(np.diff(GRID) < 0)


def _policy(**kw) -> Policy:
    base = dict(task="i2t", score="margin", lambda_hi=0.5, lambda_lo=0.2, target_precision=0.9, confidence=0.9,
                max_review=0.2, model="m", checkpoint=None, encoder="e", data={}, sample_size=10, date="d")
    return Policy(**{**base, **kw})


def test_decisions_follow_the_bands():
    p = _policy()
    assert list(p.decide([0.6, 0.5, 0.3, 0.2, 0.1])) == ["accept", "accept", "review", "review", "reject"]
    assert list(_policy(lambda_hi=None, lambda_lo=0.2).decide([5.0, 0.1])) == ["review", "reject"]
    assert list(_policy(lambda_hi=None, lambda_lo=None).decide([5.0])) == ["reject"]


@pytest.mark.parametrize(
    "content, message",
    [
        ("{", "invalid JSON"),
        ('{"version": 1, "task": "i2t"}', "not a dcar policy file"),
        (None, "policy file not found"),
    ],
)
def test_bad_policy_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "p.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DcarError, match=message):
        load_policy(path)


def test_policy_round_trip_and_bad_thresholds(tmp_path):
    p = _policy()
    p.save(tmp_path / "p.json")
    assert load_policy(tmp_path / "p.json") == p
    raw = json.loads((tmp_path / "p.json").read_text())
    raw["lambda_lo"] = 0.9
    (tmp_path / "p.json").write_text(json.dumps(raw))
    with pytest.raises(DcarError, match="above lambda_hi"):
        load_policy(tmp_path / "p.json")
