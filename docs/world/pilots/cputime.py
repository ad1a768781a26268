"""Steps/s of the synthetic-small recipe on the CPU cores this process may use (pin with taskset)."""
import csv, os, sys, tempfile, time
import torch
from dcar.pretrain import get_preset, train

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 24
out = tempfile.mkdtemp()
p = get_preset("synthetic-small", log_every=4, eval_every=10**9)
print("cores allowed:", len(os.sched_getaffinity(0)), "torch threads:", p.threads, "workers:", p.workers, flush=True)
t = time.time()
train(p, out, max_steps=steps, progress=False, device="cpu")
rows = list(csv.DictReader(open(os.path.join(out, "train_log.csv"))))
rates = [float(r["samples_per_s"]) for r in rows if r["samples_per_s"]][1:]  # skip warm-up row
mean = sum(rates) / len(rates)
print(f"samples/s per 4-step window: {rates}")
print(f"mean {mean:.1f} samples/s -> {p.steps} steps x {p.batch_size} = {p.steps * p.batch_size / mean / 60:.1f} min")
