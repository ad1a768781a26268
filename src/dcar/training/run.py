"""One training run from files to a run folder: what `dcar train` and `dcar demo` call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from rich.console import Console

import dcar
from dcar.atomic import write_json_atomic
from dcar.data.sources import load_entries
from dcar.distributed import ddp
from dcar.data.taxonomy import read_taxonomy
from dcar.errors import DcarError
from dcar.evaluation.encoders import weights_digest
from dcar.evaluation.evaluate import load_eval_dataset
from dcar.methods.registry import build_method
from dcar.training.config import TrainConfig
from dcar.training.loop import train
from dcar.training.selection import score_val


def taxonomy_from_entries(entries) -> dict[str, str] | None:
    """Entries that carry a meta-category (CSV/JSONL column, synthetic world) define a taxonomy."""
    pairs = {e.category: e.meta_category for e in entries if e.meta_category}
    return pairs or None


def run_training(
    method_name: str,
    model: str,
    train_source: Path,
    val_source: Path | None,
    images: Path | None,
    val_images: Path | None,
    taxonomy_file: Path | None,
    out: Path,
    method_overrides: dict[str, Any],
    train_overrides: dict[str, Any],
    resume: bool = False,
    console: Console | None = None,
) -> dict[str, Any]:
    from dcar.backbone import load_backbone

    console = console or Console(stderr=True)
    try:
        cfg = TrainConfig.from_dict(train_overrides)
    except (TypeError, ValueError) as err:
        raise DcarError(f"training config: {err}") from None
    world, cfg.device = ddp.init_from_env(cfg.device)  # under torchrun: join the ranks, one GPU each
    if cfg.device is None:
        cfg.device = "cuda" if torch.cuda.is_available() else "cpu"
    data = load_entries(train_source, images=images)
    entries = data.with_images()
    if not entries:
        raise DcarError(f"{train_source}: no training entry has an image (looked under {data.image_root})")
    if data.missing_images:
        console.print(f"[yellow]warning:[/yellow] {len(data.missing_images)} training images not found; skipped")
    taxonomy = read_taxonomy(taxonomy_file) if taxonomy_file else taxonomy_from_entries(entries)
    val = load_eval_dataset(val_source, val_images, "val") if val_source else None

    backbone = load_backbone(model, device=cfg.device)
    base_weights = weights_digest(backbone)  # before the method touches it: `dcar.load` checks it
    method = build_method(method_name, backbone, method_overrides, seed=cfg.seed)
    run_info = {
        "method": method_name,
        "method_config": method.config.to_dict(),
        "backbone": model,
        "backbone_weights": base_weights,
        "train_config": cfg.to_dict(),
        "data": {"train": str(Path(train_source).resolve()), "val": str(Path(val_source).resolve()) if val_source else None},
        "dcar_version": dcar.__version__,
    }
    try:
        result = train(
            method, entries, score_val(val, cfg.eval_batch_size) if val else None, cfg, out, run_info, taxonomy, resume, console
        )
    finally:
        ddp.shutdown()
    summary = {
        "best_epoch": result.best_epoch,
        "best_score": result.best_score,
        "seconds": result.seconds,
        "trainable_parameters": method.count_trainable(),
        "train_entries": len(entries),
        "skipped_images": result.skipped_images + len(data.missing_images),
        "history": result.history,
    }
    if world.is_main:
        write_json_atomic(summary, out / "train_summary.json")
    return summary
