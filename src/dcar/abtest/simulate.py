"""Synthetic users for the online A/B analysis: does it find a known difference, and does it stay
quiet between two identical arms?

Each simulated user has a click propensity c ~ Beta(2, 3) (users differ, so a user's impressions
are correlated) and 1 + Poisson(4) searches. A search draws a query from a pool; each arm ranks
the query's relevant item at a given rank (0 = first). The user examines position r with
probability 1 / (1 + r) (a position-based click model) and clicks the relevant item when examined
with probability c. Events go through :func:`dcar.abtest.online.analyse`, the code of `dcar ab report`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dcar.abtest.online import analyse, assign, team_draft

LIST_K = 10


@dataclass
class Arms:
    """Rank of each pool query's relevant item under arm A and arm B."""

    rank_a: np.ndarray
    rank_b: np.ndarray


def examine(rank: np.ndarray) -> np.ndarray:
    return np.where(rank < LIST_K, 1.0 / (1.0 + rank), 0.0)


def true_ctr_difference(arms: Arms, mean_c: float = 0.4) -> float:
    """Expected B - A click-through rate of the split design (relevant clicks only)."""
    return float(mean_c * (examine(arms.rank_b).mean() - examine(arms.rank_a).mean()))


def simulate(arms: Arms, users: int, mode: str, rng: np.random.Generator, salt: str = "sim") -> list[dict]:
    """The event log of one experiment with ``users`` synthetic users."""
    c = rng.beta(2, 3, users)
    sessions = 1 + rng.poisson(4, users)
    user = np.repeat(np.arange(users), sessions)  # one row per impression
    query = rng.integers(0, len(arms.rank_a), len(user))
    units = [f"u{u}" for u in range(users)]
    events: list[dict] = []
    if mode == "split":
        arm = np.array([assign(unit, salt) for unit in units])[user]
        position = np.where(arm == "b", arms.rank_b[query], arms.rank_a[query])
        for i in range(len(user)):
            events.append({"type": "impression", "id": str(i), "unit": units[user[i]], "mode": mode, "arm": str(arm[i])})
    else:
        position = np.empty(len(user), dtype=np.int64)
        for i in range(len(user)):
            q = int(query[i])
            items, teams = team_draft(_ranking(q, int(arms.rank_a[q])), _ranking(q, int(arms.rank_b[q])), LIST_K, str(i))
            position[i] = items.index(f"rel{q}") if f"rel{q}" in items else LIST_K
            events.append({"type": "impression", "id": str(i), "unit": units[user[i]], "mode": mode, "arm": "ab",
                           "items": items, "teams": teams})
    clicked = (position < LIST_K) & (rng.random(len(user)) < examine(position)) & (rng.random(len(user)) < c[user])
    for i in np.nonzero(clicked)[0]:
        events.append({"type": "click", "impression": str(i), "item": f"rel{query[i]}", "position": int(position[i])})
    return events


def _ranking(q: int, rank: int) -> list[str]:
    """A top-10 list with the relevant item at ``rank`` and the same fillers, in the same order,
    in both arms (so interleaving differs only where the relevant item does)."""
    fillers = [f"d{q}_{j}" for j in range(LIST_K)]
    if rank < LIST_K:
        fillers.insert(rank, f"rel{q}")
    return fillers[:LIST_K]


def rejection_rate(arms: Arms, users: int, mode: str, reps: int, seed: int = 0, alpha: float = 0.05,
                   truth: float | None = None) -> dict:
    """Share of ``reps`` experiments with p < alpha, and how often the interval covers ``truth``."""
    rng = np.random.default_rng(seed)
    rejected, covered = 0, 0
    diffs = []
    for rep in range(reps):
        r = analyse(simulate(arms, users, mode, rng, salt=f"rep{rep}"))
        rejected += r["p_value"] < alpha
        diffs.append(r["diff"])
        if truth is not None:
            covered += r["ci"][0] <= truth <= r["ci"][1]
    out = {"mode": mode, "users": users, "reps": reps, "alpha": alpha, "rejection_rate": rejected / reps,
           "mean_diff": float(np.mean(diffs))}
    if truth is not None:
        out.update({"truth": truth, "ci_coverage": covered / reps})
    return out
