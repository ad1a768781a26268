"""The retrieval service, measured side by side in one run.

1. Index build throughput against plain `dcar embed` on the same shared flower images (same
   model, both through the CLI in this process, alternating, best of ``--repeats``).
2. Vector search on synthetic unit vectors at the model's dimension (clustered, like real
   embeddings; queries drawn apart from the indexed points), at 100k and 1M: build time and peak
   memory (each in a fresh subprocess, RSS high-water mark over the process's baseline with the
   vectors loaded), single-query latency p50/p99 exact and approximate, text queries including
   the text encoding, and the approximate index's recall@10 against exact search.
3. A bounded load test of `dcar serve` (a real subprocess on 127.0.0.1): ``--requests`` requests at
   concurrency ``--concurrency`` (text searches and item searches), throughput, p50/p99, errors.

Usage: python benchmarks/bench_service.py [--count 256] [--sizes 100000 1000000] [--requests 2000]
       [--concurrency 8] [--model builtin:synthetic-small] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DCAR_SHARED_DATA", REPO.parent / "shared" / "data"))
TEXTS = ["a purple flower with long petals", "This is a sunflower.", "a red rose in a garden", "white lily",
         "an orange flower with a dark centre", "pink blossoms on a branch", "a yellow daisy", "blue iris"]


# ----------------------------------------------------------------------------- 1. build vs embed
def cli(args: list[str]) -> float:
    from dcar.cli import main

    start = time.perf_counter()
    try:
        main(args)
    except SystemExit as e:
        if e.code:
            raise
    return time.perf_counter() - start


def build_vs_embed(model: str, count: int, repeats: int, work: Path) -> dict:
    paths = sorted((SHARED / "images" / "flower" / "test").glob("*.jpg"))[:count]
    if not paths:
        raise SystemExit(f"no flower images under {SHARED}")
    listing = work / "flowers.txt"
    listing.write_text("".join(f"{p}\n" for p in paths))
    for p in paths:  # same page-cache state for both
        p.read_bytes()
    times: dict[str, list[float]] = {"embed": [], "index build": []}
    for r in range(repeats + 1):  # the first round warms up both
        t_embed = cli(["embed", "--model", model, "--images", str(listing), "--out", str(work / f"e{r}.npy"), "--device", "cpu"])
        t_build = cli(["index", "build", "--model", model, "--images", str(listing), "--out", str(work / f"idx{r}"),
                       "--device", "cpu", "--no-progress"])
        if r:
            times["embed"].append(t_embed)
            times["index build"].append(t_build)
    same = np.allclose(np.load(work / "e1.npy"), _stored(work / "idx1"), atol=1e-6)
    best = {k: min(v) for k, v in times.items()}
    return {"images": len(paths), "embed_s": best["embed"], "build_s": best["index build"],
            "embed_img_s": len(paths) / best["embed"], "build_img_s": len(paths) / best["index build"],
            "ratio_build_over_embed": best["embed"] / best["index build"], "same_features": bool(same),
            "flower_index": str(work / "idx1"), "listing": str(listing)}


def _stored(index_dir: Path) -> np.ndarray:
    return np.concatenate([np.load(p) for p in sorted((index_dir / "shards").glob("images-*.npy"))])


# ----------------------------------------------------------------------------- 2. vectors
NOISE = 1.0  # per dimension, against centres of norm ~sqrt(dim): clusters overlap, as real
# embeddings do (at 0.35 every neighbour sits in its own tight cluster and IVF looks perfect at
# nprobe 8; at 1.5 the points are near uniform and no inverted file helps)


def clustered(n: int, dim: int, seed: int, centres: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), np.float32)
    for s in range(0, n, 20_000):  # small chunks: temporaries stay small next to the vectors
        m = min(20_000, n - s)
        x = centres[rng.integers(0, len(centres), m)] + NOISE * rng.standard_normal((m, dim), dtype=np.float32)
        out[s : s + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> float:
    """Reset the RSS high-water mark (Linux >= 4.0) and return the current RSS in MB."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    return _status_mb("VmRSS")


