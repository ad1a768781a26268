"""The training loop shared by every method: per-epoch schedule, best-on-val selection, logs,
atomic checkpoints and exact resume.

Determinism: each epoch reseeds torch and the data order from (seed, epoch), negatives are fixed
per entry, and the optimiser state is saved after every epoch, so a run killed and resumed with
--resume ends with the same tensors as an uninterrupted one (CPU, same seed).
"""

from __future__ import annotations

import contextlib
import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from safetensors.torch import load_file

from dcar.atomic import write_json_atomic
from dcar.errors import DcarError
from dcar.methods.base import RetrievalMethod
from dcar.training import checkpoint as ckpt
from dcar.training.config import TrainConfig
from dcar.data.records import Entry
from dcar.training.data import train_loader
from dcar.training.schedule import epoch_lr

Validator = Callable[[RetrievalMethod], dict[str, Any]]


@dataclass
class TrainResult:
    best_epoch: int
    best_score: float
    history: list[dict[str, Any]]
    skipped_images: int
    seconds: float


def make_optimizer(method: RetrievalMethod, cfg: TrainConfig) -> torch.optim.Optimizer:
    ref = method.config.optimizer
    name = (cfg.optimizer or ref.name).lower()
    lr = cfg.lr if cfg.lr is not None else ref.lr
    wd = cfg.weight_decay if cfg.weight_decay is not None else ref.weight_decay
    params = [p for p in method.parameters() if p.requires_grad]
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    raise DcarError(f"unknown optimiser {name!r} (sgd or adamw)")


def selection_score(metrics: dict[str, Any]) -> float:
    """Mean of image-to-text and text-to-image R@1: what best-on-val maximises."""
    return 0.5 * (metrics["i2t"]["R@1"] + metrics["t2i"]["R@1"])


