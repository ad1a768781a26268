"""Offline A/B: two `dcar eval --per-query` runs on the same test set, compared query by query.

Both runs answer the same queries, so the comparison is paired: for each query and K, hit@K is
0 or 1 in each run. The difference in Recall@K gets a paired-bootstrap interval (queries
resampled together, scipy.stats.bootstrap), and R@1 an exact McNemar test: under "no difference"
the queries that only one run gets right split 50/50 between the runs (a binomial test on the
discordant pairs, scipy.stats.binomtest).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.stats import binomtest, bootstrap

from dcar.atomic import atomic_path
from dcar.errors import DcarError

KS = (1, 5, 10)
Key = tuple[str, str, str]  # (dataset, direction, query)


def write_per_query(records: list[dict], path: str | Path) -> None:
    """JSON lines, one record per query (see :func:`dcar.evaluation.evaluate.per_query_records`)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")


def read_per_query(path: str | Path) -> dict[Key, dict]:
    path = Path(path)
    out: dict[Key, dict] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (FileNotFoundError, IsADirectoryError):
        raise DcarError(f"{path}: per-query file not found (write it with `dcar eval --per-query`)") from None
    except UnicodeDecodeError as err:
        raise DcarError(f"{path}: not UTF-8 text ({err.reason})") from None
    for number, line in enumerate(lines, 1):
        try:
            r = json.loads(line)
            key = (str(r["dataset"]), str(r["direction"]), str(r["query"]))
            rank = r["rank"]
            if not isinstance(rank, int) or rank < 0 or r["direction"] not in ("i2t", "t2i"):
                raise ValueError("bad rank or direction")
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise DcarError(f"{path}: line {number} is not a per-query record ({err})") from None
        if key in out:
            raise DcarError(f"{path}: line {number} repeats query {key[2]!r} ({key[0]}, {key[1]})")
        out[key] = r
    if not out:
        raise DcarError(f"{path}: no per-query records")
    return out


