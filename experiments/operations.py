"""Measurements of the operating rules (issue 13) on the built-in world; results in docs/operations/.

  python experiments/operations.py calibration --out runs/operations --docs docs/operations [--splits 200]
  python experiments/operations.py offline-ab  --demo DEMO_OUT --out runs/operations --docs docs/operations
  python experiments/operations.py online-ab   --docs docs/operations [--reps 1000]

calibration: a pool of labelled queries is matched once; then, over many random splits, half of
the queries calibrate a policy (`dcar calibrate`'s code path) and the other half measure the
realised precision of its accept band, its coverage and its review load.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from dcar.atomic import write_json_atomic, write_text_atomic

MODEL = "builtin:synthetic-small"


def _pool(out: Path, n: int, seed: int):
    from dcar.evaluation.evaluate import load_eval_dataset
    from dcar.world.export import materialise

    split = materialise("garden", "test", out / f"pool-{n}-{seed}", n=n, seed=seed)
    return load_eval_dataset(split.fdrd, split.images, "garden_pool")


def _settings(out: Path) -> dict[str, dict]:
    """Per setting: both scores and the correctness of every query's top-1."""
    from dcar.backbone import load_backbone
    from dcar.evaluation.embed import embed_images, embed_texts
    from dcar.evaluation.encoders import ZeroShotEncoder
    from dcar.evaluation.topk import rank_candidates

    encoder = ZeroShotEncoder(load_backbone(MODEL))
    ds = _pool(out, 4000, 7)
    entries = ds.entries
    feats = embed_images(encoder, [e.image for e in entries], num_workers=0, progress=False).features
    cats = np.array([e.category for e in entries])
    settings = {}
    # knn: a query image against a labelled catalog of 2,000 other images (what an index holds).
    q, c = slice(0, 2000), slice(2000, 4000)
    r = rank_candidates(feats[q], feats[c])
    settings["knn"] = {"ranked": r, "correct": cats[c][r.indices[:, 0]] == cats[q],
                       "what": "image -> nearest catalog image (2,000 items); right when its category is the query's"}
    # i2t: each of 2,000 images against the 125 captions of its own candidate list (16 lists).
    caps = embed_texts(encoder, [e.caption for e in entries[:2000]], progress=False)
    ranked_idx, ranked_sims, correct = [], [], []
    for g in range(0, 2000, 125):
        rr = rank_candidates(feats[g : g + 125], caps[g : g + 125])
        ranked_idx.append(rr.indices[:, :2])
        ranked_sims.append(rr.sims[:, :2])
        correct.append(rr.indices[:, 0] == np.arange(125))
    from dcar.evaluation.topk import Ranked

    settings["i2t"] = {"ranked": Ranked(np.concatenate(ranked_idx), np.concatenate(ranked_sims)),
                       "correct": np.concatenate(correct),
                       "what": "image -> caption among the 125 captions of its candidate list; right when it is its own"}
    return settings


