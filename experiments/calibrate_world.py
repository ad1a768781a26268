"""Calibrate a world version against a backbone: does it behave like a real CLIP on FDRD? (issue 9)

  python experiments/calibrate_world.py --model open_clip:local-dir:runs/v2/full/model --cheap
  python experiments/calibrate_world.py --model builtin:synthetic-v2 --seeds 0 1 2 --docs docs/world

Per downstream domain of the world version (test split; 16-shot train split; world seed 0):

- cheap checks (no training): zero-shot "This is a {name}." classification among the domain's
  subcategories (target 25-75%), a 16-shot linear probe on the frozen image features (target
  >= 70%), zero-shot retrieval R@1 (targets 15-40 image-to-text, 10-35 text-to-image);
- room to adapt (``--cheap`` skips it): CoOp, CLIP-Adapter, MaPLe and full fine-tuning, each
  trained with the same budget as experiments/run_experiments.py and evaluated once on test, over
  the given seeds; targets on AVG I2T R@1: CoOp >= zero-shot + 4, fine-tuning >= zero-shot + 4,
  MaPLe >= CoOp - 1. DCAR is never run here: the world is calibrated on baselines only, then frozen.

Writes OUT/calibration.json and DOCS/calibration.md (the table, the targets met or not, and the
commit of the world code that was measured). Training runs are resumable (finished ones skipped).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_experiments import run_one  # noqa: E402  (the same training/evaluation path as the main table)

from dcar.atomic import write_json_atomic, write_text_atomic  # noqa: E402
from dcar.evaluation.recall import recall_at_k  # noqa: E402
from dcar.world.captions import caption, name_sentence  # noqa: E402
from dcar.world.domains import downstream_domains, get_domain, split_size  # noqa: E402
from dcar.world.render import render  # noqa: E402
from dcar.world.sample import make_sample  # noqa: E402

BASELINES = ("coop", "clip-adapter", "maple", "finetune")
TARGETS = {
    "zero_shot_cls": (25.0, 75.0),
    "probe": (70.0, None),
    "i2t_r1": (15.0, 40.0),
    "t2i_r1": (10.0, 35.0),
}


@torch.no_grad()
def _embed_images(backbone, samples, size: int, batch: int = 128) -> torch.Tensor:
    transform = backbone.image_transform()
    out = []
    for i in range(0, len(samples), batch):
        pixels = torch.stack([transform(render(s, size)) for s in samples[i:i + batch]])
        out.append(backbone.encode_image(pixels.to(backbone.device), normalize=True).float().cpu())
    return torch.cat(out)


@torch.no_grad()
def _embed_texts(backbone, texts: list[str], batch: int = 256) -> torch.Tensor:
    out = [backbone.encode_text(backbone.tokenize(texts[i:i + batch]).to(backbone.device), normalize=True).float().cpu()
           for i in range(0, len(texts), batch)]
    return torch.cat(out)


def linear_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                 seed: int = 0, steps: int = 1000) -> float:
    """Test accuracy (%) of a logistic-regression probe on standardised frozen features."""
    torch.manual_seed(seed)
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    head = torch.nn.Linear(train_x.shape[1], int(train_y.max()) + 1)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2, weight_decay=1e-3)
    x = (train_x - mean) / std
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(head(x), train_y).backward()
        opt.step()
    with torch.no_grad():
        return 100.0 * float((head((test_x - mean) / std).argmax(1) == test_y).float().mean())


def cheap_checks(backbone, domain: str, seed: int = 0) -> dict:
    """Zero-shot classification, 16-shot linear probe and zero-shot retrieval on one domain."""
    d = get_domain(domain)
    size = d.image_size
    subs = d.subcategories
    test = [make_sample(d, "test", i, seed) for i in range(split_size(d, "test"))]
    train = [make_sample(d, "train", i, seed) for i in range(split_size(d, "train"))]
    img = _embed_images(backbone, test, size)
    txt = _embed_texts(backbone, [caption(s) for s in test])
    names = _embed_texts(backbone, [name_sentence(n) for n in subs])
    y_test = torch.tensor([subs.index(s.subcategory) for s in test])
    y_train = torch.tensor([subs.index(s.subcategory) for s in train])
    pred = (img @ names.T).argmax(1)
    # the same among each image's siblings only (the meta-category given)
    same_meta = torch.tensor([[d.taxonomy[a] == d.taxonomy[b] for b in subs] for a in subs])
    sib_scores = (img @ names.T).masked_fill(~same_meta[y_test], float("-inf"))
    recall = recall_at_k(img, txt, torch.arange(len(test)), ks=(1, 5))
    return {
        "subcategories": len(subs),
        "test_images": len(test),
        "zero_shot_cls": 100.0 * float((pred == y_test).float().mean()),
        "zero_shot_cls_among_siblings": 100.0 * float((sib_scores.argmax(1) == y_test).float().mean()),
        "chance_among_siblings": 100.0 * float(statistics.mean(1 / int(same_meta[k].sum()) for k in y_test.tolist())),
        "probe": linear_probe(_embed_images(backbone, train, size), y_train, img, y_test, seed),
        "i2t_r1": recall["i2t"]["R@1"], "t2i_r1": recall["t2i"]["R@1"],
        "i2t_r5": recall["i2t"]["R@5"], "t2i_r5": recall["t2i"]["R@5"],
    }


def baseline_runs(model: str, domains: list[str], seeds: list[int], root: Path) -> dict:
    """Test R@1 of zero-shot and each baseline, per domain, per seed (resumable runs under ROOT)."""
    out: dict = {}
    for domain in domains:
        for name in ("zeroshot",) + BASELINES:
            for seed in (seeds if name != "zeroshot" else seeds[:1]):
                r = run_one(domain, name, name, {}, seed, root, model=model)["datasets"][domain]
                out.setdefault(domain, {}).setdefault(name, []).append({"i2t": r["i2t"]["R@1"], "t2i": r["t2i"]["R@1"]})
                print(f"{domain:8s} {name:12s} seed {seed}: I2T R@1 {r['i2t']['R@1']:6.2f}  T2I R@1 {r['t2i']['R@1']:6.2f}",
                      flush=True)
    return out


def _in(value: float, bounds: tuple[float | None, float | None]) -> bool:
    lo, hi = bounds
    return (lo is None or value >= lo) and (hi is None or value <= hi)


def _mean(rows: list[dict], key: str) -> float:
    return statistics.mean(r[key] for r in rows)


def world_commit() -> str:
    """The commit of the world code measured, marked dirty if src/dcar/world has local changes."""
    root = Path(__file__).resolve().parents[1]
    git = lambda *a: subprocess.run(["git", *a], cwd=root, capture_output=True, text=True).stdout.strip()  # noqa: E731
    dirty = git("status", "--porcelain", "src/dcar/world")
    return git("rev-parse", "--short", "HEAD") + (" (+ uncommitted world changes)" if dirty else "")


def to_markdown(report: dict) -> str:
    cheap, domains = report["cheap"], list(report["cheap"])
    avg = {k: statistics.mean(cheap[d][k] for d in domains) for k in TARGETS}
    mark = lambda v, k: f"{v:.1f}" + ("" if _in(v, TARGETS[k]) else " ✗")  # noqa: E731
    lines = [
        f"# World calibration: `{report['model']}` (world v{report['version']})", "",
        f"World code at commit `{report['commit']}`; world seed {report['world_seed']}; measured on "
        f"{report['machine']} in {report['seconds'] / 60:.1f} min. ✗ = outside the target.", "",
        "| domain | subcategories | zero-shot cls (25-75) | among siblings (chance) | 16-shot probe (>= 70) "
        "| I2T R@1 (15-40) | T2I R@1 (10-35) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for d in domains:
        c = cheap[d]
        lines.append(f"| {d} | {c['subcategories']} | {mark(c['zero_shot_cls'], 'zero_shot_cls')} | "
                     f"{c['zero_shot_cls_among_siblings']:.1f} ({c['chance_among_siblings']:.1f}) | "
                     f"{mark(c['probe'], 'probe')} | {mark(c['i2t_r1'], 'i2t_r1')} | {mark(c['t2i_r1'], 't2i_r1')} |")
    lines.append(f"| AVG | | {avg['zero_shot_cls']:.1f} | | {avg['probe']:.1f} | {avg['i2t_r1']:.1f} | {avg['t2i_r1']:.1f} |")
    runs = report.get("baselines")
    if runs:
        methods = ("zeroshot",) + BASELINES
        lines += ["", f"Room to adapt: test R@1 I2T / T2I, mean over seeds {report['seeds']} (zero-shot: one run).", "",
                  "| method | " + " | ".join(domains) + " | AVG |", "|---|" + "---|" * (len(domains) + 1)]
        avg_i2t = {}
        for m in methods:
            cells = [f"{_mean(runs[d][m], 'i2t'):.2f} / {_mean(runs[d][m], 't2i'):.2f}" for d in domains]
            avg_i2t[m] = statistics.mean(_mean(runs[d][m], "i2t") for d in domains)
            avg_t2i = statistics.mean(_mean(runs[d][m], "t2i") for d in domains)
            lines.append(f"| {m} | " + " | ".join(cells) + f" | {avg_i2t[m]:.2f} / {avg_t2i:.2f} |")
        checks = [("CoOp >= zero-shot + 4 (AVG I2T R@1)", avg_i2t["coop"] - avg_i2t["zeroshot"], 4.0),
                  ("fine-tuning >= zero-shot + 4", avg_i2t["finetune"] - avg_i2t["zeroshot"], 4.0),
                  ("MaPLe >= CoOp - 1", avg_i2t["maple"] - avg_i2t["coop"], -1.0)]
        lines += [""] + [f"- {t}: {v:+.2f} ({'met' if v >= need else 'NOT met'})" for t, v, need in checks]
    return "\n".join(lines) + "\n"


def main() -> None:
    from dcar.backbone import load_backbone

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="backbone spec, e.g. open_clip:local-dir:DIR or builtin:NAME")
    ap.add_argument("--version", type=int, default=2, help="world version whose downstream domains are measured")
    ap.add_argument("--domains", nargs="+", default=None)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--cheap", action="store_true", help="only the checks that need no training")
    ap.add_argument("--out", type=Path, default=Path("runs/experiments-v2"),
                    help="run folder, shared with experiments/run_experiments.py --world 2 (its baseline rows)")
    ap.add_argument("--docs", type=Path, default=None, help="write calibration.md here (e.g. docs/world)")
    ap.add_argument("--machine", default="the project's shared 2-core CPU")
    args = ap.parse_args()
    torch.set_num_threads(1)  # faster than 2 on cores shared with other jobs (docs/world/v2.md)
    t0 = time.time()
    domains = args.domains or downstream_domains(args.version)
    backbone = load_backbone(args.model)
    report = {"model": args.model, "version": args.version, "world_seed": 0, "commit": world_commit(),
              "machine": args.machine, "seeds": args.seeds, "cheap": {}}
    for d in domains:
        report["cheap"][d] = cheap_checks(backbone, d)
        c = report["cheap"][d]
        print(f"{d:8s} zero-shot {c['zero_shot_cls']:5.1f}% (siblings {c['zero_shot_cls_among_siblings']:5.1f}%)  "
              f"probe {c['probe']:5.1f}%  R@1 I2T {c['i2t_r1']:5.1f} T2I {c['t2i_r1']:5.1f}", flush=True)
    if not args.cheap:
        report["baselines"] = baseline_runs(args.model, domains, args.seeds, args.out)
    report["seconds"] = time.time() - t0
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(report, args.out / "calibration.json")
    text = to_markdown(report)
    print(text)
    if args.docs:
        args.docs.mkdir(parents=True, exist_ok=True)
        write_text_atomic(text, args.docs / "calibration.md")


if __name__ == "__main__":
    np.set_printoptions(precision=2)
    main()
