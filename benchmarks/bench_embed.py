"""Image embedding throughput: dcar's pipeline (the code behind `dcar embed`) vs a plain open_clip loop.

Both encode the same images with the same model object (random-weight ``open_clip:ViT-B-32`` by
default) at the same batch size:

- dcar: ``embed_images`` — DataLoader workers decode (with EXIF/mode handling) and preprocess
  while the main process encodes; features through the Backbone's image forward, L2-normalised.
- plain: for each batch, ``PIL.Image.open(...).convert("RGB")`` + open_clip's preprocess in the main
  process, then ``model.encode_image`` and normalise.

Runs alternate (plain, dcar, plain, dcar, ...) after a warm-up of both; the best run of each
counts. Prints images/s, the ratio dcar/plain (goal >= 0.95) and the largest feature difference.

Usage: python benchmarks/bench_embed.py [--images DIR | --synthetic N] [--count 256] [--batch-size 64]
       [--workers N] [--device cuda]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DEFAULT_IMAGES = Path(os.environ.get("DCAR_SHARED_DATA", REPO.parent / "shared" / "data")) / "images/flower/test"


def plain_loop(model, preprocess, paths: list[str], batch_size: int) -> np.ndarray:
    out = []
    with torch.no_grad():
        for s in range(0, len(paths), batch_size):
            x = torch.stack([preprocess(Image.open(p).convert("RGB")) for p in paths[s : s + batch_size]])
            x = x.to(next(model.parameters()).device)
            out.append(F.normalize(model.encode_image(x), dim=-1).cpu().numpy())
    return np.concatenate(out)


def synthetic_images(folder: Path, count: int) -> Path:
    """Photo-sized JPEGs (500x375, smooth gradients plus noise) where no image folder is at hand."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:375, 0:500]
    for i in range(count):
        base = np.stack([(x * (i % 7 + 1)) % 256, (y * (i % 5 + 1)) % 256, (x + y + 40 * i) % 256], -1)
        noisy = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(folder / f"img_{i:05d}.jpg", quality=90)
    return folder


def main() -> None:
    from dcar.backbone import load_backbone
    from dcar.evaluation.embed import default_workers, embed_images
    from dcar.evaluation.encoders import ZeroShotEncoder

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    p.add_argument("--count", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--model", default="open_clip:ViT-B-32")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--synthetic", type=int, default=0, help="generate this many JPEGs instead of --images")
    args = p.parse_args()
    if args.synthetic:
        import tempfile

        args.images = synthetic_images(Path(tempfile.mkdtemp()) / "images", args.synthetic)
    workers = default_workers() if args.workers is None else args.workers

    paths = sorted(str(x) for x in args.images.iterdir() if x.suffix.lower() in (".jpg", ".jpeg", ".png"))[: args.count]
    if not paths:
        raise SystemExit(f"no images in {args.images}")
    for x in paths:  # same page-cache state for both
        Path(x).read_bytes()
    encoder = ZeroShotEncoder(load_backbone(args.model, device=args.device))
    model = encoder.backbone.model
    preprocess = encoder.image_transform()
    print(f"{len(paths)} images from {args.images}, {args.model} on {args.device}, batch {args.batch_size}, "
          f"{workers} loader workers, {os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}")

    warm = paths[: args.batch_size]
    plain_loop(model, preprocess, warm, args.batch_size)
    embed_images(encoder, warm, args.batch_size, workers, progress=False)
    best = {"plain": float("inf"), "dcar": float("inf")}
    for _ in range(args.repeats):
        t = time.perf_counter()
        plain = plain_loop(model, preprocess, paths, args.batch_size)
        best["plain"] = min(best["plain"], time.perf_counter() - t)
        t = time.perf_counter()
        ours = embed_images(encoder, paths, args.batch_size, workers, progress=False)
        best["dcar"] = min(best["dcar"], time.perf_counter() - t)
    assert ours.ok.all(), ours.skipped
    rate = {k: len(paths) / v for k, v in best.items()}
    print(f"plain open_clip loop: {rate['plain']:7.1f} images/s ({best['plain']:.1f} s)")
    print(f"dcar embed pipeline:  {rate['dcar']:7.1f} images/s ({best['dcar']:.1f} s)")
    print(f"ratio dcar/plain: {rate['dcar'] / rate['plain']:.2f} (goal >= 0.95); "
          f"max |feature difference|: {np.abs(ours.features - plain).max():.2e}")


if __name__ == "__main__":
    main()
