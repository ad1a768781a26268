"""Reproduce the method comparison and the DCAR ablation on the built-in world.

  python experiments/run_experiments.py main      --seeds 0 1 2 --out runs/experiments
  python experiments/run_experiments.py ablation  --seeds 0 1 2 --out runs/experiments
  python experiments/run_experiments.py report    --out runs/experiments --docs docs/experiments
  python experiments/run_experiments.py val       --seeds 0 --out runs/experiments   (selection sweep)
  python experiments/run_experiments.py probe     --out runs/experiments --docs docs/experiments

World v2 (issue 9: four catalogs that differ in kind, `builtin:synthetic-v2`): add `--world 2`;
the defaults become OUT=runs/experiments-v2 and DOCS=docs/experiments/v2. Its baseline rows are the
runs experiments/calibrate_world.py trains (same folder, same budget), so calibrating the world
and the main table share them.

Every (domain, variant, seed) is one `dcar train` run plus one test evaluation, written under
OUT/DOMAIN/VARIANT/seedS/; finished runs are skipped, so a killed sweep resumes. Selection is on
each domain's val split only; the test split is evaluated once per run, after training.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from dcar.atomic import write_json_atomic

DOMAINS = ("garden", "wildlife", "hangar")
MODEL = "builtin:synthetic-small"
# world version -> its downstream catalogs, the built-in model pretrained on it, default folders
WORLDS = {
    1: {"domains": DOMAINS, "model": MODEL, "out": "runs/experiments", "docs": "docs/experiments"},
    2: {"domains": ("meadow", "pond", "airshow", "cabinet"), "model": "builtin:synthetic-v2",
        "out": "runs/experiments-v2", "docs": "docs/experiments/v2"},
}

# The same data, backbone and budget for every method; each keeps its reference optimiser and LR.
TRAIN = {"epochs": 8, "batch_size": 32, "num_workers": 0}

MAIN = {
    "zeroshot": ("zeroshot", {}),
    "coop": ("coop", {}),
    "clip-adapter": ("clip-adapter", {}),
    "maple": ("maple", {}),
    "dcar": ("dcar", {}),
    # The first selection, on garden's val split only: shallow text prompts (k=2), no image prompts.
    "dcar-text-k2": ("dcar", {"depth": 1, "image_prompts": False}),
    # The current selection, on all three val splits (docs/experiments/README.md): k=4.
    "dcar-text": ("dcar", {"depth": 1, "image_prompts": False, "n_ctx": 4}),
    "finetune": ("finetune", {}),
}

# Ablation around the val-selected setting for the built-in model (4 shallow text prompts).
BASE = {"depth": 1, "image_prompts": False, "n_ctx": 4}
ABLATION = {
    "dcar-text": ("dcar", BASE),
    "+image-prompts": ("dcar", {**BASE, "image_prompts": True}),
    "dcar": ("dcar", {}),  # the spec default (J=9, coupled image prompts); the same runs as the main table
    "no-dtr": ("dcar", {**BASE, "dtr": False}),
    "no-swap-negatives": ("dcar", {**BASE, "swap_negatives": False}),
    "no-attribute-negatives": ("dcar", {**BASE, "attribute_negatives": False}),
    "no-caa": ("dcar", {**BASE, "caa": False}),
    "no-l-cate": ("dcar", {**BASE, "lam": 0.0}),
    "reading-B": ("dcar", {**BASE, "reading": "B"}),
    "gamma-0.25": ("dcar", {**BASE, "gamma": 0.25}),
    "gamma-1.0": ("dcar", {**BASE, "gamma": 1.0}),
    "k-2": ("dcar", {**BASE, "negatives_k": 2}),
    "lambda-0.5": ("dcar", {**BASE, "lam": 0.5}),
    "lambda-2": ("dcar", {**BASE, "lam": 2.0}),
    "alpha-0": ("dcar", {**BASE, "alpha": 0.0}),
    "rerank": ("dcar", {**BASE, "inference": "rerank"}),
    "ctx-2": ("dcar", {**BASE, "n_ctx": 2}),
    "forward-only-negatives": ("dcar", {**BASE, "negative_gradients": False}),
}


# The first selection (on garden's val split): shallow text prompts, no image prompts, k=2.
BASE_K2 = {"depth": 1, "image_prompts": False}

# Candidate settings compared on the val splits only (best-epoch val score, no test evaluation):
# how the ablation's base setting was chosen. name -> (method, method overrides, train overrides).
VAL_SWEEP = {
    "text-k2": ("dcar", BASE_K2, {}),
    "text-deep": ("dcar", {**BASE_K2, "depth": 4}, {}),
    "ctx-4": ("dcar", {**BASE_K2, "n_ctx": 4}, {}),
    "ctx-1-a": ("dcar", {**BASE_K2, "n_ctx": 1, "init_words": "a"}, {}),
    "k-8": ("dcar", {**BASE_K2, "negatives_k": 8}, {}),
    "adamw": ("dcar", {**BASE_K2, "optimizer": {"name": "adamw", "lr": 1e-3, "weight_decay": 0.0}}, {}),
    "no-attribute-negatives": ("dcar", {**BASE_K2, "attribute_negatives": False}, {}),
    "reading-B": ("dcar", {**BASE_K2, "reading": "B"}, {}),
    "caa-at-inference": ("dcar", {**BASE_K2, "caa_at_inference": True}, {}),
    "forward-only-negatives": ("dcar", {**BASE_K2, "negative_gradients": False}, {}),
    "ctx-4-forward-only-negatives": ("dcar", {**BASE_K2, "n_ctx": 4, "negative_gradients": False}, {}),
    # 4x the budget: does more training help, or overfit 256 training images?
    "ctx-4-32-epochs": ("dcar", {**BASE_K2, "n_ctx": 4}, {"epochs": 32}),
}


# World v2: the baselines, DCAR with the spec's defaults (J=9 deep coupled prompts, both readings'
# default), and DCAR settings compared on the v2 val splits only (VAL_SWEEP_V2).
MAIN_V2 = {
    "zeroshot": ("zeroshot", {}),
    "coop": ("coop", {}),
    "clip-adapter": ("clip-adapter", {}),
    "maple": ("maple", {}),
    "finetune": ("finetune", {}),
    "dcar": ("dcar", {}),
}
VAL_SWEEP_V2 = {
    "spec": ("dcar", {}, {}),
    "text-k4": ("dcar", BASE, {}),
    "shallow-k4-image": ("dcar", {"depth": 1, "n_ctx": 4}, {}),
    "deep-k4-image": ("dcar", {"n_ctx": 4}, {}),
    "spec-reading-B": ("dcar", {"reading": "B"}, {}),
}


def tables(world: int) -> tuple[dict, dict, dict]:
    """(main table, ablation, val sweep) of a world version."""
    return (MAIN, ABLATION, VAL_SWEEP) if world == 1 else (MAIN_V2, {}, VAL_SWEEP_V2)


def materialise_domain(domain: str, root: Path, seed: int = 0) -> dict:
    from dcar.world.export import materialise

    return {s: materialise(domain, s, root / "data" / domain / s, seed=seed, progress=False) for s in ("train", "val", "test")}


def run_one(domain: str, name: str, method: str, overrides: dict, seed: int, root: Path, model: str = MODEL) -> dict:
    from dcar.backbone import load_backbone
    from dcar.evaluation.encoders import ZeroShotEncoder
    from dcar.evaluation.evaluate import evaluate, load_eval_dataset
    from dcar.methods.encoder import MethodEncoder
    from dcar.checkpoint import load_method
    from dcar.training.run import run_training

    run_dir = root / domain / name / f"seed{seed}"
    done = run_dir / "results.json"
    if done.exists():
        return json.loads(done.read_text())
    splits = materialise_domain(domain, root)
    test = load_eval_dataset(splits["test"].fdrd, splits["test"].images, domain)
    t0 = time.perf_counter()
    if overrides.get("inference") == "rerank":
        # An inference mode only: re-rank with the plain DCAR run of the same seed.
        plain = {k: v for k, v in overrides.items() if k != "inference"}
        base = run_one(domain, "dcar-text", "dcar", plain, seed, root, model)
        trained = load_method(root / domain / "dcar-text" / f"seed{seed}")
        trained.config.inference = "rerank"
        results = evaluate(MethodEncoder(trained), [test], num_workers=0, progress=False)
        summary = {"seconds": base["train_seconds"], "trainable_parameters": base["trainable_parameters"], "best_epoch": base["best_epoch"]}
    elif method == "zeroshot":
        results = evaluate(ZeroShotEncoder(load_backbone(model)), [test], num_workers=0, progress=False)
        summary = {"seconds": 0.0, "trainable_parameters": 0, "best_epoch": 0}
    else:
        summary = run_training(
            method, model, splits["train"].fdrd, splits["val"].fdrd, splits["train"].images, splits["val"].images,
            splits["train"].taxonomy, run_dir, overrides, {**TRAIN, "seed": seed}, resume=True,
        )
        results = evaluate(MethodEncoder(load_method(run_dir)), [test], num_workers=0, progress=False)
    results.update(label=name, seed=seed, train_seconds=summary["seconds"], trainable_parameters=summary["trainable_parameters"],
                   best_epoch=summary["best_epoch"], wall_seconds=time.perf_counter() - t0)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(results, done)
    return results


def sweep(table: dict, seeds: list[int], root: Path, domains: tuple[str, ...], model: str = MODEL) -> None:
    for seed in seeds:
        for domain in domains:
            for name, (method, overrides) in table.items():
                r = run_one(domain, name, method, overrides, seed, root, model=model)
                d = r["datasets"][domain]
                print(f"{domain:9s} {name:24s} seed {seed}: I2T R@1 {d['i2t']['R@1']:6.2f}  T2I R@1 {d['t2i']['R@1']:6.2f}  ({r['wall_seconds']:.0f} s)", flush=True)


def val_sweep(table: dict, seeds: list[int], root: Path, domains: tuple[str, ...], model: str = MODEL) -> None:
    """Train each setting and print its best-epoch val score (mean of I2T and T2I R@1); `report`
    rebuilds the table from the run folders."""
    from dcar.training.run import run_training

    for name, (method, overrides, train) in table.items():
        scores: dict[str, list[float]] = {}
        for seed in seeds:
            for domain in domains:
                splits = materialise_domain(domain, root)
                run_dir = root / "val" / domain / name / f"seed{seed}"
                summary = run_training(
                    method, model, splits["train"].fdrd, splits["val"].fdrd, splits["train"].images, splits["val"].images,
                    splits["train"].taxonomy, run_dir, overrides, {**TRAIN, **train, "seed": seed}, resume=True,
                )
                scores.setdefault(domain, []).append(summary["best_score"])
        per_domain = {d: statistics.mean(v) for d, v in scores.items()}
        cells = "  ".join(f"{d} {v:6.2f}" for d, v in per_domain.items())
        print(f"{name:24s} {cells}  mean {statistics.mean(per_domain.values()):6.2f}", flush=True)


def probe(root: Path, domains: tuple[str, ...], docs: Path, model: str = MODEL) -> dict:
    """Can the frozen image tower tell a domain's subcategories apart at all? Subcategory accuracy
    on the test split of (a) zero-shot classification with "This is a {name}." and (b) a linear
    probe trained on the frozen features of the train split. With 2 meta-categories of 8 siblings
    per domain, 12.5% is what knowing the meta-category alone gives (chance: 6.25%)."""
    import torch
    import torch.nn.functional as F

    from dcar.backbone import load_backbone
    from dcar.evaluation.embed import embed_images
    from dcar.evaluation.encoders import ZeroShotEncoder

    torch.manual_seed(0)
    backbone = load_backbone(model)
    encoder = ZeroShotEncoder(backbone)
    out: dict = {}
    for domain in domains:
        splits = materialise_domain(domain, root)
        feats, labels = {}, {}
        for name in ("train", "test"):
            records = json.loads(Path(splits[name].fdrd).read_text())
            paths = [str(Path(splits[name].images) / r["file_name"]) for r in records.values()]
            got = embed_images(encoder, paths, batch_size=64, num_workers=0, progress=False)
            feats[name] = F.normalize(torch.from_numpy(got.features), dim=-1)
            labels[name] = [r["class_name"] for r in records.values()]
        classes = sorted(set(labels["train"]))
        y = {k: torch.tensor([classes.index(c) for c in v]) for k, v in labels.items()}
        with torch.no_grad():
            names = backbone.encode_text(backbone.tokenize([f"This is a {c}." for c in classes]))
        zero_shot = ((feats["test"] @ F.normalize(names.float(), dim=-1).T).argmax(1) == y["test"]).float().mean()
        # Standardised features: the sibling traits live in low-variance directions that a probe on
        # raw unit vectors, dominated by colour and background, underfits.
        mean, std = feats["train"].mean(0), feats["train"].std(0) + 1e-6
        x = {k: (v - mean) / std for k, v in feats.items()}
        linear = torch.nn.Linear(x["train"].shape[1], len(classes))
        opt = torch.optim.Adam(linear.parameters(), lr=1e-2, weight_decay=1e-3)
        for _ in range(2000):
            opt.zero_grad()
            F.cross_entropy(linear(x["train"]), y["train"]).backward()
            opt.step()
        with torch.no_grad():
            probe_acc = (linear(x["test"]).argmax(1) == y["test"]).float().mean()
            train_acc = (linear(x["train"]).argmax(1) == y["train"]).float().mean()
        out[domain] = {"classes": len(classes), "zero_shot": 100 * zero_shot.item(), "linear_probe": 100 * probe_acc.item(),
                       "linear_probe_train": 100 * train_acc.item()}
        print(f"{domain:9s} classes {len(classes)}  zero-shot {out[domain]['zero_shot']:5.1f}%  linear probe test "
              f"{out[domain]['linear_probe']:5.1f}% (train {out[domain]['linear_probe_train']:5.1f}%)", flush=True)
    docs.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out, docs / "probe.json")
    return out


def aggregate(root: Path, names: list[str], domains: tuple[str, ...], seeds: list[int] | None = None) -> dict:
    """mean and population std over seeds, per domain and AVG over domains (per seed first)."""
    out: dict = {}
    for name in names:
        per_seed: dict[int, dict] = {}
        for domain in domains:
            for f in sorted((root / domain / name).glob("seed*/results.json")):
                r = json.loads(f.read_text())
                if seeds is not None and r["seed"] not in seeds:
                    continue
                per_seed.setdefault(r["seed"], {})[domain] = r["datasets"][domain]
        complete = {s: v for s, v in per_seed.items() if len(v) == len(domains)}
        if not complete:
            continue
        rows: dict = {}
        for key in (*domains, "AVG"):
            rows[key] = {}
            for d in ("i2t", "t2i"):
                for k in ("R@1", "R@5", "R@10"):
                    vals = [
                        statistics.mean(v[dom][d][k] for dom in domains) if key == "AVG" else v[key][d][k]
                        for v in complete.values()
                    ]
                    rows[key][f"{d} {k}"] = _mean_std(vals)
            # share of test images whose positive caption outranks all of its K hard negatives
            vals = [statistics.mean(v[dom]["hard_negative_acc"] for dom in domains) if key == "AVG" else v[key]["hard_negative_acc"]
                    for v in complete.values()]
            rows[key]["hard-negative acc"] = _mean_std(vals)
        out[name] = {"seeds": sorted(complete), "rows": rows}
    return out


def val_table(root: Path, domains: tuple[str, ...], table: dict = VAL_SWEEP) -> str:
    """The selection sweep: best-epoch val score (mean of I2T and T2I R@1) per setting, seed mean."""
    lines = ["## Val selection sweep (best-epoch val score = mean of I2T and T2I R@1, %)", "",
             "| setting | seeds | " + " | ".join(domains) + " | mean |", "|---|---|" + "---|" * (len(domains) + 1)]
    for name in table:
        per_domain = {}
        for domain in domains:
            files = sorted((root / "val" / domain / name).glob("seed*/train_summary.json"))
            per_domain[domain] = [json.loads(f.read_text())["best_score"] for f in files]
        seeds = min(len(v) for v in per_domain.values())
        if not seeds:
            continue
        means = [statistics.mean(per_domain[d][:seeds]) for d in domains]
        lines.append(f"| {name} | {seeds} | " + " | ".join(f"{m:.2f}" for m in means) + f" | {statistics.mean(means):.2f} |")
    return "\n".join(lines) + "\n"


def avg_summary(agg: dict, title: str, base: str | None = None) -> str:
    """AVG R@1 both ways (mean ± std over seeds) and, with ``base``, the change against it."""
    head = "| variant | seeds | I2T R@1 | T2I R@1 | hard-negative acc |" + (" change vs " + base + " |" if base else "")
    lines = [f"## {title}", "", head, "|---|---|---|---|---|" + ("---|" if base else "")]
    for name, a in agg.items():
        r = a["rows"]["AVG"]
        cells = [f"{r[c][0]:.2f} ± {r[c][1]:.2f}" for c in ("i2t R@1", "t2i R@1", "hard-negative acc")]
        row = f"| {name} | {len(a['seeds'])} | " + " | ".join(cells) + " |"
        if base and base in agg:
            b = agg[base]["rows"]["AVG"]
            row += "" if name == base else f" {r['i2t R@1'][0] - b['i2t R@1'][0]:+.2f} / {r['t2i R@1'][0] - b['t2i R@1'][0]:+.2f} |"
            row += " |" if name == base else ""
        lines.append(row)
    return "\n".join(lines) + "\n"


def _mean_std(vals: list[float]) -> tuple[float, float]:
    return statistics.mean(vals), statistics.pstdev(vals) if len(vals) > 1 else 0.0


def markdown(agg: dict, domains: tuple[str, ...], title: str) -> str:
    cols = [f"{d} {k}" for d in ("i2t", "t2i") for k in ("R@1", "R@5", "R@10")] + ["hard-negative acc"]
    lines = [f"## {title}", ""]
    for key in (*domains, "AVG"):
        lines += [f"### {key}", "", "| variant | seeds | " + " | ".join(c.upper() for c in cols) + " |", "|---|---|" + "---|" * len(cols)]
        for name, a in agg.items():
            cells = [f"{a['rows'][key][c][0]:.2f} ± {a['rows'][key][c][1]:.2f}" for c in cols]
            lines.append(f"| {name} | {len(a['seeds'])} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["main", "ablation", "report", "val", "probe"])
    ap.add_argument("--world", type=int, choices=sorted(WORLDS), default=1, help="world version (catalogs, model)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--domains", nargs="+", default=None)
    ap.add_argument("--only", nargs="+", help="val: run only these VAL_SWEEP entries")
    ap.add_argument("--ablation-seeds", type=int, nargs="+", default=[0], help="report: seeds of the ablation table")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--docs", type=Path, default=None)
    args = ap.parse_args()
    world = WORLDS[args.world]
    domains = tuple(args.domains or world["domains"])
    model = world["model"]
    args.out = args.out or Path(world["out"])
    args.docs = args.docs or Path(world["docs"])
    main_table, ablation, val_settings = tables(args.world)
    if args.what == "main":
        sweep(main_table, args.seeds, args.out, domains, model)
    elif args.what == "ablation":
        sweep(ablation, args.seeds, args.out, domains, model)
    elif args.what == "val":
        table = {k: v for k, v in val_settings.items() if not args.only or k in args.only}
        val_sweep(table, args.seeds, args.out, domains, model)
    elif args.what == "probe":
        probe(args.out, domains, args.docs, model)
    else:
        args.docs.mkdir(parents=True, exist_ok=True)
        # Every ablation variant over the same seeds (the ablation ran fewer than the main table).
        main_agg = aggregate(args.out, list(main_table), domains)
        abl_agg = aggregate(args.out, list(ablation), domains, seeds=args.ablation_seeds)
        write_json_atomic({"main": main_agg, "ablation": abl_agg}, args.docs / "results.json")
        text = avg_summary(main_agg, "Main table, AVG over domains (test split, %)") + "\n"
        text += avg_summary(abl_agg, f"DCAR ablation, AVG over domains (test split, seeds {args.ablation_seeds}, %)", base="dcar-text") + "\n"
        text += markdown(main_agg, domains, "Main table (test split, mean ± std over seeds)") + "\n" + markdown(abl_agg, domains, f"DCAR ablation (seeds {args.ablation_seeds})")
        text += "\n" + val_table(args.out, domains, val_settings)
        (args.docs / "tables.md").write_text(text, encoding="utf-8")
        print(text)


if __name__ == "__main__":
    main()