def vector_case(n: int, kind: str, dim: int, model: str) -> dict:
    """Runs in its own process: build one index of ``n`` vectors, measure it."""
    import torch

    torch.set_num_threads(2)
    from dcar.api import load
    from dcar.index.backend import FaissBackend, exact_neighbours, recall_at_k, set_search_threads

    centres = np.random.default_rng(1).standard_normal((2000, dim)).astype(np.float32)
    x = clustered(n, dim, 2, centres)
    queries = clustered(500, dim, 3, centres)
    encoder = load(model, device="cpu")
    encoder.encode_text(["warm up"])
    base = reset_peak()
    start = time.perf_counter()
    backend = FaissBackend.create(x, kind, exact_max=n if kind == "flat" else 1)
    recall = backend.tune(x)  # part of the build: nprobe / efSearch chosen on the catalog's vectors
    build_s = time.perf_counter() - start
    peak = _status_mb("VmHWM") - base
    truth = exact_neighbours(x, queries, 10)
    measured = recall_at_k(backend.search(queries, 10)[1], truth)
    set_search_threads(1)  # as `dcar serve` runs: one query per request, one thread each
    torch.set_num_threads(1)
    lat, lat_text = [], []
    for i, q in enumerate(queries[:200]):
        t = time.perf_counter()
        backend.search(q[None], 10)
        lat.append(time.perf_counter() - t)
        t = time.perf_counter()
        v = encoder.encode_text([TEXTS[i % len(TEXTS)] + f" {i}"]).numpy()
        backend.search(v, 10)
        lat_text.append(time.perf_counter() - t)
    ms = lambda v, p: float(np.percentile(v, p) * 1000)  # noqa: E731
    return {"n": n, "kind": backend.kind, "params": backend.params(), "build_s": build_s, "peak_mb_over_vectors": peak,
            "vectors_mb": x.nbytes / 2**20, "p50_ms": ms(lat, 50), "p99_ms": ms(lat, 99),
            "text_p50_ms": ms(lat_text, 50), "text_p99_ms": ms(lat_text, 99),
            "recall_at_10_tuned": recall, "recall_at_10_new_queries": measured}


def vectors(sizes: list[int], dim: int, model: str) -> list[dict]:
    rows = []
    for n in sizes:
        for kind in ("flat", "ivf") + (("hnsw",) if n <= 200_000 else ()):
            cmd = [sys.executable, __file__, "--_case", str(n), kind, str(dim), "--model", model]
            done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ)
            if done.returncode:
                raise SystemExit(f"vector case {n} {kind} failed:\n{done.stderr[-3000:]}")
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"  {n:>9,} {rows[-1]['kind']:<5} build {rows[-1]['build_s']:.1f} s", file=sys.stderr, flush=True)
    return rows


