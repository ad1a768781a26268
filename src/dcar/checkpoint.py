"""Checkpoints: the one on-disk format for trained tensors, and the run folders built on it.

The format is safetensors for tensors plus JSON for everything else (in the safetensors metadata
or a JSON file beside it), always written atomically. Only safetensors and JSON are written or
read: loading never unpickles anything.

- :func:`save_tensors_atomic`, :func:`optimizer_to_tensors` / :func:`optimizer_from_tensors`: the
  pieces every checkpoint is made of;
- :func:`save_checkpoint` / :func:`load_checkpoint`: a model, its optimiser and progress in ONE
  file, so a kill can never leave a model from one step next to an optimiser from another (what
  ``dcar pretrain`` resumes from);
- a training run folder (``dcar train``), read back with :func:`load_method`:

RUN_DIR/
  run.json            method name + config, backbone spec, training config, data (JSON)
  best.safetensors    trainable tensors of the best epoch on validation (metadata: its epoch)
  resume/             epoch-N.safetensors, optim-N.safetensors: the last and best epochs' trainable
                      and optimiser tensors (for --resume; see dcar.training.resume)
  state.json          epoch counter, best score, optimiser hyper-parameters, history (the commit point)
  metrics.csv, tb/    logs
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from dcar.atomic import atomic_path, write_json_atomic
from dcar.errors import DcarError
from dcar.backbone.registry import one_line
from dcar.files import check_readable_file, read_json

RUN_FILE = "run.json"
BEST = "best.safetensors"
STATE_JSON = "state.json"


def save_tensors_atomic(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """RUN_DIR/run.json, checked for the fields a run is rebuilt from."""
    path = Path(run_dir) / RUN_FILE
    if not Path(run_dir).is_dir() or not path.exists():
        raise DcarError(f"{run_dir}: not a run directory (no {RUN_FILE})")
    run = read_json(path, "run file")
    if not isinstance(run, dict):
        raise DcarError(f"{path}: expected a JSON object")
    for key, kind in (("backbone", str), ("method", str), ("method_config", dict)):
        if not isinstance(run.get(key), kind):
            raise DcarError(f"{path}: no {key!r} entry (a {kind.__name__}); not a complete run description")
    return run


def optimizer_to_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimiser state into tensors (safetensors) and plain values (JSON)."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, dict[str, Any]] = {}
    for idx, values in state["state"].items():
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{idx}.{name}"] = value
            else:
                plain.setdefault(str(idx), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "plain": plain}


def optimizer_from_tensors(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    params = [p for group in optimizer.param_groups for p in group["params"]]
    per_param: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        idx, name = key.split(".", 1)
        if not idx.isdigit() or int(idx) >= len(params):
            raise ValueError(f"optimiser tensor {key!r} belongs to no parameter")
        if value.dim() > 0 and value.shape != params[int(idx)].shape:  # buffers shaped like their parameter
            raise ValueError(f"optimiser tensor {key!r} has shape {tuple(value.shape)}, the parameter {tuple(params[int(idx)].shape)}")
        per_param.setdefault(int(idx), {})[name] = value
    for idx, values in meta.get("plain", {}).items():
        per_param.setdefault(int(idx), {}).update(values)
    optimizer.load_state_dict({"state": per_param, "param_groups": meta["param_groups"]})


def save_checkpoint(path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int, info: dict[str, Any]) -> None:
    """Model tensors, optimiser state and progress (``step``, JSON ``info``) in one file."""
    optim_tensors, optim_meta = optimizer_to_tensors(optimizer)
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update({f"optim.{k}": v for k, v in optim_tensors.items()})
    meta = {"step": str(step), "info": json.dumps(info), "optimizer": json.dumps(optim_meta)}
    save_tensors_atomic(tensors, Path(path), meta)


def load_checkpoint(path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> tuple[int, dict[str, Any]]:
    """Restore model and optimiser in place from :func:`save_checkpoint`'s file; returns (step, info)."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        step, info = int(meta["step"]), json.loads(meta["info"])
        if "optimizer" in meta:
            optim_meta = json.loads(meta["optimizer"])
        else:  # the earlier pretrain layout (same tensor keys; param groups on their own): still resumes
            optim_meta = {"param_groups": json.loads(meta["param_groups"]), "plain": {}}
    except Exception as err:  # a truncated or foreign file
        raise DcarError(f"{path}: not a readable dcar checkpoint ({err})") from None
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    optimizer_from_tensors(optimizer, {k[6:]: v for k, v in tensors.items() if k.startswith("optim.")}, optim_meta)
    return step, info


def write_run_file(run_dir: Path, content: dict[str, Any]) -> None:
    write_json_atomic(content, run_dir / RUN_FILE)


def load_trainable(run_dir: str | Path, which: str = BEST) -> dict[str, torch.Tensor]:
    path = Path(run_dir) / which
    if not path.exists():
        raise DcarError(f"{run_dir}: no {which} (did the run finish an epoch?)")
    return read_tensors(path)


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file, or a one-line error naming it (truncated, overwritten, not safetensors)."""
    check_readable_file(path, "safetensors file")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise DcarError(f"{path}: not a readable safetensors file ({one_line(err)})") from None


def load_method(run_dir: str | Path, device: str = "cpu", which: str = BEST):
    """Rebuild a trained method from its run directory (backbone from its spec + trainable tensors)."""
    from dcar.backbone import load_backbone
    from dcar.methods.registry import build_method

    run = read_run(run_dir)
    for key in ("backbone", "method"):
        if not isinstance(run.get(key), str):
            raise DcarError(f"{Path(run_dir) / RUN_FILE}: no {key!r} entry; not a complete run description")
    backbone = load_backbone(run["backbone"], device=device)
    _check_base_weights(run_dir, run, backbone)  # before any trained tensor is loaded (fine-tuning changes them)
    method = build_method(run["method"], backbone, run.get("method_config") or {})
    if method.trainable:
        try:
            method.load_trainable_state_dict(load_trainable(run_dir, which))
        except ValueError as err:
            raise DcarError(f"{Path(run_dir) / which}: {err}") from None
    return method.to(device).eval()


def _check_base_weights(run_dir: str | Path, run: dict, backbone) -> None:
    """Refuse a run whose base spec now loads other weights than it was trained on (the prompts
    would silently give wrong vectors). Runs from before the digest was recorded load unchecked."""
    from dcar.evaluation.encoders import weights_digest

    recorded = run.get("backbone_weights")
    if recorded is None:
        return
    digest = weights_digest(backbone)
    if recorded != digest:
        raise DcarError(
            f"{run_dir}: trained on {run['backbone']} with weights {recorded}, but that spec now loads "
            f"weights {digest}; refusing to apply the prompts to other base weights"
        )