def _interval(hit_a: np.ndarray, hit_b: np.ndarray, confidence: float, n_resamples: int, seed: int) -> tuple[float, float]:
    if np.array_equal(hit_a, hit_b):
        return 0.0, 0.0  # every resample gives 0: scipy would warn about a degenerate distribution
    res = bootstrap(
        (hit_a.astype(np.float64), hit_b.astype(np.float64)),
        lambda a, b, axis: 100.0 * (np.mean(b, axis=axis) - np.mean(a, axis=axis)),
        paired=True, vectorized=True, n_resamples=n_resamples, confidence_level=confidence,
        method="percentile", batch=1000, rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def mcnemar_exact(hit_a: np.ndarray, hit_b: np.ndarray) -> dict:
    """Discordant pairs and the exact two-sided McNemar p-value."""
    only_a, only_b = int(np.sum(hit_a & ~hit_b)), int(np.sum(hit_b & ~hit_a))
    p = binomtest(only_b, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return {"only_a": only_a, "only_b": only_b, "p_value": float(p)}


def paired_statistics(
    a: dict[Key, dict], b: dict[Key, dict], confidence: float = 0.95, n_resamples: int = 10_000, seed: int = 0
) -> list[dict]:
    """Per (dataset, direction): R@K of both runs, B - A with its interval, McNemar on R@1,
    per-category R@1 wins (B right, A wrong) and losses."""
    if set(a) != set(b):
        missing = sorted(set(a) ^ set(b))[0]
        raise DcarError(f"the two runs were not evaluated on the same queries (e.g. {missing[2]!r} in {missing[0]}, "
                        f"{missing[1]} is in only one): evaluate both on the same test set")
    groups: dict[tuple[str, str], list[Key]] = defaultdict(list)
    for key in sorted(a):
        groups[key[:2]].append(key)
    out = []
    for (dataset, direction), keys in groups.items():
        ra = np.array([a[k]["rank"] for k in keys])
        rb = np.array([b[k]["rank"] for k in keys])
        row = {"dataset": dataset, "direction": direction, "queries": len(keys), "recall": {}}
        for k in KS:
            ha, hb = ra < k, rb < k
            low, high = _interval(ha, hb, confidence, n_resamples, seed)
            row["recall"][f"R@{k}"] = {"a": 100.0 * ha.mean(), "b": 100.0 * hb.mean(),
                                       "diff": 100.0 * (hb.mean() - ha.mean()), "ci": [low, high]}
        row["mcnemar_r1"] = mcnemar_exact(ra < 1, rb < 1)
        row["categories"] = _per_category([a[k].get("category", "") for k in keys], ra < 1, rb < 1)
        out.append(row)
    return out


def _per_category(categories: list[str], hit_a: np.ndarray, hit_b: np.ndarray) -> dict[str, dict]:
    cats = np.array(categories, dtype=object)
    result = {}
    for c in sorted(set(categories)):
        m = cats == c
        result[c] = {"queries": int(m.sum()), "a_r1": 100.0 * hit_a[m].mean(), "b_r1": 100.0 * hit_b[m].mean(),
                     "wins": int(np.sum(hit_b[m] & ~hit_a[m])), "losses": int(np.sum(hit_a[m] & ~hit_b[m]))}
    return result


def trec_query_id(key: Key) -> str:
    return "/".join(key).replace(" ", "_")


def write_trec_run(records: dict[Key, dict], path: str | Path, tag: str) -> None:
    """TREC run format (``qid Q0 docid rank score tag``), which ranx and trec_eval read.
    Scores are the similarities, or descending ranks where a re-ranker left none."""
    tag = tag.replace(" ", "_") or "run"
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for key, r in sorted(records.items()):
            scores = r.get("scores") or [float(len(r["top"]) - i) for i in range(len(r["top"]))]
            for i, (doc, s) in enumerate(zip(r["top"], scores)):
                f.write(f"{trec_query_id(key)} Q0 {doc.replace(' ', '_')} {i + 1} {s:.6f} {tag}\n")


def write_trec_qrels(records: dict[Key, dict], path: str | Path) -> None:
    """TREC qrels (``qid 0 docid 1``): each query's relevant items."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for key, r in sorted(records.items()):
            for doc in r.get("relevant", []):
                f.write(f"{trec_query_id(key)} 0 {doc.replace(' ', '_')} 1\n")


def markdown(label_a: str, label_b: str, rows: list[dict]) -> str:
    lines = [f"**{label_b}** minus **{label_a}**, paired over the same queries (95% paired-bootstrap intervals, "
             "exact McNemar test on R@1)\n",
             "| dataset | direction | queries | K | A | B | B - A | 95% CI | McNemar p (R@1) |", "|" + "---|" * 9]
    for r in rows:
        for k, v in r["recall"].items():
            p = f"{r['mcnemar_r1']['p_value']:.3g} ({r['mcnemar_r1']['only_b']} vs {r['mcnemar_r1']['only_a']})" if k == "R@1" else ""
            lines.append(f"| {r['dataset']} | {r['direction']} | {r['queries']} | {k} | {v['a']:.2f} | {v['b']:.2f} | "
                         f"{v['diff']:+.2f} | [{v['ci'][0]:+.2f}, {v['ci'][1]:+.2f}] | {p} |")
    lines += ["", "Per category, R@1 (wins: B right and A wrong; losses: the reverse):", "",
              "| dataset | direction | category | queries | A R@1 | B R@1 | wins | losses |", "|" + "---|" * 8]
    for r in rows:
        for c, v in r["categories"].items():
            lines.append(f"| {r['dataset']} | {r['direction']} | {c} | {v['queries']} | {v['a_r1']:.1f} | {v['b_r1']:.1f} | "
                         f"{v['wins']} | {v['losses']} |")
    return "\n".join(lines) + "\n"