def calibration(args) -> None:
    from dcar.policy.calibrate import band_stats, fit_thresholds

    targets = {"knn": 0.6, "i2t": 0.9}  # what this small model's top-1 can reach in its best 10-50%
    confidence, max_review = 0.9, 0.2
    rng = np.random.default_rng(0)
    results = {}
    for name, s in _settings(Path(args.out)).items():
        scores = {k: s["ranked"].score(k) for k in ("top1", "margin")}
        correct = s["correct"]
        n = len(correct)
        rows = []
        t0 = time.perf_counter()
        for _ in range(args.splits):
            perm = rng.permutation(n)
            cal, test = perm[: n // 2], perm[n // 2 :]
            fit = fit_thresholds({k: v[cal] for k, v in scores.items()}, correct[cal], targets[name], confidence, max_review)
            st = band_stats(scores[fit.score][test], correct[test], fit.lambda_hi, fit.lambda_lo)
            rows.append({"score": fit.score, "accepted": st["accept"]["count"], "coverage": st["accept"]["share"],
                         "review": st["review"]["share"], "precision": st["accept"]["top1_right"],
                         "coverage_other": {k: t.n_accepted / len(cal) for k, t in fit.tried.items()}})
        accepted = [r for r in rows if r["accepted"]]
        meets = [r["precision"] >= targets[name] for r in accepted]
        results[name] = {
            "what": s["what"], "queries": n, "calibration_size": n // 2, "test_size": n - n // 2,
            "top1_right_overall": float(correct.mean()), "target_precision": targets[name], "confidence": confidence,
            "max_review": max_review, "splits": args.splits,
            "splits_accepting_something": len(accepted),
            "share_meeting_target": float(np.mean(meets)) if meets else None,
            "share_meeting_target_counting_empty_as_met": (sum(meets) + len(rows) - len(accepted)) / len(rows),
            "precision_mean": float(np.mean([r["precision"] for r in accepted])) if accepted else None,
            "precision_p5": float(np.percentile([r["precision"] for r in accepted], 5)) if accepted else None,
            "coverage_mean": float(np.mean([r["coverage"] for r in rows])),
            "coverage_sd": float(np.std([r["coverage"] for r in rows])),
            "review_mean": float(np.mean([r["review"] for r in rows])),
            "score_chosen": {k: sum(r["score"] == k for r in rows) for k in ("top1", "margin")},
            "calibration_coverage_mean": {k: float(np.mean([r["coverage_other"][k] for r in rows])) for k in ("top1", "margin")},
            "seconds": time.perf_counter() - t0,
        }
        print(name, json.dumps(results[name], indent=1))
    docs = Path(args.docs)
    write_json_atomic(results, docs / "calibration.json")
    lines = ["| setting | queries (cal / test) | top-1 right | target | splits | splits meeting target | "
             "coverage (mean ± sd) | review load | test precision (mean, 5th pct) | score kept (top1 / margin) | "
             "calibration coverage top1 / margin |", "|" + "---|" * 10]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['calibration_size']} / {r['test_size']} | {100 * r['top1_right_overall']:.1f}% | "
            f"{r['target_precision']} @ {r['confidence']} | {r['splits']} ({r['splits_accepting_something']} accept) | "
            f"{100 * (r['share_meeting_target'] or 0):.1f}% | {100 * r['coverage_mean']:.1f}% ± {100 * r['coverage_sd']:.1f} | "
            f"{100 * r['review_mean']:.1f}% | {r['precision_mean'] or 0:.3f}, {r['precision_p5'] or 0:.3f} | "
            f"{r['score_chosen']['top1']} / {r['score_chosen']['margin']} | "
            f"{100 * r['calibration_coverage_mean']['top1']:.1f}% / {100 * r['calibration_coverage_mean']['margin']:.1f}% |")
    write_text_atomic("\n".join(lines) + "\n", docs / "calibration.md")
    print("\n".join(lines))


def _dcar(*args: str) -> None:
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "dcar", *args], check=True)


def offline_ab(args) -> None:
    """Zero-shot against the demo's trained DCAR on the demo's test split, query by query."""
    demo, out = Path(args.demo), Path(args.out) / "offline-ab"
    test = demo / "data" / "test"
    fdrd = next(test.glob("*_test.json"))
    for name, spec in (("zeroshot", ["--model", MODEL]), ("dcar", ["--checkpoint", str(demo / "runs" / "dcar")])):
        if not (out / name / "results.json").exists():
            _dcar("eval", *spec, "--fdrd", str(fdrd), "--images", str(test / "images"), "--out", str(out / name / "results.json"),
                  "--per-query", str(out / name / "per_query.jsonl"), "--workers", "0", "--device", "cpu")
    _dcar("compare", str(out / "zeroshot" / "results.json"), str(out / "dcar" / "results.json"), "--out", str(out / "compare"))
    docs = Path(args.docs)
    text = (out / "compare" / "paired.md").read_text()
    write_text_atomic(f"# Offline A/B: DCAR (trained by `dcar demo`) vs zero-shot, {fdrd.name}\n\n" + text, docs / "offline_ab.md")
    write_json_atomic(json.loads((out / "compare" / "paired.json").read_text()), docs / "offline_ab.json")
    print(text)


