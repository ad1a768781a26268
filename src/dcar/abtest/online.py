"""Online A/B between two retrieval arms: assignment, interleaving, the event log and its analysis.

Two designs:
- ``split``: each user (or session) is assigned to arm A or B by a salted hash of its id, so the
  same user always sees the same arm (sticky) and nothing has to be stored; the metric is the
  share of impressions with at least one click, compared between the arms.
- ``interleave``: every user sees one list merged from both arms by team-draft interleaving
  (Radlinski et al., 2008); each impression credits the arm whose items got more clicks.

Users, not impressions, are the independent units: a user's impressions are correlated, so the
variance of each ratio metric is estimated over users (delta method, as in Deng et al., "Applying
the delta method in metric analytics", 2018), which keeps the false-positive rate at its nominal
level (checked by simulation, :mod:`dcar.abtest.simulate`).

The event log is append-only JSON lines: ``impression`` (id, unit, mode, arm, items, teams),
``click`` (impression, item, position) and ``review`` (impression, decision). Each event is one
``write`` to a file opened with O_APPEND, so concurrent writers never interleave within a line;
a line torn by a crash is skipped and counted when the log is read.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from scipy.stats import norm

from dcar.errors import DcarError

ARMS = ("a", "b")
MODES = ("split", "interleave")


def assign(unit: str, salt: str, share_b: float = 0.5) -> str:
    """Sticky arm of a user or session id: the same id and salt always give the same arm."""
    digest = hashlib.sha256(f"{salt}\x00{unit}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0**64
    return "b" if u < share_b else "a"


def team_draft(list_a: Sequence[str], list_b: Sequence[str], k: int, seed: str) -> tuple[list[str], list[str]]:
    """Team-draft interleaving of two rankings: the merged top ``k`` and each item's team.

    In each round the team with fewer picks (a coin flip on a tie, seeded by ``seed`` so a page
    reload shows the same list) adds its highest-ranked item not yet shown.
    """
    rng = random.Random(seed)  # str seeds are hashed with SHA-512: the same seed, the same coin flips
    merged: list[str] = []
    teams: list[str] = []
    shown: set[str] = set()
    ia = ib = 0
    picks = {"a": 0, "b": 0}
    k = min(k, len(set(list_a) | set(list_b)))
    while len(merged) < k:
        a_first = picks["a"] < picks["b"] or (picks["a"] == picks["b"] and rng.random() < 0.5)
        order = ("a", "b") if a_first else ("b", "a")
        for team in order:
            source, pos = (list_a, ia) if team == "a" else (list_b, ib)
            while pos < len(source) and source[pos] in shown:
                pos += 1
            if team == "a":
                ia = pos
            else:
                ib = pos
            if pos < len(source):
                merged.append(source[pos])
                teams.append(team)
                shown.add(source[pos])
                picks[team] += 1
                break
        else:
            break  # both lists exhausted
    return merged, teams


class EventLog:
    """Append-only JSON-lines log, safe for threads and processes (one O_APPEND write per event)."""

    def __init__(self, path: str | Path, durable: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.durable = durable
        self._lock = threading.Lock()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def append(self, event: dict) -> None:
        line = (json.dumps({"t": round(time.time(), 3), **event}, ensure_ascii=False) + "\n").encode()
        with self._lock:
            os.write(self._fd, line)
            if self.durable:
                os.fsync(self._fd)

    def close(self) -> None:
        os.close(self._fd)


def read_events(path: str | Path) -> tuple[list[dict], int]:
    """The log's events and how many lines were unreadable (e.g. torn by a crash)."""
    from dcar.files import check_readable_file

    path = check_readable_file(path, "event log")  # never block on a pipe
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DcarError(f"{path}: cannot read ({err.strerror or err})") from None
    events, bad = [], 0
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        try:
            e = json.loads(line)
            if not isinstance(e, dict) or "type" not in e:
                raise ValueError
            events.append(e)
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deeply
            bad += 1
    return events, bad


def _ratio(s: np.ndarray, n: np.ndarray) -> tuple[float, float]:
    """Ratio sum(s)/sum(n) over users and its variance by the delta method."""
    k = len(n)
    if k < 2 or n.sum() == 0:
        return (float(s.sum() / n.sum()) if n.sum() else float("nan")), float("nan")
    ms, mn = s.mean(), n.mean()
    r = ms / mn
    cov = np.cov(s, n, ddof=1)
    var = (cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) / (k * mn * mn)
    return float(r), float(max(var, 0.0))


