"""How a run folder moves from one finished epoch to the next, so that a kill at any moment leaves
either the old epoch or the new one complete, and how `--resume` continues it.

Each epoch is written in this order:

1. ``resume/epoch-N.safetensors`` (trainable tensors) and ``resume/optim-N.safetensors`` (optimiser
   tensors): new files, the previous epoch's stay untouched;
2. ``state.json``, atomically: the commit point. Before it is replaced the run is at epoch N-1
   (whose files still exist), after it at epoch N;
3. ``best.safetensors`` when epoch N is the best so far (a kill between 2 and 3 is repaired by
   :func:`restore`, which rewrites it from ``resume/epoch-BEST.safetensors``);
4. files of epochs that are neither N nor the best are removed; ``metrics.csv`` is rewritten
   whole from the committed history.

`--resume` refuses a run started with other settings (method, its config, backbone, training
config, data) and a state that cannot be (an epoch outside 1..epochs, a history of another
length, missing files), each with one line.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from dcar.atomic import write_json_atomic
from dcar.errors import DcarError
from dcar.files import read_json
from dcar import checkpoint as ckpt
from dcar.training.config import TrainConfig

RESUME_DIR = "resume"
# Settings that may change between a run and its resumption: where and how fast it runs.
RUNTIME_KEYS = ("device", "num_workers", "eval_batch_size")


def fresh_state() -> dict[str, Any]:
    return {"epoch": 0, "best_score": float("-inf"), "best_epoch": 0, "history": [], "skipped_images": 0,
            "steps": 0, "nonfinite_skipped": 0}


def epoch_files(run_dir: Path, epoch: int) -> tuple[Path, Path]:
    folder = run_dir / RESUME_DIR
    return folder / f"epoch-{epoch}.safetensors", folder / f"optim-{epoch}.safetensors"


def commit_epoch(method, optimizer, state: dict[str, Any], run_dir: Path, improved: bool) -> None:
    """Write the finished epoch ``state["epoch"]`` in the order of the module docstring."""
    n = state["epoch"]
    trainable = method.trainable_state_dict()
    tensors, meta = ckpt.optimizer_to_tensors(optimizer)
    weights, optim = epoch_files(run_dir, n)
    ckpt.save_tensors_atomic(trainable, weights, {"epoch": str(n)})
    ckpt.save_tensors_atomic(tensors or {"_empty": torch.zeros(1)}, optim)
    write_json_atomic({**state, "optimizer": meta}, run_dir / ckpt.STATE_JSON)
    if improved:
        ckpt.save_tensors_atomic(trainable, run_dir / ckpt.BEST, {"epoch": str(n)})
    _prune(run_dir, keep={n, state["best_epoch"]})


def _prune(run_dir: Path, keep: set[int]) -> None:
    for path in (run_dir / RESUME_DIR).glob("*-*.safetensors"):
        epoch = path.stem.rsplit("-", 1)[-1]
        if not epoch.isdigit() or int(epoch) not in keep:
            path.unlink(missing_ok=True)


def restore(method, optimizer, run_dir: Path, run_info: dict[str, Any], cfg: TrainConfig) -> dict[str, Any]:
    """The committed state of ``run_dir``, with the method and optimiser loaded to it."""
    check_same_run(run_dir, run_info)
    state = read_state(run_dir, cfg)
    weights, optim = epoch_files(run_dir, state["epoch"])
    try:
        method.load_trainable_state_dict(ckpt.read_tensors(weights))
        tensors = {k: v for k, v in ckpt.read_tensors(optim).items() if k != "_empty"}
        ckpt.optimizer_from_tensors(optimizer, tensors, state.pop("optimizer"))
    except (ValueError, KeyError, TypeError, RuntimeError) as err:
        raise DcarError(f"{run_dir}: the saved epoch {state['epoch']} does not fit this run ({err})") from None
    _repair_best(run_dir, state["best_epoch"])
    return state


def check_same_run(run_dir: Path, run_info: dict[str, Any]) -> None:
    """Refuse to resume with settings other than those the run was started with."""
    from dcar.methods.registry import make_config

    previous = ckpt.read_run(run_dir)
    if previous["method"] == run_info["method"]:
        # Fields added to a config since the run started take their defaults, so a run from an
        # earlier version resumes when nothing it set has changed.
        previous["method_config"] = make_config(previous["method"], previous["method_config"]).to_dict()
    for key in ("method", "backbone"):
        if previous[key] != run_info[key]:
            raise DcarError(f"{run_dir}: --resume with {key} {run_info[key]!r}, but the run was started with {previous[key]!r}")
    _same(run_dir, "method_config", previous["method_config"], run_info["method_config"])
    if "train_config" in previous and "train_config" in run_info:
        defaults = TrainConfig().to_dict()
        before = {k: v for k, v in {**defaults, **previous["train_config"]}.items() if k not in RUNTIME_KEYS}
        now = {k: v for k, v in run_info["train_config"].items() if k not in RUNTIME_KEYS}
        _same(run_dir, "train_config", before, now)
    if "data" in previous and "data" in run_info:
        _same(run_dir, "data", previous["data"], run_info["data"])


def _same(run_dir: Path, what: str, before: Any, now: Any) -> None:
    if not isinstance(before, dict) or before == now:
        return
    changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
    first = changed[0]
    raise DcarError(
        f"{run_dir}: --resume with {what} {first} = {now.get(first)!r}, but the run was started with "
        f"{before.get(first)!r}" + (f" (and {len(changed) - 1} more changes)" if len(changed) > 1 else "")
        + "; resume with the same settings or start a new --out"
    )


def read_state(run_dir: Path, cfg: TrainConfig) -> dict[str, Any]:
    """state.json, checked against what a run of ``cfg`` can have committed."""
    path = run_dir / ckpt.STATE_JSON
    state = read_json(path, "resume state")

    def bad(why: str) -> DcarError:
        return DcarError(f"{path}: {why}; the run folder was edited or damaged (start a new --out)")

    if not isinstance(state, dict):
        raise bad("not a JSON object")
    epoch = state.get("epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 1 <= epoch <= cfg.epochs:
        raise bad(f"epoch {epoch!r} is not a finished epoch of this run (1..{cfg.epochs})")
    history = state.get("history")
    if not isinstance(history, list) or len(history) != epoch or not all(isinstance(r, dict) for r in history):
        raise bad(f"the history does not hold {epoch} epochs")
    best = state.get("best_epoch")
    if isinstance(best, bool) or not isinstance(best, int) or not 1 <= best <= epoch:
        raise bad(f"best_epoch {best!r} is not one of the finished epochs")
    score = state.get("best_score")
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
        raise bad(f"best_score {score!r} is not a finite number")
    if not isinstance(state.get("optimizer"), dict) or not isinstance(state["optimizer"].get("param_groups"), list):
        raise bad("no optimiser settings")
    for name in ("skipped_images", "steps", "nonfinite_skipped"):
        value = state.setdefault(name, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise bad(f"{name} {value!r} is not a count")
    for path_ in epoch_files(run_dir, epoch):
        if not path_.is_file():
            raise bad(f"{path_.relative_to(run_dir)} is missing")
    return state


def _repair_best(run_dir: Path, best_epoch: int) -> None:
    """Finish step 3 of a commit that a kill interrupted: best.safetensors is the best epoch's."""
    best = run_dir / ckpt.BEST
    if best.is_file() and _epoch_of(best) == best_epoch:
        return
    source, _ = epoch_files(run_dir, best_epoch)
    if source.is_file():
        ckpt.save_tensors_atomic(ckpt.read_tensors(source), best, {"epoch": str(best_epoch)})


def _epoch_of(path: Path) -> int | None:
    try:
        with safe_open(str(path), "pt") as f:
            return int((f.metadata() or {}).get("epoch", -1))
    except Exception:  # noqa: BLE001 - any unreadable file is simply rewritten
        return None
