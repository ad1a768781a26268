"""Pilot sweep used to tune the world and the recipe (run once on a lent GPU machine).

Each variant is the full synthetic-small recipe with a few overrides (recipe fields, or the
pretraining domain's name_prob/name_noise), trained on CUDA, then diagnosed with
dcar.world.diagnose. Usage: python sweep.py OUTDIR [VARIANT ...]  (or `one OUTDIR NAME`).
Results: OUTDIR/NAME/{train_log.csv,metrics.json,diagnose.json,model/}.
"""

import dataclasses
import json
import os
import subprocess
import sys
import time

VARIANTS = {
    "A_base": {},
    "B_lr2e-3": {"lr": 2e-3},
    "C_lr5e-4": {"lr": 5e-4},
    "D_name15": {"world": {"name_prob": 0.15, "name_noise": 0.3}},
    "E_name40": {"world": {"name_prob": 0.4, "name_noise": 0.2}},
    "F_4000steps": {"steps": 4000, "workers": 3},
}


def one(out_root: str, name: str) -> None:
    import torch

    from dcar.pretrain import get_preset, train
    from dcar.world import domains
    from dcar.world.diagnose import diagnose

    over = dict(VARIANTS[name])
    world = over.pop("world", {})
    if world:
        domains.DOMAINS["pretrain"] = dataclasses.replace(domains.DOMAINS["pretrain"], **world)
    over.setdefault("workers", 2)
    if os.environ.get("SWEEP_DRY"):  # local check of the plumbing only
        over.update(steps=4, warmup=1, eval_every=2, eval_n=16, batch_size=8, corpus=64, workers=0)
    p = get_preset("synthetic-small", threads=1, **over)
    out = os.path.join(out_root, name)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    t = time.time()
    res = train(p, out, progress=False, device=dev)
    res["gpu_train_s"] = time.time() - t
    rep = diagnose("open_clip:local-dir:" + os.path.join(out, "model"), device=dev, n_pretrain=32 if os.environ.get("SWEEP_DRY") else 1000)
    rep["variant"] = {"name": name, "overrides": VARIANTS[name]}
    with open(os.path.join(out, "diagnose.json"), "w") as f:
        json.dump({"train": res, "diagnose": rep}, f, indent=1)


if __name__ == "__main__":
    if sys.argv[1] == "one":
        one(sys.argv[2], sys.argv[3])
    else:
        out_root, names = sys.argv[1], sys.argv[2:] or list(VARIANTS)
        procs = [subprocess.Popen([sys.executable, __file__, "one", out_root, n],
                                  stdout=open(os.path.join(out_root, f"{n}.out"), "w"), stderr=subprocess.STDOUT)
                 for n in names]
        for p in procs:
            p.wait()
