"""Cost of every method on one backbone, measured side by side in one run.

For each method: trainable parameters, checkpoint size, mean train-step time and peak memory at
the same batch size, then an evaluation pass (Recall@K) on the given images. Each method runs in
its own subprocess so that peak memory is its own. Prints a table, the ratios DCAR / MaPLe and
each method / CoOp, and prompted-inference vs zero-shot encode throughput.

  python benchmarks/bench_methods.py --model open_clip:ViT-B-32 --batch 32 --steps 5
  python benchmarks/bench_methods.py --fdrd ../shared/data/fdrd/flower_test.json \
      --images ../shared/data/images/flower/test --limit 256     # real images (full-size path)
  python benchmarks/bench_methods.py --methods maple,dcar \
      --variant 'dcar-fwdneg=dcar:{"negative_gradients": false}'  # a method with config overrides

No accuracy claim with random weights: the evaluation shows the path works at real size.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

METHODS = ["zeroshot", "coop", "clip-adapter", "maple", "dcar", "finetune"]


def synthetic_entries(n: int, folder: Path):
    """Captions of realistic FDRD length (~40 tokens) over 32 categories in 4 meta-categories."""
    from PIL import Image

    from dcar.data.records import Entry

    colours = ["red", "blue", "green", "yellow", "purple", "white", "black", "orange"]
    entries, taxonomy = [], {}
    for i in range(n):
        cat = f"varietas{i % 32:02d}"
        taxonomy[cat] = f"genus{i % 4}"
        path = folder / f"{i}.png"
        Image.new("RGB", (64, 64), (i * 7 % 255, i * 13 % 255, i * 29 % 255)).save(path)
        c1, c2 = colours[i % 8], colours[(i // 8) % 8]
        caption = (
            f"This is a {cat}. The flower has {c1} petals with a {c2} center, and it stands on the left "
            f"of the picture in front of a green background with two small leaves near the bottom."
        )
        entries.append(Entry(f"e{i}", caption, cat, str(path), meta_category=taxonomy[cat]))
    return entries, taxonomy


def peak_memory_mb(device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def worker(args) -> dict:
    import torch
    from safetensors.torch import save

    from dcar.backbone import load_backbone
    from dcar.data.images import load_image
    from dcar.methods import TrainBatch, build_method

    torch.manual_seed(0)
    device = torch.device(args.device)
    backbone = load_backbone(args.model, device=device)
    name, overrides = _method_spec(args)
    method = build_method(name, backbone, overrides).to(device)
    with tempfile.TemporaryDirectory() as tmp:
        if args.fdrd:
            from dcar.data.sources import load_entries

            entries = load_entries(args.fdrd, images=args.images).with_images()[: args.limit]
            taxonomy = None
        else:
            entries, taxonomy = synthetic_entries(max(args.batch, 64), Path(tmp))
        row = {"method": args.method, "trainable": method.count_trainable()}
        row["checkpoint_mb"] = len(save({k: v.contiguous().cpu() for k, v in method.trainable_state_dict().items()})) / 2**20 if method.trainable else 0.0
        transform = method.image_transform(train=True)
        pixels = torch.stack([transform(load_image(e.image)) for e in entries[: args.batch]]).to(device)
        batch = TrainBatch(pixels, entries[: args.batch])
        if method.trainable:
            method.prepare_training(entries, taxonomy)
            opt = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=1e-4, momentum=0.9)
            method.train()
            autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
            times = []
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            for step in range(args.warmup + args.steps):
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                t0 = time.perf_counter()
                with autocast:
                    loss = method.training_losses(batch)["loss"]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                if step >= args.warmup:
                    times.append(time.perf_counter() - t0)
            row["step_s"] = sum(times) / len(times)
            row["train_peak_mb"] = peak_memory_mb(device)
        method.eval()
        row.update(_evaluate(method, entries, args))
        row.update(_inference_throughput(method, pixels, [e.caption for e in entries[: args.batch]], args, device))
    return row


def _method_spec(args) -> tuple[str, dict]:
    """The method name and config overrides of a row: a plain method, or a --variant."""
    for v in args.variant or []:
        label, _, spec = v.partition("=")
        if label == args.method:
            name, _, overrides = spec.partition(":")
            return name, json.loads(overrides or "{}")
    return args.method, {}


def _evaluate(method, entries, args) -> dict:
    from dcar.evaluation.evaluate import EvalDataset, evaluate
    from dcar.methods.encoder import MethodEncoder

    res = evaluate(MethodEncoder(method), [EvalDataset("bench", entries)], batch_size=args.batch, num_workers=args.workers, progress=False)
    r = res["datasets"]["bench"]
    return {"eval_i2t_r1": r["i2t"]["R@1"], "eval_t2i_r1": r["t2i"]["R@1"], "eval_images": r["n_images"]}


def _inference_throughput(method, pixels, captions, args, device) -> dict:
    """Encode throughput (images + captions per second) with this method's prompts."""
    import torch

    def run() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        with torch.inference_mode():
            for _ in range(args.steps):
                method.encode_images(pixels)
                method.encode_texts(captions)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return 2 * len(captions) * args.steps / (time.perf_counter() - t0)

    run()  # warm-up
    return {"encode_items_per_s": run()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="open_clip:ViT-B-32")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="cuda" if _cuda() else "cpu")
    ap.add_argument("--fdrd", help="real test set for the evaluation pass (default: synthetic)")
    ap.add_argument("--images")
    ap.add_argument("--limit", type=int, default=256)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--out", help="write the rows as JSON here")
    ap.add_argument("--variant", action="append", help='LABEL=METHOD:JSON, an extra row, e.g. dcar-fwdneg=dcar:{"negative_gradients": false}')
    ap.add_argument("--method", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.method:
        print(json.dumps(worker(args)))
        return
    rows = []
    labels = args.methods.split(",") + [v.partition("=")[0] for v in args.variant or []]
    for m in labels:
        passed = {k: v for k, v in vars(args).items() if k not in ("methods", "method", "out", "variant") and v is not None}
        cmd = [sys.executable, __file__, "--method", m] + [x for k, v in passed.items() for x in (f"--{k}", str(v))]
        cmd += [x for v in args.variant or [] for x in ("--variant", v)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        if proc.returncode != 0:
            print(f"{m}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"{m}: done", file=sys.stderr, flush=True)
    report(rows, args)


def report(rows, args) -> None:
    by = {r["method"]: r for r in rows}
    print(f"\nmodel {args.model}, device {args.device}, batch {args.batch}, {args.steps} timed steps")
    print(f"{'method':14s} {'trainable':>12s} {'ckpt MB':>8s} {'step s':>8s} {'peak MB':>9s} {'x CoOp':>7s} {'x MaPLe':>8s} {'enc/s':>8s} {'R@1 i2t':>8s} {'R@1 t2i':>8s}")
    for r in rows:
        step = r.get("step_s")
        rel = lambda ref: f"{step / by[ref]['step_s']:.2f}" if step and ref in by and by[ref].get("step_s") else "-"
        print(
            f"{r['method']:14s} {r['trainable']:12,d} {r['checkpoint_mb']:8.2f} {step or 0:8.3f} {r.get('train_peak_mb', 0):9.0f} "
            f"{rel('coop'):>7s} {rel('maple'):>8s} {r['encode_items_per_s']:8.1f} {r['eval_i2t_r1']:8.2f} {r['eval_t2i_r1']:8.2f}"
        )
    for label in [r["method"] for r in rows if r["method"].startswith("dcar")]:
        if "maple" in by and by[label].get("step_s") and by["maple"].get("step_s"):
            print(f"\n{label} / MaPLe train step: {by[label]['step_s'] / by['maple']['step_s']:.2f}x (goal <= 1.5)")
    if "dcar" in by and "zeroshot" in by:
        print(f"DCAR prompted inference / zero-shot encode throughput: {by['dcar']['encode_items_per_s'] / by['zeroshot']['encode_items_per_s']:.3f} (goal >= 0.95)")
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


if __name__ == "__main__":
    main()
