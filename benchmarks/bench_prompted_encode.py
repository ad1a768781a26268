"""Prompted vs plain encoding speed on a random-weight open_clip ViT-B-32 (both towers).

Prompted = k text prompts and k image prompts, deep to J blocks (DCAR/MaPLe setting); plain = the
same backbone with no prompts; library = open_clip's own encode_text / encode_image. All three run
on the same batch, interleaved iteration by iteration so drift hits them equally, and the script
prints throughputs (best of the timed iterations) and the prompted/plain ratio (goal >= 0.95).

The text tower has the same 77 positions either way (captions are tokenized to 77 - k), so its
ratio should be ~1. The image tower really gets k extra tokens (50 -> 54 for B/32), so its ratio is
bounded by about 50/54 = 0.93 from the extra compute alone; the script prints that bound and the
ratio divided by it ("per token": ~1 means no overhead beyond the extra tokens).

    PYTHONPATH=src python benchmarks/bench_prompted_encode.py [--batch 8 --iters 10 --threads 1 --device cuda]
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

import torch

from dcar.backbone import TowerPrompts, load_backbone


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_interleaved(fns: dict[str, Callable[[], torch.Tensor]], iters: int, warmup: int,
                      device: torch.device) -> dict[str, float]:
    """Fastest seconds per call of each function, calling them in turn each iteration. The minimum,
    not the mean: on a shared machine other processes only ever add time."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for it in range(warmup + iters):
        for name, fn in fns.items():
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            if it >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: min(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="open_clip:ViT-B-32")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--k", type=int, default=4, help="prompt tokens per tower")
    parser.add_argument("--depth", type=int, default=9, help="J, blocks that get fresh prompts")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    torch.manual_seed(0)
    backbone = load_backbone(args.spec, device=device)
    info = backbone.info
    captions = [f"a photo of a small striped cat number {i} sitting on a wooden chair" for i in range(args.batch)]
    ids_plain = backbone.tokenize(captions).to(device)
    ids_prompted = backbone.tokenize(captions, prompt_length=args.k).to(device)
    images = torch.randn(args.batch, 3, info.image_size, info.image_size, device=device)
    text_p = TowerPrompts([torch.randn(args.k, info.text_width, device=device) * 0.02 for _ in range(args.depth)])
    image_p = TowerPrompts([torch.randn(args.k, info.vision_width, device=device) * 0.02 for _ in range(args.depth)])

    print(f"{args.spec} on {device} ({torch.get_num_threads()} CPU threads), batch {args.batch}, "
          f"{args.iters} timed iterations (+{args.warmup} warm-up), k={args.k}, J={args.depth}")
    with torch.inference_mode():
        towers = {
            "text": {
                "library": lambda: backbone.model.encode_text(ids_plain),
                "plain": lambda: backbone.encode_text(ids_plain),
                "prompted": lambda: backbone.encode_text(ids_prompted, text_p),
            },
            "image": {
                "library": lambda: backbone.model.encode_image(images),
                "plain": lambda: backbone.encode_image(images),
                "prompted": lambda: backbone.encode_image(images, image_p),
            },
        }
        n_patches = (info.image_size // backbone.model.visual.patch_size[0]) ** 2 + 1
        bound = {"text": 1.0, "image": n_patches / (n_patches + args.k)}
        print(f"{'tower':6s} {'library/s':>10s} {'plain/s':>10s} {'prompted/s':>11s} "
              f"{'prompted/plain':>15s} {'plain/library':>14s} {'token bound':>12s} {'per token':>10s}")
        for tower, fns in towers.items():
            sec = _time_interleaved(fns, args.iters, args.warmup, device)
            rate = {name: args.batch / s for name, s in sec.items()}
            print(f"{tower:6s} {rate['library']:10.1f} {rate['plain']:10.1f} {rate['prompted']:11.1f} "
                  f"{rate['prompted'] / rate['plain']:15.3f} {rate['plain'] / rate['library']:14.3f} "
                  f"{bound[tower]:12.3f} {rate['prompted'] / rate['plain'] / bound[tower]:10.3f}")


if __name__ == "__main__":
    main()
