"""Online A/B: sticky assignment, team-draft interleaving, the event log, the analysis, simulation."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from cli_helpers import run_cli
from dcar.abtest.online import EventLog, analyse, assign, read_events, team_draft
from dcar.abtest.simulate import Arms, rejection_rate, simulate, true_ctr_difference
from dcar.errors import DcarError


def test_assignment_is_sticky_balanced_and_salted():
    units = [f"user-{i}" for i in range(20_000)]
    arms = [assign(u, "exp1") for u in units]
    assert arms == [assign(u, "exp1") for u in units]
    assert abs(arms.count("b") / len(arms) - 0.5) < 0.015
    other = [assign(u, "exp2") for u in units]
    assert 0.45 < np.mean([a != b for a, b in zip(arms, other)]) < 0.55  # a new salt reshuffles
    assert abs([assign(u, "exp1", 0.1) for u in units].count("b") / len(units) - 0.1) < 0.01


def test_team_draft_interleaving():
    a, b = ["a1", "a2", "a3", "s"], ["b1", "s", "b2", "b3"]
    merged, teams = team_draft(a, b, 6, "imp-1")
    assert (merged, teams) == team_draft(a, b, 6, "imp-1")  # the same page on reload
    assert len(merged) == len(set(merged)) == 6
    assert abs(teams.count("a") - teams.count("b")) <= 1
    # each team's items appear in its own ranking's order
    for team, source in (("a", a), ("b", b)):
        picked = [m for m, t in zip(merged, teams) if t == team]
        assert picked == sorted(picked, key=source.index)
    # over many impressions each team leads half the time
    firsts = [team_draft(a, b, 2, f"imp-{i}")[1][0] for i in range(2000)]
    assert 0.45 < firsts.count("a") / 2000 < 0.55
    same, teams_same = team_draft(a, a, 4, "x")
    assert same == a


def test_event_log_concurrent_appends_and_torn_line(tmp_path):
    log = EventLog(tmp_path / "ab" / "events.jsonl", durable=False)

    def write(t: int) -> None:
        for i in range(200):
            log.append({"type": "click", "impression": f"{t}-{i}", "position": 0, "pad": "x" * 500})

    threads = [threading.Thread(target=write, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    with open(tmp_path / "ab" / "events.jsonl", "ab") as f:
        f.write(b'{"type": "click", "impr')  # a crash mid-line
    events, bad = read_events(tmp_path / "ab" / "events.jsonl")
    assert len(events) == 800 and bad == 1
    assert len({e["impression"] for e in events}) == 800


def _split_log(clicks_a: list[list[int]], clicks_b: list[list[int]]) -> list[dict]:
    """Users given as lists of per-impression click flags, arm A then arm B."""
    events, n = [], 0
    for arm, users in (("a", clicks_a), ("b", clicks_b)):
        for u, flags in enumerate(users):
            for f in flags:
                events.append({"type": "impression", "id": str(n), "unit": f"{arm}{u}", "mode": "split", "arm": arm})
                if f:
                    events.append({"type": "click", "impression": str(n), "position": 0})
                n += 1
    return events


def test_split_analysis_known_answer():
    a = [[1, 0], [0, 0], [1, 1], [0, 1]]  # 4 / 8
    b = [[1, 1], [1, 0], [1, 1, 1, 1]]  # 7 / 8
    r = analyse(_split_log(a, b))
    assert r["arms"]["a"]["ctr"] == pytest.approx(0.5) and r["arms"]["b"]["ctr"] == pytest.approx(7 / 8)
    assert r["diff"] == pytest.approx(0.375) and r["ci"][0] < 0.375 < r["ci"][1]
    # the delta-method variance of a ratio with equal impressions per user is the plain variance
    # of the users' rates over users: arm A rates 0.5, 0, 1, 0.5
    assert r["arms"]["a"]["var"] == pytest.approx(np.var([0.5, 0, 1, 0.5], ddof=1) / 4)


def test_analysis_refusals():
    with pytest.raises(DcarError, match="no impressions"):
        analyse([{"type": "click", "impression": "1"}])
    mixed = _split_log([[1], [0]], [[1], [1]]) + [{"type": "impression", "id": "x", "unit": "u", "mode": "interleave"}]
    with pytest.raises(DcarError, match="mixes"):
        analyse(mixed)


def test_false_positive_rate_between_identical_arms_is_nominal():
    # 300 simulated experiments between identical arms: p < 0.05 in about 5% of them
    # (binomial sd 1.3 points); the interval must not be too narrow (the user-level variance).
    rng = np.random.default_rng(0)
    ranks = rng.geometric(0.4, 300) - 1
    r = rejection_rate(Arms(ranks, ranks.copy()), users=300, mode="split", reps=300, seed=1)
    assert 0.015 <= r["rejection_rate"] <= 0.09


def test_a_large_known_difference_is_found_both_ways():
    rng = np.random.default_rng(2)
    ranks = rng.geometric(0.3, 300) - 1
    better = np.zeros_like(ranks)  # B always puts the relevant item first
    arms = Arms(ranks, better)
    split = analyse(simulate(arms, 400, "split", rng))
    truth = true_ctr_difference(arms)
    assert split["p_value"] < 1e-3 and split["ci"][0] <= truth <= split["ci"][1]
    inter = analyse(simulate(arms, 200, "interleave", rng))
    assert inter["p_value"] < 1e-3 and inter["diff"] > 0 and inter["wins"]["b"] > 3 * inter["wins"]["a"]


def test_ab_report_cli(tmp_path, capsys):
    log = tmp_path / "events.jsonl"
    log.write_text("".join(json.dumps(e) + "\n" for e in _split_log([[1, 0], [0, 0], [1, 1]], [[1, 1], [1, 0], [0, 1]])))
    code, out, err = run_cli(["ab", "report", str(log), "--json"], capsys)
    assert code == 0, err
    r = json.loads(out)
    assert r["diff"] == pytest.approx(4 / 6 - 3 / 6) and r["unreadable_lines"] == 0
    code, out, err = run_cli(["ab", "report", str(tmp_path / "none.jsonl")], capsys)
    assert code == 2 and "event log not found" in err