def _autocast(cfg: TrainConfig, device: torch.device):
    if cfg.amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train(
    method: RetrievalMethod,
    train_entries: list[Entry],
    validate: Validator | None,
    cfg: TrainConfig,
    run_dir: Path,
    run_info: dict[str, Any],
    taxonomy: dict[str, str] | None = None,
    resume: bool = False,
    console: Console | None = None,
    stop_after_epochs: int | None = None,
) -> TrainResult:
    """Train ``method`` for ``cfg.epochs`` epochs, validating after each; returns the history.

    ``stop_after_epochs`` ends the process's work early (as a kill would), for resume tests.
    """
    console = console or Console(stderr=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(cfg.device or "cpu")
    method.to(device)
    if not method.trainable:
        raise DcarError(f"method {method.config.method} has no trainable parameters; use `dcar eval`")
    method.prepare_training(train_entries, taxonomy)
    optimizer = make_optimizer(method, cfg)
    state = {"epoch": 0, "best_score": float("-inf"), "best_epoch": -1, "history": [], "skipped_images": 0}
    if resume and (run_dir / ckpt.STATE_JSON).exists():
        state = _restore(method, optimizer, run_dir, run_info)
        console.print(f"resuming {run_dir} after epoch {state['epoch']}")
    elif (run_dir / ckpt.STATE_JSON).exists():
        raise DcarError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
    ckpt.write_run_file(run_dir, run_info)

    writer = _tensorboard(run_dir)
    start = time.perf_counter()
    epochs_done_here = 0
    for epoch in range(state["epoch"], cfg.epochs):
        if stop_after_epochs is not None and epochs_done_here >= stop_after_epochs:
            break
        lr = epoch_lr(epoch, _base_lr(method, cfg), cfg.epochs, cfg.warmup_epochs, cfg.warmup_lr)
        for group in optimizer.param_groups:
            group["lr"] = lr
        torch.manual_seed(cfg.seed * 1_000_003 + epoch)
        loader = train_loader(train_entries, method.image_transform(train=True), cfg.batch_size, cfg.seed * 1_000_003 + epoch, cfg.num_workers)
        budget = None if cfg.max_steps is None else cfg.max_steps - state.get("steps", 0)
        losses, skipped, steps = _run_epoch(method, optimizer, loader, cfg, device, epoch, console, budget)
        state["skipped_images"] += skipped
        state["steps"] = state.get("steps", 0) + steps
        row: dict[str, Any] = {"epoch": epoch + 1, "lr": lr, **losses}
        if validate is not None:
            method.eval()
            with torch.no_grad():
                metrics = validate(method)
            row.update(val_i2t_r1=metrics["i2t"]["R@1"], val_t2i_r1=metrics["t2i"]["R@1"])
            score = selection_score(metrics)
        else:  # nothing to select on: the last epoch is the result
            score = float(epoch + 1)
        row["score"] = score
        state["history"].append(row)
        state["epoch"] = epoch + 1
        trainable = method.trainable_state_dict()
        if score > state["best_score"]:
            state["best_score"], state["best_epoch"] = score, epoch + 1
            ckpt.save_tensors_atomic(trainable, run_dir / ckpt.BEST, {"epoch": str(epoch + 1)})
        _checkpoint(trainable, optimizer, state, run_dir)
        _log(run_dir, writer, row)
        epochs_done_here += 1
        console.print(_row_text(row, cfg.epochs))
        if cfg.max_steps is not None and state["steps"] >= cfg.max_steps:
            console.print(f"stopped after {state['steps']} steps (--max-steps)")
            break
    if writer is not None:
        writer.close()
    return TrainResult(state["best_epoch"], state["best_score"], state["history"], state["skipped_images"], time.perf_counter() - start)


def _base_lr(method: RetrievalMethod, cfg: TrainConfig) -> float:
    return cfg.lr if cfg.lr is not None else method.config.optimizer.lr


def _run_epoch(method, optimizer, loader, cfg, device, epoch, console, budget=None) -> tuple[dict[str, float], int, int]:
    """One pass over ``loader`` (at most ``budget`` steps): mean losses, images skipped, steps run."""
    method.train()
    sums: dict[str, float] = {}
    steps = skipped = 0
    columns = (TextColumn(f"epoch {epoch + 1}/{cfg.epochs}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[loss]}"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("train", total=len(loader), loss="")
        for batch, n_skipped in loader:
            if budget is not None and steps >= budget:
                break
            skipped += n_skipped
            if batch is None or len(batch.entries) < 2:
                progress.advance(task)
                continue
            with _autocast(cfg, device):
                out = method.training_losses(batch)
            optimizer.zero_grad(set_to_none=True)
            out["loss"].backward()
            optimizer.step()
            for k, v in out.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            steps += 1
            progress.update(task, advance=1, loss=f"loss {sums['loss'] / steps:.4f}")
    if steps == 0:
        raise DcarError("no training step ran: every batch was empty (are the training images readable?)")
    return {k: v / steps for k, v in sums.items()}, skipped, steps


def _checkpoint(trainable, optimizer, state, run_dir: Path) -> None:
    """Last tensors, then optimiser, then the counter: the counter only moves once both exist."""
    tensors, meta = ckpt.optimizer_to_tensors(optimizer)
    ckpt.save_tensors_atomic(trainable, run_dir / ckpt.LAST)
    ckpt.save_tensors_atomic(tensors or {"_empty": torch.zeros(1)}, run_dir / ckpt.STATE)
    write_json_atomic({**state, "optimizer": meta}, run_dir / ckpt.STATE_JSON)


def _restore(method, optimizer, run_dir: Path, run_info: dict[str, Any]) -> dict[str, Any]:
    previous = ckpt.read_run(run_dir)
    if previous.get("method") == run_info.get("method") and isinstance(previous.get("method_config"), dict):
        # Fill fields added to the config since the run started with their defaults, so a run from
        # an earlier version resumes when nothing it set has changed.
        from dcar.methods.registry import make_config

        previous["method_config"] = make_config(previous["method"], previous["method_config"]).to_dict()
    for key in ("method", "method_config", "backbone"):
        if previous.get(key) != run_info.get(key):
            raise DcarError(f"{run_dir}: --resume with a different {key} than the run was started with")
    state = json.loads((run_dir / ckpt.STATE_JSON).read_text(encoding="utf-8"))
    method.load_trainable_state_dict(load_file(str(run_dir / ckpt.LAST)))
    tensors = {k: v for k, v in load_file(str(run_dir / ckpt.STATE)).items() if k != "_empty"}
    ckpt.optimizer_from_tensors(optimizer, tensors, state.pop("optimizer"))
    return state


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is a dependency, but a broken install should not stop training
        return None
    return SummaryWriter(str(run_dir / "tb"))


def _log(run_dir: Path, writer, row: dict[str, Any]) -> None:
    path = run_dir / "metrics.csv"
    rows = []
    if path.exists():
        with path.open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r["epoch"]) < row["epoch"]]  # drop rows a kill left behind
    rows.append({k: row[k] for k in row})
    fields = list(dict.fromkeys(k for r in rows for k in r))
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)
    if writer is not None:
        for k, v in row.items():
            if k != "epoch" and isinstance(v, (int, float)):
                writer.add_scalar(k, v, row["epoch"])
        writer.flush()


def _row_text(row: dict[str, Any], epochs: int) -> str:
    parts = [f"epoch {row['epoch']}/{epochs}", f"lr {row['lr']:.2e}", f"loss {row['loss']:.4f}"]
    if "val_i2t_r1" in row:
        parts.append(f"val R@1 i2t {row['val_i2t_r1']:.1f} t2i {row['val_t2i_r1']:.1f}")
    return "  ".join(parts)
