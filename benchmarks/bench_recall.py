"""Recall@1/5/10: dcar's exact chunked ranks vs clip_benchmark's full-matrix ``recall_at_k``.

Same random input for both (seeded): N images, P captions per image, dimension E, captions noisy
copies of their image so recall lands mid-range. Each implementation runs in its own subprocess so
that its peak resident memory is its own; "extra" memory is the peak resident memory during the
computation (VmHWM, reset once the inputs exist) minus the memory held at that point (Linux).
Prints both, the time ratio and the largest recall difference.

clip_benchmark is *not* a dcar dependency; install it for this script only:
``pip install --no-deps clip-benchmark`` (its metrics module needs only torch and tqdm).
clip_benchmark's own evaluate() is followed: the [captions, images] float32 score matrix, a boolean
positive-pair matrix, then ``batchify(recall_at_k, ...)`` with its batch size 64, for each k and
both directions.

Usage: python benchmarks/bench_recall.py [--images 20000] [--per-image 5] [--dim 512] [--only dcar]
       [--device cuda] [--block-elements N]
"""

from __future__ import annotations

import argparse
import json
import os
import gc
import subprocess
import sys
import time

KS = (1, 5, 10)


def make_inputs(n: int, per_image: int, dim: int, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    images = torch.nn.functional.normalize(torch.randn(n, dim, generator=g), dim=1)
    owner = torch.arange(n).repeat_interleave(per_image)
    noise = torch.nn.functional.normalize(torch.randn(n * per_image, dim, generator=g), dim=1)
    texts = torch.nn.functional.normalize(images[owner] + 5.0 * noise, dim=1)  # cosine ~0.2 to own image
    return images.numpy(), texts.numpy(), owner.numpy()


def run_dcar(images, texts, owner, device: str, block_elements: int | None) -> dict:
    from dcar.evaluation.recall import BLOCK_ELEMENTS, recall_at_k

    return recall_at_k(images, texts, owner, ks=KS, device=device, block_elements=block_elements or BLOCK_ELEMENTS)


def run_clip_benchmark(images, texts, owner, device: str, batch_size: int = 64) -> dict:
    import torch
    from clip_benchmark.metrics.zeroshot_retrieval import batchify, recall_at_k

    images_emb, texts_emb = torch.from_numpy(images), torch.from_numpy(texts)
    scores = texts_emb @ images_emb.t()
    positive_pairs = torch.zeros_like(scores, dtype=bool)
    positive_pairs[torch.arange(len(scores)), torch.from_numpy(owner)] = True
    out: dict = {"i2t": {}, "t2i": {}}
    for k in KS:
        t2i = batchify(recall_at_k, scores, positive_pairs, batch_size, device, k=k) > 0
        i2t = batchify(recall_at_k, scores.T, positive_pairs.T, batch_size, device, k=k) > 0
        out["t2i"][f"R@{k}"] = 100.0 * t2i.float().mean().item()
        out["i2t"][f"R@{k}"] = 100.0 * i2t.float().mean().item()
    return out


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0  # kB
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak() -> float:
    """Forget the peak left by building the inputs (Linux >= 4.0: clear_refs 5 resets VmHWM);
    returns the resident memory now."""
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_mb("VmRSS")


def peak_mb() -> float:
    return _status_mb("VmHWM")


def worker(impl: str, args) -> None:
    import torch

    images, texts, owner = make_inputs(args.images, args.per_image, args.dim)
    base = reset_peak()
    start = time.perf_counter()
    if impl == "dcar":
        recall = run_dcar(images, texts, owner, args.device, args.block_elements)
    else:
        recall = run_clip_benchmark(images, texts, owner, args.device)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    gpu = torch.cuda.max_memory_allocated() / 2**20 if args.device.startswith("cuda") else None
    print(json.dumps({"impl": impl, "seconds": seconds, "inputs_mb": base, "peak_mb": peak_mb(),
                      "gpu_peak_mb": gpu, "recall": recall}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=20000)
    p.add_argument("--per-image", type=int, default=5)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--only", choices=["dcar", "clip_benchmark"])
    p.add_argument("--device", default="cpu", help="where the scores are compared (clip_benchmark: its batchify device)")
    p.add_argument("--block-elements", type=int, default=None, help="dcar block size (default: the library's)")
    p.add_argument("--worker", choices=["dcar", "clip_benchmark"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args.worker, args)

    import torch

    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(f"{args.images} images x {args.images * args.per_image} captions, dim {args.dim}; {where}; "
          f"{os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}")
    impls = [args.only] if args.only else ["dcar", "clip_benchmark"]
    results = {}
    for impl in impls:
        cmd = [sys.executable, __file__, "--worker", impl, "--images", str(args.images),
               "--per-image", str(args.per_image), "--dim", str(args.dim), "--device", args.device]
        if args.block_elements:
            cmd += ["--block-elements", str(args.block_elements)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{impl}: failed (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
            continue
        r = results[impl] = json.loads(proc.stdout.strip().splitlines()[-1])
        gpu = f"   GPU peak {r['gpu_peak_mb']:8.0f} MB" if r["gpu_peak_mb"] is not None else ""
        print(f"{impl:15s} {r['seconds']:8.1f} s   peak {r['peak_mb']:8.0f} MB   "
              f"extra over inputs {r['peak_mb'] - r['inputs_mb']:8.0f} MB{gpu}   recall {json.dumps(r['recall'])}")
    if len(results) == 2:
        a, b = results["dcar"], results["clip_benchmark"]
        diff = max(abs(a["recall"][d][k] - b["recall"][d][k]) for d in ("i2t", "t2i") for k in a["recall"][d])
        print(f"time ratio clip_benchmark/dcar: {b['seconds'] / a['seconds']:.2f}   "
              f"extra-memory ratio: {(b['peak_mb'] - b['inputs_mb']) / max(1.0, a['peak_mb'] - a['inputs_mb']):.1f}   "
              f"max |recall difference|: {diff:.4f} points")


if __name__ == "__main__":
    main()
