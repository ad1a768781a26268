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
import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from safetensors.torch import load_file

from dcar.atomic import write_csv_atomic, write_json_atomic
from dcar.distributed import ddp
from dcar.errors import DcarError
from dcar.methods.base import RetrievalMethod
from dcar import checkpoint as ckpt
from dcar.training.config import TrainConfig
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
    state = {"epoch": 0, "best_score": float("-inf"), "best_epoch": -1, "history": [], "skipped_images": 0}
    if resume and (run_dir / ckpt.STATE_JSON).exists():
        state = _restore(method, optimizer, run_dir, run_info)
        console.print(f"resuming {run_dir} after epoch {state['epoch']}")
    elif (run_dir / ckpt.STATE_JSON).exists():
        raise DcarError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
    if is_main:
        ckpt.write_run_file(run_dir, run_info)
    step = ddp.wrap(method)

    writer = _tensorboard(run_dir) if is_main else None
    start = time.perf_counter()
    epochs_done_here = 0
    for epoch in range(state["epoch"], cfg.epochs):
        if stop_after_epochs is not None and epochs_done_here >= stop_after_epochs:
            break
        lr = epoch_lr(epoch, _base_lr(method, cfg), cfg.epochs, cfg.warmup_epochs, cfg.warmup_lr)
        for group in optimizer.param_groups:
            group["lr"] = lr
        torch.manual_seed(cfg.seed * 1_000_003 + epoch)
        make_loader = ddp.train_loader if ddp.world().distributed else train_loader
        loader = make_loader(train_entries, method.image_transform(train=True), cfg.batch_size, cfg.seed * 1_000_003 + epoch, cfg.num_workers)
        losses, skipped = _run_epoch(method, step, optimizer, loader, cfg, device, epoch, console)
        state["skipped_images"] += skipped
        row: dict[str, Any] = {"epoch": epoch + 1, "lr": lr, **losses}
        if score_val is not None and is_main:
            method.eval()
            with torch.no_grad():
                metrics = score_val(method)
            row.update(val_i2t_r1=metrics["i2t"]["R@1"], val_t2i_r1=metrics["t2i"]["R@1"])
            score = selection_score(metrics)
        else:
            score = -row["loss"]
        row["score"] = score
        state["history"].append(row)
        state["epoch"] = epoch + 1
        trainable = method.trainable_state_dict()
        if score > state["best_score"]:
            state["best_score"], state["best_epoch"] = score, epoch + 1
            if is_main:
                ckpt.save_tensors_atomic(trainable, run_dir / ckpt.BEST, {"epoch": str(epoch + 1)})
        if is_main:
            _checkpoint(trainable, optimizer, state, run_dir)
            _log(run_dir, writer, row)
        epochs_done_here += 1
        console.print(_row_text(row, cfg.epochs))
    if writer is not None:
        writer.close()
    return TrainResult(state["best_epoch"], state["best_score"], state["history"], state["skipped_images"], time.perf_counter() - start)


def _base_lr(method: RetrievalMethod, cfg: TrainConfig) -> float:
    return cfg.lr if cfg.lr is not None else method.config.optimizer.lr


def _run_epoch(method, step, optimizer, loader, cfg, device, epoch, console) -> tuple[dict[str, float], int]:
    method.train()
    sums: dict[str, float] = {}
    steps = skipped = 0
    columns = (TextColumn(f"epoch {epoch + 1}/{cfg.epochs}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[loss]}"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("train", total=len(loader), loss="")
        for batch, n_skipped in loader:
            skipped += n_skipped
            if not ddp.batch_usable(0 if batch is None else len(batch.entries), device):
                progress.advance(task)
                continue
            with _autocast(cfg, device):
                out = step(batch)
            optimizer.zero_grad(set_to_none=True)
            out["loss"].backward()
            optimizer.step()
            for k, v in out.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            steps += 1
            progress.update(task, advance=1, loss=f"loss {sums['loss'] / steps:.4f}")
    if steps == 0:
        raise DcarError("no training step ran: every batch was empty (are the training images readable?)")
    return ddp.mean_over_ranks({k: v / steps for k, v in sums.items()}, device), skipped


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
    write_csv_atomic(rows, list(dict.fromkeys(k for r in rows for k in r)), path)
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