def online_ab(args) -> None:
    """Power and false-positive rate of `dcar ab report`'s analysis on synthetic users."""
    from dcar.abtest.offline import read_per_query
    from dcar.abtest.simulate import Arms, rejection_rate, true_ctr_difference

    per_query = Path(args.out) / "offline-ab"
    real = None
    if (per_query / "dcar" / "per_query.jsonl").exists():
        a, b = (read_per_query(per_query / n / "per_query.jsonl") for n in ("zeroshot", "dcar"))
        keys = sorted(k for k in a if k[1] == "t2i")
        real = Arms(np.array([a[k]["rank"] for k in keys]), np.array([b[k]["rank"] for k in keys]))
    rng = np.random.default_rng(0)
    base = real.rank_a if real is not None else rng.geometric(0.3, 640) - 1
    improved = base.copy()
    lift = rng.random(len(base)) < 0.1
    improved[lift] = 0  # B puts the relevant item first for a random 10% of the queries
    known = Arms(base, improved)
    same = Arms(base, base.copy())
    t0 = time.perf_counter()
    rows = [{**rejection_rate(same, 1000, "split", args.reps, seed=1), "arms": "identical"},
            {**rejection_rate(same, 500, "interleave", max(100, args.reps // 4), seed=2), "arms": "identical"}]
    truth = true_ctr_difference(known)
    for users in (250, 1000, 4000, 8000):
        rows.append({**rejection_rate(known, users, "split", max(100, args.reps // 4), seed=10 + users, truth=truth),
                     "arms": "known lift"})
    for users in (100, 250, 500, 1000):
        rows.append({**rejection_rate(known, users, "interleave", 100, seed=20 + users), "arms": "known lift"})
    if real is not None:
        rows.append({**rejection_rate(real, 2000, "split", 100, seed=3, truth=true_ctr_difference(real)), "arms": "zero-shot vs DCAR"})
        rows.append({**rejection_rate(real, 500, "interleave", 100, seed=4), "arms": "zero-shot vs DCAR"})
    for r in rows:
        print(r)
    docs = Path(args.docs)
    write_json_atomic({"rows": rows, "seconds": time.perf_counter() - t0, "known_lift": "B ranks the relevant item first "
                       "for a random 10% of queries", "true_ctr_difference_known_lift": truth}, docs / "online_ab.json")
    lines = ["| arms | design | users | experiments | p < 0.05 in | true B - A (ctr) | mean estimate | CI coverage |", "|" + "---|" * 8]
    for r in rows:
        truth_cell = "" if r.get("truth") is None else f"{r['truth']:+.4f}"
        cover_cell = "" if r.get("ci_coverage") is None else f"{100 * r['ci_coverage']:.1f}%"
        lines.append(f"| {r['arms']} | {r['mode']} | {r['users']} | {r['reps']} | {100 * r['rejection_rate']:.1f}% | "
                     f"{truth_cell} | {r['mean_diff']:+.4f} | {cover_cell} |")
    write_text_atomic("\n".join(lines) + "\n", docs / "online_ab.md")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("calibration")
    p.add_argument("--out", default="runs/operations")
    p.add_argument("--docs", default="docs/operations")
    p.add_argument("--splits", type=int, default=200)
    p.set_defaults(run=calibration)
    p = sub.add_parser("offline-ab")
    p.add_argument("--demo", required=True, help="A `dcar demo` output folder.")
    p.add_argument("--out", default="runs/operations")
    p.add_argument("--docs", default="docs/operations")
    p.set_defaults(run=offline_ab)
    p = sub.add_parser("online-ab")
    p.add_argument("--out", default="runs/operations", help="Where offline-ab left its per-query files (for real arms).")
    p.add_argument("--docs", default="docs/operations")
    p.add_argument("--reps", type=int, default=1000)
    p.set_defaults(run=online_ab)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
