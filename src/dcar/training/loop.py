"""The training loop shared by every method: per-epoch schedule, best-on-val selection, logs,
atomic checkpoints and exact resume.

Determinism: one run seed (``TrainConfig.seed``) drives everything random. The trainable
parameters are initialised from it (``build_method(..., seed=)``), each epoch reseeds torch and the
data order from (seed, epoch), and negatives are drawn once per entry from it. The optimiser state
is saved after every epoch, so two runs with one seed end equal on CPU, and a run killed and
resumed with --resume ends with the same tensors as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from dcar.atomic import write_csv_atomic
from dcar.distributed import ddp
from dcar.errors import DcarError
from dcar.methods.base import RetrievalMethod
from dcar import checkpoint as ckpt
from dcar.training.config import TrainConfig
from dcar.training.resume import commit_epoch, fresh_state, restore
from dcar.data.records import Entry
from dcar.training.data import train_loader
from dcar.training.schedule import epoch_lr
from dcar.training.selection import ValScorer, selection_score

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


def _autocast(cfg: TrainConfig, device: torch.device):
    if cfg.amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train(
    method: RetrievalMethod,
    train_entries: list[Entry],
    score_val: ValScorer | None,
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
    console = ddp.console_for_rank(console or Console(stderr=True))
    is_main = ddp.world().is_main  # under torchrun only rank 0 validates and writes
    run_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(cfg.device or "cpu")
    method.to(device)
    if not method.trainable:
        raise DcarError(f"method {method.config.method} has no trainable parameters; use `dcar eval`")
    method.prepare_training(train_entries, taxonomy, cfg.seed)
    optimizer = make_optimizer(method, cfg)
    state = fresh_state()
    if resume and (run_dir / ckpt.STATE_JSON).exists():
        state = restore(method, optimizer, run_dir, run_info, cfg)
        write_metrics(run_dir, state["history"])  # a kill may have come between commit and log
        console.print(f"resuming {run_dir} after epoch {state['epoch']}")
    elif (run_dir / ckpt.STATE_JSON).exists():
        raise DcarError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
    elif is_main:
        ckpt.write_run_file(run_dir, run_info)  # only a fresh start: a resumed run keeps its record
    step = ddp.wrap(method)

    writer = _tensorboard(run_dir) if is_main else None
    start = time.perf_counter()
    epochs_done_here = 0
    for epoch in range(state["epoch"], cfg.epochs):
        if stop_after_epochs is not None and epochs_done_here >= stop_after_epochs:
            break
        row = _train_epoch(method, step, optimizer, train_entries, cfg, device, epoch, state, run_dir, console)
        if score_val is not None and is_main:
            method.eval()
            with torch.no_grad():
                metrics = score_val(method)
            row.update(val_i2t_r1=metrics["i2t"]["R@1"], val_t2i_r1=metrics["t2i"]["R@1"])
            score = selection_score(metrics)
        else:  # nothing to select on: the last epoch is the result
            score = float(epoch + 1)
        row["score"] = score
        state["history"].append(row)
        state["epoch"] = epoch + 1
        improved = score > state["best_score"]
        if improved:
            state["best_score"], state["best_epoch"] = score, epoch + 1
        if is_main:
            commit_epoch(method, optimizer, state, run_dir, improved)
            _log(run_dir, writer, state["history"])
        epochs_done_here += 1
        console.print(_row_text(row, cfg.epochs))
        if cfg.max_steps is not None and state["steps"] >= cfg.max_steps:
            console.print(f"stopped after {state['steps']} steps (--max-steps)")
            break
    if writer is not None:
        writer.close()
    return TrainResult(state["best_epoch"], state["best_score"], state["history"], state["skipped_images"], time.perf_counter() - start)


def _train_epoch(method, step, optimizer, entries, cfg: TrainConfig, device, epoch: int, state: dict, run_dir: Path, console) -> dict[str, Any]:
    """One epoch of optimiser steps; updates the step counters in ``state``; returns its log row."""
    lr = epoch_lr(epoch, _base_lr(method, cfg), cfg.epochs, cfg.warmup_epochs, cfg.warmup_lr)
    for group in optimizer.param_groups:
        group["lr"] = lr
    torch.manual_seed(cfg.seed * 1_000_003 + epoch)
    make_loader = ddp.train_loader if ddp.world().distributed else train_loader
    loader = make_loader(entries, method.image_transform(train=True), cfg.batch_size, cfg.seed * 1_000_003 + epoch, cfg.num_workers)
    budget = None if cfg.max_steps is None else cfg.max_steps - state["steps"]
    run = _run_epoch(method, step, optimizer, loader, cfg, device, epoch, console, budget, state["steps"], run_dir)
    state["skipped_images"] += run.skipped
    state["steps"] += run.steps
    state["nonfinite_skipped"] += run.nonfinite
    if not all(bool(torch.isfinite(p).all()) for p in method.parameters() if p.requires_grad):
        raise DcarError(
            f"epoch {epoch + 1}: the trained parameters became non-finite (learning rate {lr:g} too high?); "
            f"training stopped, {run_dir} keeps epoch {epoch}"
        )
    return {"epoch": epoch + 1, "lr": lr, **run.losses, "unreadable_images": run.skipped, "nonfinite_skipped": run.nonfinite}


def _base_lr(method: RetrievalMethod, cfg: TrainConfig) -> float:
    return cfg.lr if cfg.lr is not None else method.config.optimizer.lr


@dataclass
class EpochRun:
    losses: dict[str, float]  # mean of each loss over the steps taken
    skipped: int  # images that could not be read
    steps: int  # optimiser steps taken
    nonfinite: int  # steps skipped for a non-finite loss or gradient (--skip-nonfinite)


def _run_epoch(method, step, optimizer, loader, cfg, device, epoch, console, budget, steps_before, run_dir) -> EpochRun:
    """One pass over ``loader``, at most ``budget`` steps.

    A non-finite loss or gradient stops training with one line naming the step (the run folder
    keeps the previous epoch), or, with ``cfg.skip_nonfinite``, skips that step and counts it.
    """
    method.train()
    sums: dict[str, float] = {}
    steps = skipped = nonfinite = 0
    params = [p for p in method.parameters() if p.requires_grad]
    columns = (TextColumn(f"epoch {epoch + 1}/{cfg.epochs}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[loss]}"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("train", total=len(loader), loss="")
        for batch_number, (batch, n_skipped) in enumerate(loader, 1):
            if budget is not None and steps >= budget:
                break
            skipped += n_skipped
            if not ddp.batch_usable(0 if batch is None else len(batch.entries), device):
                progress.advance(task)
                continue
            with _autocast(cfg, device):
                out = step(batch)
            optimizer.zero_grad(set_to_none=True)
            loss = out["loss"]
            problem = "loss" if not torch.isfinite(loss) else None
            if problem is None:
                loss.backward()
                if not all(bool(torch.isfinite(p.grad).all()) for p in params if p.grad is not None):
                    problem = "gradient"
            if problem is not None:
                if not cfg.skip_nonfinite:
                    raise DcarError(
                        f"non-finite {problem} (loss {float(loss.detach())}) at step {steps_before + steps + nonfinite + 1} "
                        f"(epoch {epoch + 1}, batch {batch_number}): training stopped, {run_dir} keeps epoch {epoch}; "
                        "lower --lr, check the data, or pass --skip-nonfinite to skip such steps"
                    )
                nonfinite += 1
                optimizer.zero_grad(set_to_none=True)
                progress.advance(task)
                continue
            optimizer.step()
            for k, v in out.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            steps += 1
            progress.update(task, advance=1, loss=f"loss {sums['loss'] / steps:.4f}")
    if steps == 0:
        why = f"all {nonfinite} had a non-finite loss or gradient" if nonfinite else "every batch was empty (are the training images readable?)"
        raise DcarError(f"epoch {epoch + 1}: no training step ran: {why}")
    return EpochRun(ddp.mean_over_ranks({k: v / steps for k, v in sums.items()}, device), skipped, steps, nonfinite)


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is a dependency, but a broken install should not stop training
        return None
    return SummaryWriter(str(run_dir / "tb"))


def _log(run_dir: Path, writer, history: list[dict[str, Any]]) -> None:
    """metrics.csv from the committed history, and the newest row to TensorBoard."""
    write_metrics(run_dir, history)
    if writer is not None:
        row = history[-1]
        for k, v in row.items():
            if k != "epoch" and isinstance(v, (int, float)):
                writer.add_scalar(k, v, row["epoch"])
        writer.flush()


def write_metrics(run_dir: Path, history: list[dict[str, Any]]) -> None:
    """metrics.csv rewritten whole from the history, so a kill never leaves a row out or twice."""
    write_csv_atomic(history, list(dict.fromkeys(k for r in history for k in r)), run_dir / "metrics.csv")


def _row_text(row: dict[str, Any], epochs: int) -> str:
    parts = [f"epoch {row['epoch']}/{epochs}", f"lr {row['lr']:.2e}", f"loss {row['loss']:.4f}"]
    if "val_i2t_r1" in row:
        parts.append(f"val R@1 i2t {row['val_i2t_r1']:.1f} t2i {row['val_t2i_r1']:.1f}")
    return "  ".join(parts)
