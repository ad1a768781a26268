"""Pilot runs of the synthetic-v2 recipe with fewer steps (docs/world/v2.md).

  python docs/world/v2/pilot.py NAME OUT [KEY=VALUE ...]     (values are JSON: steps=120 lr=0.001)

Each pilot is ``synthetic-v2`` with the given overrides, trained on 1 torch thread (faster than 2 on
cores shared with other jobs), then checked with experiments/calibrate_world.py --cheap.
"""

import json
import sys

from dcar.pretrain import get_preset, train

PILOTS = {
    # the recipe's schedule shrunk to ~15k pairs (about 11 min at the ~24 pairs/s measured here on busy cores)
    "p1": {"steps": 120, "batch_size": 128, "warmup": 10, "eval_every": 60, "ckpt_every": 20},
}

if __name__ == "__main__":
    name, out, *kv = sys.argv[1:]
    overrides = {**PILOTS.get(name, {}), "threads": 1, "workers": 0}
    overrides.update({k: json.loads(v) for k, v in (a.split("=", 1) for a in kv)})
    print(name, overrides, flush=True)
    print(train(get_preset("synthetic-v2", **overrides), out, progress=False), flush=True)