# ----------------------------------------------------------------------------- 3. load test
def load_test(index_dir: str, requests: int, concurrency: int) -> dict:
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    server = subprocess.Popen([sys.executable, "-m", "dcar", "serve", index_dir, "--port", str(port), "--device", "cpu"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                count = httpx.get(base + "/api/health", timeout=2).json()["count"]
                break
            except httpx.HTTPError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"dcar serve did not start: {server.stderr.read().decode()[-2000:]}")
                time.sleep(0.2)
        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()
        next_i = iter(range(requests))

        def worker() -> None:
            with httpx.Client(base_url=base, timeout=30) as client:
                for i in next_i:  # shared iterator: each request index is taken once
                    url = (f"/api/search/text?q={TEXTS[i % len(TEXTS)]} {i}&k=10" if i % 10 < 7
                           else f"/api/search/item/{i % count}?k=10")
                    t = time.perf_counter()
                    try:
                        r = client.get(url)
                        ok = r.status_code == 200 and len(r.json()["results"]) == min(10, count)
                        why = f"{r.status_code}"
                    except httpx.HTTPError as err:
                        ok, why = False, type(err).__name__
                    with lock:
                        latencies.append(time.perf_counter() - t)
                        if not ok:
                            errors.append(why)

        start = time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
        alive = server.poll() is None
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {"requests": len(latencies), "concurrency": concurrency, "seconds": wall, "throughput_rps": len(latencies) / wall,
            "p50_ms": float(np.percentile(latencies, 50) * 1000), "p99_ms": float(np.percentile(latencies, 99) * 1000),
            "errors": len(errors), "error_kinds": sorted(set(errors)), "server_alive_after": alive}


# ----------------------------------------------------------------------------- report
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="builtin:synthetic-small")
    p.add_argument("--count", type=int, default=256, help="flower images for part 1")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--_case", nargs=3, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._case:
        n, kind, dim = args._case
        print(json.dumps(vector_case(int(n), kind, int(dim), args.model)))
        return
    from dcar.api import load

    dim = load(args.model, device="cpu").dim
    work = Path(tempfile.mkdtemp(prefix="bench_service_"))
    print(f"model {args.model} (dim {dim}); {os.cpu_count()} CPUs; work folder {work}", file=sys.stderr)
    build = build_vs_embed(args.model, args.count, args.repeats, work)
    vec = vectors(args.sizes, dim, args.model)
    serve = load_test(build["flower_index"], args.requests, args.concurrency)

    print(f"\n1. {build['images']} shared flower images, {args.model}, best of {args.repeats}:")
    print(f"   dcar embed        {build['embed_s']:6.1f} s  {build['embed_img_s']:6.1f} images/s")
    print(f"   dcar index build  {build['build_s']:6.1f} s  {build['build_img_s']:6.1f} images/s"
          f"   ratio build/embed throughput {build['ratio_build_over_embed']:.2f}   same features: {build['same_features']}")
    print(f"\n2. synthetic unit vectors, dim {dim}; latency of one query (k=10); text = encode + search:")
    print(f"   {'n':>9} {'kind':<5} {'params':<24} {'build s':>8} {'peak MB':>8} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'text p50':>8} {'text p99':>8} {'recall@10':>9}")
    for r in vec:
        params = ",".join(f"{k}={v}" for k, v in r["params"].items()) or "-"
        recall = "exact" if r["kind"] == "flat" else f"{r['recall_at_10_new_queries']:.3f}"
        print(f"   {r['n']:>9,} {r['kind']:<5} {params:<24} {r['build_s']:8.1f} {r['peak_mb_over_vectors']:8.0f} "
              f"{r['p50_ms']:7.2f} {r['p99_ms']:7.2f} {r['text_p50_ms']:8.2f} {r['text_p99_ms']:8.2f} {recall:>9}")
    for n in args.sizes:
        flat = next(r for r in vec if r["n"] == n and r["kind"] == "flat")
        for r in (r for r in vec if r["n"] == n and r["kind"] != "flat"):
            print(f"   {n:,} {r['kind']}: p50 latency {flat['p50_ms'] / r['p50_ms']:.1f}x faster than exact, "
                  f"build {r['build_s'] / max(flat['build_s'], 1e-9):.0f}x longer, recall@10 {r['recall_at_10_new_queries']:.3f}")
    print(f"\n3. dcar serve on 127.0.0.1 ({build['images']} images): {serve['requests']} requests at concurrency "
          f"{serve['concurrency']} (70% text search, 30% item search): {serve['throughput_rps']:.1f} requests/s, "
          f"p50 {serve['p50_ms']:.1f} ms, p99 {serve['p99_ms']:.1f} ms, errors {serve['errors']} {serve['error_kinds']}, "
          f"server alive after: {serve['server_alive_after']}")
    if args.json:
        args.json.write_text(json.dumps({"build": build, "vectors": vec, "serve": serve}, indent=1))


if __name__ == "__main__":
    main()
