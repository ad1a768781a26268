"""Generation speed of the procedural world, single process (the goal: >= 1,000 images/s per core).

Measures, side by side in one run: sample + render (what pretraining does per pair), the same plus
the caption and tokenisation (what a DataLoader worker does), and the full FDRD export path
(render + negatives + PNG write). Prints images per CPU-second (the per-core rate, robust to other processes sharing the cores),
its ratio to the 1,000 images/s goal, and images per wall-clock second.

    OMP_NUM_THREADS=1 python benchmarks/bench_world.py [--n 3000] [--size 64]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

GOAL = 1000.0


def _rate(fn, n: int) -> tuple[float, float]:
    """(images per CPU-second of this process, images per wall-clock second).

    Per CPU-second is the per-core rate even when other processes share the cores; wall-clock
    equals it on an idle machine.
    """
    fn(0)  # warm caches (textures, tokenizer)
    t, c = time.perf_counter(), time.process_time()
    for i in range(1, n + 1):
        fn(i)
    return n / (time.process_time() - c), n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--size", type=int, default=64)
    args = ap.parse_args()

    from open_clip import tokenize

    from dcar.world.captions import caption
    from dcar.world.export import _save_png_atomic
    from dcar.world.structural_negatives import negative_captions
    from dcar.world.render import render, render_array
    from dcar.world.sample import make_sample

    tmp = tempfile.mkdtemp()
    cases = {
        "pretrain: sample + render": lambda i: render_array(make_sample("pretrain", "train", i), args.size),
        "pretrain: + caption + tokenize": lambda i: (
            render_array(s := make_sample("pretrain", "train", i), args.size), tokenize([caption(s)])),
        "garden (styled): sample + render": lambda i: render_array(make_sample("garden", "test", i), args.size),
        "export: render + negatives + PNG": lambda i: (
            _save_png_atomic(render(s := make_sample("wildlife", "test", i), args.size), _path(tmp, i)),
            negative_captions(s)),
    }
    print(f"single process, {args.n} images of {args.size}x{args.size}, cpu affinity {len(os.sched_getaffinity(0))} cores")
    print(f"{'case':36s} {'img/CPU-s':>10s} {'x goal':>7s} {'img/wall-s':>11s}")
    for name, fn in cases.items():
        per_cpu, per_wall = _rate(fn, args.n)
        print(f"{name:36s} {per_cpu:10.0f} {per_cpu / GOAL:7.2f} {per_wall:11.0f}")


def _path(root: str, i: int):
    from pathlib import Path

    return Path(root) / f"{i}.png"


if __name__ == "__main__":
    main()
