"""Offline A/B: per-query records from `dcar eval`, paired statistics and TREC files in `dcar compare`."""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pytest
from scipy.stats import binomtest

from cli_helpers import run_cli
from dcar.abtest.offline import paired_statistics, read_per_query
from dcar.errors import DcarError


def _records(ranks: list[int], cats: list[str]) -> dict:
    return {("d", "i2t", f"q{i}"): {"dataset": "d", "direction": "i2t", "query": f"q{i}", "category": c, "rank": r}
            for i, (r, c) in enumerate(zip(ranks, cats))}


def test_mcnemar_counts_discordant_pairs_and_matches_binomtest():
    # A right on queries 0-9, B right on 5-24: B-only 15, A-only 5.
    n = 60
    a = [0 if i < 10 else 3 for i in range(n)]
    b = [0 if 5 <= i < 25 else 3 for i in range(n)]
    cats = ["x" if i % 2 else "y" for i in range(n)]
    (row,) = paired_statistics(_records(a, cats), _records(b, cats), n_resamples=2000)
    m = row["mcnemar_r1"]
    assert (m["only_a"], m["only_b"]) == (5, 15)
    assert m["p_value"] == pytest.approx(binomtest(15, 20, 0.5).pvalue)
    r1 = row["recall"]["R@1"]
    assert r1["diff"] == pytest.approx(100 * (20 - 10) / n)
    assert r1["ci"][0] < r1["diff"] < r1["ci"][1]
    assert row["recall"]["R@5"]["diff"] == 0 and row["recall"]["R@5"]["ci"] == [0.0, 0.0]
    cats_out = row["categories"]
    assert sum(v["wins"] for v in cats_out.values()) == 15 and sum(v["losses"] for v in cats_out.values()) == 5


def test_bootstrap_interval_covers_the_true_difference_at_about_95_percent():
    # Two runs with true R@1 0.5 and 0.6 (independent hits); the 95% interval must cover +10 points
    # in about 95% of 200 repetitions (binomial sd 1.5 points at 95%).
    rng = np.random.default_rng(0)
    covered = 0
    for rep in range(200):
        a = (rng.random(400) > 0.5).astype(int)
        b = (rng.random(400) > 0.6).astype(int)
        (row,) = paired_statistics(_records(list(a), ["c"] * 400), _records(list(b), ["c"] * 400), n_resamples=999, seed=rep)
        lo, hi = row["recall"]["R@1"]["ci"]
        covered += lo <= 10.0 <= hi
    assert 0.90 <= covered / 200 <= 0.99


def test_runs_on_different_queries_are_refused():
    with pytest.raises(DcarError, match="same queries"):
        paired_statistics(_records([0, 1], ["c", "c"]), _records([0], ["c"]))


def _trec_recall(run_file, qrels_file, k: int) -> dict[str, float]:
    relevant = defaultdict(set)
    for line in qrels_file.read_text().splitlines():
        q, _, doc, rel = line.split()
        relevant[q].add(doc)
    ranked = defaultdict(list)
    for line in run_file.read_text().splitlines():
        q, _, doc, rank, _score, _tag = line.split()
        ranked[q].append((int(rank), doc))
    hits = defaultdict(list)
    for q, docs in ranked.items():
        top = [d for _, d in sorted(docs)][:k]
        hits[q.split("/")[1]].append(bool(set(top) & relevant[q]))
    return {d: 100 * np.mean(h) for d, h in hits.items()}


def test_eval_per_query_and_paired_compare_end_to_end(world_val, tiny_spec, tmp_path, capsys):
    BUILTIN = "builtin:synthetic-small"

    fdrd, images = world_val
    runs = {}
    for name, model in (("zeroshot", BUILTIN), ("random", tiny_spec)):
        out = tmp_path / name / "results.json"
        pq = tmp_path / name / "per_query.jsonl"
        code, _, err = run_cli(["eval", "--model", model, "--fdrd", str(fdrd), "--images", str(images), "--out", str(out),
                                "--per-query", str(pq), "--workers", "0", "--device", "cpu"], capsys)
        assert code == 0, err
        res = json.loads(out.read_text())
        records = read_per_query(pq)
        assert res["per_query"] == str(pq.resolve())
        ds = next(iter(res["datasets"].values()))
        assert len(records) == ds["n_images"] + ds["n_captions"]
        for d in ("i2t", "t2i"):
            ranks = np.array([r["rank"] for k, r in records.items() if k[1] == d])
            for k in (1, 5, 10):  # per-query ranks reproduce the reported recall exactly
                assert 100 * np.mean(ranks < k) == pytest.approx(ds[d][f"R@{k}"])
        runs[name] = (out, res)
    cmp_dir = tmp_path / "cmp"
    code, stdout, err = run_cli(["compare", str(runs["zeroshot"][0]), str(runs["random"][0]), "--out", str(cmp_dir)], capsys)
    assert code == 0, err
    paired = json.loads((cmp_dir / "paired.json").read_text())["comparisons"][0]
    for row in paired["rows"]:
        d = row["direction"]
        a, b = runs["zeroshot"][1], runs["random"][1]
        ds_a, ds_b = next(iter(a["datasets"].values())), next(iter(b["datasets"].values()))
        assert row["recall"]["R@1"]["diff"] == pytest.approx(ds_b[d]["R@1"] - ds_a[d]["R@1"])
        assert row["mcnemar_r1"]["p_value"] < 1e-6  # a random model against a trained one
        assert row["recall"]["R@1"]["ci"][1] < 0
    # TREC files: the top-10 lists reproduce R@1 and R@5 of the zero-shot run (no ties here).
    ds_a = next(iter(runs["zeroshot"][1]["datasets"].values()))
    for k in (1, 5):
        got = _trec_recall(cmp_dir / "trec" / "run-0.txt", cmp_dir / "trec" / "qrels.txt", k)
        for d in ("i2t", "t2i"):
            assert got[d] == pytest.approx(ds_a[d][f"R@{k}"], abs=1.0)
    assert "McNemar" in stdout


def test_bad_per_query_file_is_a_one_line_error(tmp_path):
    p = tmp_path / "pq.jsonl"
    p.write_text('{"dataset": "d", "direction": "i2t", "query": "q", "rank": -1}\n')
    with pytest.raises(DcarError, match="line 1 is not a per-query record"):
        read_per_query(p)
