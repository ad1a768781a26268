"""Named training recipes for `dcar pretrain --preset NAME`.

``synthetic-small`` is the recipe of the shipped ``builtin:synthetic-small`` model: sized to train
in about an hour on 2 CPU cores. ``synthetic-v2`` is the world-v2 recipe (docs/world/v2.md).
``tiny`` exists for smoke tests (seconds).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from dcar.errors import DcarError


def clip_config(embed_dim: int, image_size: int, patch: int, v_width: int, v_layers: int,
                t_width: int, t_layers: int) -> dict:
    """An open_clip CLIP config: ViT image tower, standard tokenizer (vocab 49,408, context 77)."""
    return {
        "embed_dim": embed_dim,
        "vision_cfg": {"image_size": image_size, "layers": v_layers, "width": v_width,
                       "patch_size": patch, "head_width": 32},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": t_width,
                     "heads": max(1, t_width // 32), "layers": t_layers},
    }


@dataclass(frozen=True)
class Preset:
    name: str
    model_cfg: dict
    image_size: int = 64
    batch_size: int = 256
    steps: int = 2500
    lr: float = 5e-4
    min_lr: float = 1e-5
    weight_decay: float = 0.1
    warmup: int = 100
    grad_clip: float = 1.0
    corpus: int = 100_000  # pretraining pairs (indices of the world's pretrain/train split)
    seed: int = 0  # model init
    world_seed: int = 0  # which world (dcar.world sample seed)
    workers: int = 1  # DataLoader processes rendering batches on the fly
    threads: int = 2  # torch threads in the training process
    ckpt_every: int = 100
    eval_every: int = 250
    eval_n: int = 500  # held-out pairs (pretrain/test split) for the in-training R@1
    log_every: int = 10
    extra: dict = field(default_factory=dict)
    domain: str = "pretrain"  # the world's pretraining domain (dcar.world.domains): pretrain or pretrain-v2
    # Weight of an auxiliary tag loss: a linear head on the image embedding predicts the pair's
    # subcategory (cross-entropy), as tag-supervised pretraining does. It stands in for the scale a
    # real CLIP's image tower learnt from (docs/world/v2.md, "Tags"); the head is dropped at export,
    # and the text tower still learns names only from the alt-text. 0 = contrastive only.
    aux_labels: float = 0.0

    def fingerprint(self) -> str:
        """A hash of everything that changes the trained weights (resume refuses a mismatch)."""
        keep = {k: v for k, v in asdict(self).items()
                if k not in ("workers", "threads", "ckpt_every", "eval_every", "eval_n", "log_every")}
        if keep["domain"] == "pretrain":  # added with world v2: v1 recipes keep their fingerprints
            del keep["domain"]
        if not keep["aux_labels"]:  # added later: recipes without it keep their fingerprints
            del keep["aux_labels"]
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("synthetic-small", clip_config(128, 64, 16, 192, 6, 128, 4)),
        # World v2 (docs/world/v2.md): 96 px images in 36 patches of 16 px; 1,600 steps of 256
        # alt-text pairs (about 2 passes over 200k), sized for about an hour on 2 quiet CPU cores.
        Preset(
            "synthetic-v2",
            clip_config(128, 96, 16, 192, 6, 128, 4),
            image_size=96, steps=1600, corpus=200_000, domain="pretrain-v2", eval_every=200, ckpt_every=25,
            aux_labels=1.0,
        ),
        Preset(
            "tiny",
            clip_config(32, 32, 8, 64, 2, 64, 2),
            image_size=32, batch_size=16, steps=6, warmup=2, corpus=256, workers=0, threads=1,
            ckpt_every=2, eval_every=3, eval_n=32, log_every=1,
        ),
    )
}


def get_preset(name: str, **overrides) -> Preset:
    try:
        base = PRESETS[name]
    except KeyError:
        raise DcarError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}") from None
    if not overrides:
        return base
    return Preset(**{**asdict(base), **overrides})
