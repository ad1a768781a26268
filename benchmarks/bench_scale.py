"""Measurements behind docs/scale.md: Ray embedding throughput per worker, and large-index build
time, memory, recall@10 and latency on synthetic unit vectors.

  python benchmarks/bench_scale.py ray [--count 256]            # single process vs Ray, 1 and 2 actors
  python benchmarks/bench_scale.py index --n 1000000 --dim 128 [--budget-gib 1] [--json out.json]

`ray` embeds the same shared flower images with the built-in model: `embed_images` in one process
(no loader workers), then Ray Data with 1 and 2 encoding actors (local Ray, num_cpus=2); it prints
wall time, images/s and the largest feature difference against the single process. Ray's start-up
(actor launch, model load) is part of a job's time; the steady rate is measured over a second
pass over the images with the actors' pool started again, so it is reported both ways.

`index` writes n clustered unit vectors (bench_service.py's recipe: 2,000 centres, noise of their
scale; queries from the same mixture) as 1M-row .npy shards in a scratch folder, then measures
- exact search (FAISS flat inner product over the memory-mapped shards, what `IndexFlatIP`
  computes): single-query latency p50/p99 and the ground truth for recall;
- IVF-PQ planned under --budget-gib (dcar.index.large): training time, time to add
  the shards as two parts and merge them on disk, index size on disk, peak RSS of the process,
  and recall@10 / p50 / p99 single-query latency (memory-mapped lists) at several nprobe, plain
  and with the top 80 re-ranked by the exact vectors read from the memory-mapped shards.
Run each size in its own process (peak RSS is per process), one at a time, with `nice -n 10`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DCAR_SHARED_DATA", REPO.parent / "shared" / "data"))
SHARD_ROWS = 1_000_000


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


# ---------------------------------------------------------------------------------------- ray
def bench_ray(count: int, batch_size: int) -> dict:
    import functools

    import torch

    from dcar.cli.commands_retrieval import load_encoder
    from dcar.distributed import ray_embed
    from dcar.evaluation.embed import embed_images

    torch.set_num_threads(1)  # one core per worker, as Ray gives each actor one CPU
    paths = [str(p) for p in sorted((SHARED / "images" / "flower").rglob("*.jpg"))[:count]]
    if len(paths) < count:
        sys.exit(f"need {count} flower images under {SHARED}/images/flower (DCAR_SHARED_DATA)")
    spec = "builtin:synthetic-small"
    encoder = load_encoder(spec, "cpu")
    embed_images(encoder, paths[:batch_size], batch_size, 0, progress=False)  # warm-up
    t = time.perf_counter()
    ref = embed_images(encoder, paths, batch_size, 0, progress=False)
    single = time.perf_counter() - t
    rows = [{"how": "one process", "workers": 1, "seconds": single, "images_per_s": count / single, "max_abs_diff": 0.0}]
    print(f"one process: {count} images in {single:.1f} s = {count / single:.1f} images/s", flush=True)

    t = time.perf_counter()
    ray_embed.start(num_cpus=2)
    startup = time.perf_counter() - t
    make = functools.partial(load_encoder, spec, "cpu")
    for actors in (1, 2):
        for attempt in ("first", "again"):
            t = time.perf_counter()
            got = ray_embed.embed_images_ray(make, encoder, paths, batch_size, actors=actors)
            seconds = time.perf_counter() - t
            diff = float(np.abs(got.features - ref.features).max())
            rows.append({"how": f"ray ({attempt} job)", "workers": actors, "seconds": seconds,
                         "images_per_s": count / seconds, "max_abs_diff": diff})
            print(f"ray, {actors} actor(s), {attempt} job: {seconds:.1f} s = {count / seconds:.1f} images/s, "
                  f"max abs diff {diff:.2g}", flush=True)
    ray_embed.stop()
    return {"count": count, "batch_size": batch_size, "ray_start_s": startup, "rows": rows}


# ---------------------------------------------------------------------------------------- index
CENTRES = 2000  # the service benchmark's synthetic catalog: 2,000 centres, noise of the centres' scale
NOISE = 1.0


def write_vectors(folder: Path, n: int, dim: int, seed: int = 2) -> list[Path]:
    """Clustered unit vectors (bench_service.py's recipe) in 1M-row .npy shards."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(1).standard_normal((CENTRES, dim)).astype(np.float32)
    files = []
    for s, start in enumerate(range(0, n, SHARD_ROWS)):
        rows = min(SHARD_ROWS, n - start)
        x = centres[rng.integers(0, CENTRES, rows)]
        x += NOISE * rng.standard_normal((rows, dim), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        files.append(folder / f"images-{s:05d}.npy")
        np.save(files[-1], x)
        del x
    return files


def queries_like(dim: int, count: int, seed: int = 3) -> np.ndarray:
    """Queries drawn from the catalog's distribution (not catalog points)."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(1).standard_normal((CENTRES, dim)).astype(np.float32)
    q = centres[rng.integers(0, CENTRES, count)] + NOISE * rng.standard_normal((count, dim), dtype=np.float32)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def exact_search(files: list[Path], queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k inner products over all shards (FAISS knn per memory-mapped shard, merged)."""
    import faiss

    heap = faiss.ResultHeap(len(queries), k, keep_max=True)
    first = 0
    for f in files:
        x = np.load(f, mmap_mode="r")
        d, i = faiss.knn(queries, x, k, metric=faiss.METRIC_INNER_PRODUCT)
        heap.add_result(d, i + first)
        first += len(x)
        del x
    heap.finalize()
    return heap.D, heap.I


def flat_scan(arrays: list[np.ndarray], q: np.ndarray, k: int) -> np.ndarray:
    """One query's exact top-k by a scan of every vector (what a flat index does per query)."""
    best_s, best_i, first = [], [], 0
    for x in arrays:
        s = x @ q[0]
        top = np.argpartition(-s, k)[:k]
        best_s.append(s[top])
        best_i.append(top + first)
        first += len(x)
    s, i = np.concatenate(best_s), np.concatenate(best_i)
    return i[np.argsort(-s)[:k]]


def latencies(search, queries: np.ndarray) -> tuple[float, float]:
    times = []
    for q in queries:
        t = time.perf_counter()
        search(q[None])
        times.append((time.perf_counter() - t) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def bench_index(n: int, dim: int, budget_gib: float, scratch: Path, n_queries: int, flat_queries: int) -> dict:
    import faiss

    from dcar.index import large as li

    out: dict = {"n": n, "dim": dim, "budget_gib": budget_gib, "threads": faiss.omp_get_max_threads()}
    folder = Path(tempfile.mkdtemp(prefix=f"bench-scale-{n}-{dim}-", dir=scratch))
    try:
        t = time.perf_counter()
        files = write_vectors(folder, n, dim)
        out["generate_s"] = time.perf_counter() - t
        queries = queries_like(dim, n_queries)

        t = time.perf_counter()
        _, truth = exact_search(files, queries, 10)
        out["flat"] = {"bytes": n * dim * 4, "batch_search_s": time.perf_counter() - t, "queries": n_queries}
        arrays = [np.load(f, mmap_mode="r") for f in files]
        p50, p99 = latencies(lambda q: flat_scan(arrays, q, 10), queries[:flat_queries])
        del arrays
        out["flat"].update(p50_ms=p50, p99_ms=p99, latency_queries=flat_queries)
        print(f"flat: {n * dim * 4 / 2**30:.2f} GiB of vectors; exact top-10 of {n_queries} queries in "
              f"{out['flat']['batch_search_s']:.1f} s; one query p50 {p50:.1f} ms p99 {p99:.1f} ms", flush=True)

        plan = li.plan_ivfpq(n, dim, int(budget_gib * 2**30))
        t = time.perf_counter()
        sample = li.sample_rows((np.load(f, mmap_mode="r") for f in files), n, plan.train_size)
        trained = li.train(plan, sample)
        train_s = time.perf_counter() - t
        del sample
        t = time.perf_counter()
        chunks = list(li.shard_chunks(files))
        half = max(1, len(chunks) // 2)
        parts = [folder / "part-00000.faiss", folder / "part-00001.faiss"]
        li.build_part(trained, chunks[:half], parts[0])
        li.build_part(trained, chunks[half:], parts[1])
        add_s = time.perf_counter() - t
        t = time.perf_counter()
        li.merge_parts(trained, parts, folder / "merged.faiss")
        merge_s = time.perf_counter() - t
        index = li.open_mmap(folder / "merged.faiss")
        disk = (folder / "merged.faiss").stat().st_size + (folder / "merged.ivfdata").stat().st_size
        ivf = faiss.extract_index_ivf(index)
        shards = li.ShardVectors(files)
        sweep = []
        for nprobe in (8, 16, 32, 64, 128):
            ivf.nprobe = nprobe
            r = recall(index.search(queries, 10)[1], truth)
            p50, p99 = latencies(lambda q: index.search(q, 10), queries)
            rr = recall(li.search_refined(index, shards, queries, 10)[1], truth)
            r50, r99 = latencies(lambda q: li.search_refined(index, shards, q, 10), queries)
            sweep.append({"nprobe": nprobe, "recall_at_10": r, "p50_ms": p50, "p99_ms": p99,
                          "refined_recall_at_10": rr, "refined_p50_ms": r50, "refined_p99_ms": r99})
            print(f"  nprobe {nprobe:4d}: recall@10 {r:.3f}  p50 {p50:.2f} ms  p99 {p99:.2f} ms | re-ranked x8 "
                  f"from the shards: recall@10 {rr:.3f}  p50 {r50:.2f} ms  p99 {r99:.2f} ms", flush=True)
        out["ivfpq"] = {"factory": plan.factory, "planned_bytes": plan.bytes, "disk_bytes": disk,
                        "train_points": plan.train_size, "train_s": train_s, "add_s": add_s, "merge_s": merge_s,
                        "sweep": sweep}
        print(f"ivfpq {plan.factory}: train {train_s:.1f} s on {plan.train_size:,} points, add {add_s:.1f} s, "
              f"merge {merge_s:.1f} s, {disk / 2**30:.3f} GiB on disk (planned {plan.bytes / 2**30:.3f})", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    out["peak_rss_gib"] = peak_rss_gib()
    print(f"peak RSS {out['peak_rss_gib']:.2f} GiB", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    r = sub.add_parser("ray")
    r.add_argument("--count", type=int, default=256)
    r.add_argument("--batch-size", type=int, default=32)
    i = sub.add_parser("index")
    i.add_argument("--n", type=int, default=1_000_000)
    i.add_argument("--dim", type=int, default=128)
    i.add_argument("--budget-gib", type=float, default=1.0)
    i.add_argument("--queries", type=int, default=500)
    i.add_argument("--flat-queries", type=int, default=30)
    i.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()))
    for p in (r, i):
        p.add_argument("--json", type=Path, help="Also write the numbers here.")
    args = ap.parse_args()
    if args.what == "ray":
        result = bench_ray(args.count, args.batch_size)
    else:
        result = bench_index(args.n, args.dim, args.budget_gib, args.scratch, args.queries, args.flat_queries)
    result["machine"] = f"{os.cpu_count()} CPUs (shared), {os.uname().machine}"
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