def _test(diff: float, var: float, confidence: float) -> dict:
    se = float(np.sqrt(var)) if np.isfinite(var) else float("nan")
    z = norm.ppf(0.5 + confidence / 2)
    p = float(2 * norm.sf(abs(diff) / se)) if se > 0 else (1.0 if diff == 0 else 0.0) if np.isfinite(se) else float("nan")
    return {"diff": diff, "se": se, "ci": [diff - z * se, diff + z * se], "p_value": p}


def analyse(events: Iterable[dict], confidence: float = 0.95) -> dict:
    """Difference B - A (split: click-through rate; interleave: preference) with interval and p-value."""
    impressions: dict[str, dict] = {}
    clicks: dict[str, list[dict]] = defaultdict(list)
    reviews: dict[str, list[str]] = defaultdict(list)
    for e in events:
        if e["type"] == "impression":
            impressions[str(e["id"])] = e
        elif e["type"] == "click":
            clicks[str(e["impression"])].append(e)
        elif e["type"] == "review":
            reviews[str(e["impression"])].append(str(e.get("decision")))
    if not impressions:
        raise DcarError("the log holds no impressions")
    modes = {imp.get("mode") for imp in impressions.values()}
    if len(modes) != 1 or not modes <= set(MODES):
        raise DcarError(f"the log mixes or lacks modes ({sorted(map(str, modes))}): report one experiment at a time")
    mode = modes.pop()
    orphan = sum(len(c) for i, c in clicks.items() if i not in impressions)
    out = {"mode": mode, "impressions": len(impressions), "clicks": sum(len(c) for c in clicks.values()) - orphan,
           "orphan_clicks": orphan, "confidence": confidence}
    if mode == "split":
        out.update(_split(impressions, clicks, confidence))
    else:
        out.update(_interleave(impressions, clicks, confidence))
    decided = [d for i, ds in reviews.items() if i in impressions for d in ds]
    out["review_outcomes"] = {d: decided.count(d) for d in sorted(set(decided))}
    return out


def _per_unit(impressions: dict[str, dict], value, arms: Sequence[str] = ARMS) -> dict[str, np.ndarray]:
    """Per arm: [users, 2] array of (sum of value, impressions); one group when ``arms`` has one name."""
    acc: dict[str, dict[str, list[float]]] = {arm: defaultdict(lambda: [0.0, 0.0]) for arm in arms}
    for imp_id, imp in impressions.items():
        arm = arms[0] if len(arms) == 1 else imp.get("arm")
        if arm not in acc:
            raise DcarError(f"impression {imp_id} has arm {arm!r}, expected a or b")
        cell = acc[arm][str(imp["unit"])]
        cell[0] += value(imp_id, imp)
        cell[1] += 1
    return {arm: np.array(list(d.values()), dtype=np.float64).reshape(-1, 2) for arm, d in acc.items()}


def _split(impressions, clicks, confidence) -> dict:
    units = _per_unit(impressions, lambda i, imp: float(bool(clicks.get(i))))
    arms = {}
    for arm, m in units.items():
        r, v = _ratio(m[:, 0], m[:, 1])
        arms[arm] = {"users": len(m), "impressions": int(m[:, 1].sum()), "ctr": r, "var": v}
    if min(a["users"] for a in arms.values()) < 2:
        raise DcarError("each arm needs impressions from at least 2 users")
    test = _test(arms["b"]["ctr"] - arms["a"]["ctr"], arms["a"]["var"] + arms["b"]["var"], confidence)
    return {"metric": "ctr (share of impressions with a click)", "arms": arms, **test}


def _interleave(impressions, clicks, confidence) -> dict:
    def preference(i: str, imp: dict) -> float:
        teams = imp.get("teams") or []
        won = {"a": 0, "b": 0}
        for c in clicks.get(i, []):
            pos = c.get("position")
            if isinstance(pos, int) and 0 <= pos < len(teams):
                won[teams[pos]] += 1
        return float(np.sign(won["b"] - won["a"]))

    m = _per_unit(impressions, preference, arms=("ab",))["ab"]
    r, v = _ratio(m[:, 0], m[:, 1])
    wins_b = sum(1 for i, imp in impressions.items() if preference(i, imp) > 0)
    wins_a = sum(1 for i, imp in impressions.items() if preference(i, imp) < 0)
    return {"metric": "preference: (impressions won by B - won by A) / impressions", "users": len(m),
            "wins": {"a": wins_a, "b": wins_b, "tie": len(impressions) - wins_a - wins_b},
            **_test(r, v, confidence)}
