"""Pilot runs of the synthetic-v2 recipe with fewer steps (docs/world/v2.md).

  python docs/world/v2/pilot.py NAME OUT [KEY=VALUE ...]     (values are JSON: steps=120 lr=0.001)
  python docs/world/v2/pilot.py export RUN_DIR DEST            (a running recipe's last checkpoint as a model folder)

A ``world.KEY=VALUE`` override changes the pretraining domain (``pretrain-v2``) for this run only,
e.g. ``world.name_prob_range=[1,1] world.name_noise=0`` (every alt-text names its subcategory).

Each pilot is ``synthetic-v2`` with the given overrides, trained on 1 torch thread (faster than 2 on
cores shared with other jobs), then checked with experiments/calibrate_world.py --cheap.
"""

import json
import sys

from dcar.pretrain import get_preset, train

PILOTS = {
    # the recipe's schedule shrunk to ~15k pairs (about 11 min at the ~24 pairs/s measured here on busy cores)
    "p1": {"steps": 120, "batch_size": 128, "warmup": 10, "eval_every": 60, "ckpt_every": 20},
    # p1 learnt next to nothing in 120 updates: smaller batches, 4x the updates for 1.7x the pairs
    "p2": {"steps": 400, "batch_size": 64, "warmup": 20, "eval_every": 200, "ckpt_every": 50},
}



def _tuple(v):
    return tuple(v) if isinstance(v, list) else v


def export(run_dir: str, dest: str) -> None:
    """Write the model of RUN_DIR/checkpoint.safetensors (synthetic-v2) as an open_clip local-dir
    folder, to check a run's trajectory while it goes on."""
    from safetensors import safe_open

    from dcar.checkpoint import load_checkpoint
    from dcar.pretrain.model import save_local_dir
    from dcar.pretrain.train import AUX_HEAD, build_training_model, make_optimizer

    ckpt = f"{run_dir}/checkpoint.safetensors"
    with safe_open(ckpt, framework="pt") as f:  # a run with a tag loss carries its head: build it too
        tagged = f"model.{AUX_HEAD}.weight" in f.keys()
    p = get_preset("synthetic-v2", aux_labels=1.0 if tagged else 0.0)
    model = build_training_model(p)
    step, info = load_checkpoint(ckpt, model, make_optimizer(model, p))
    if tagged:
        delattr(model, AUX_HEAD)
    save_local_dir(model, p.model_cfg, p.image_size, dest, {"checkpoint_step": step, **info})
    print(f"step {step} -> {dest}")


if __name__ == "__main__":
    if sys.argv[1] == "export":
        export(*sys.argv[2:4])
        sys.exit(0)
    name, out, *kv = sys.argv[1:]
    overrides = {**PILOTS.get(name, {}), "threads": 1, "workers": 0}
    pairs = [a.split("=", 1) for a in kv]
    overrides.update({k: json.loads(v) for k, v in pairs if not k.startswith("world.")})
    world = {k[6:]: _tuple(json.loads(v)) for k, v in pairs if k.startswith("world.")}
    if world:  # the DataLoader workers are forked, so they see the patched domain too
        from dataclasses import replace

        from dcar.world.domains import DOMAINS, PRETRAIN_V2

        DOMAINS[PRETRAIN_V2] = replace(DOMAINS[PRETRAIN_V2], **world)
    print(name, overrides, world, flush=True)
    print(train(get_preset("synthetic-v2", **overrides), out, progress=False), flush=True)
