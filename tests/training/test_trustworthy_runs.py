"""Runs a user can trust: a kill at any write leaves a run that resumes to the uninterrupted result;
--resume refuses other settings; a non-finite loss stops (or is skipped and counted), never wins."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from cli_helpers import run_cli
from safetensors.torch import load_file

from dcar.backbone import load_backbone
from dcar.errors import DcarError
from dcar.evaluation.evaluate import EvalDataset
from dcar.methods import build_method
from dcar.training.config import TrainConfig
from dcar.training.loop import train
from dcar.training.selection import score_val


class Killed(BaseException):
    """Raised in place of a write, as a kill at that moment would stop the process."""


def _run(spec, entries, run_dir: Path, resume=False, cfg=None, wrap=None, **cfg_overrides):
    torch.manual_seed(7)  # the initial prompt: the same in every fresh start
    method = build_method("coop", load_backbone(spec), {})
    if wrap is not None:
        wrap(method)
    cfg = cfg or TrainConfig(epochs=3, batch_size=8, num_workers=0, device="cpu", lr=0.01, **cfg_overrides)
    info = {"method": "coop", "method_config": method.config.to_dict(), "backbone": spec, "train_config": cfg.to_dict()}
    return train(method, entries, score_val(EvalDataset("val", entries), cfg.eval_batch_size), cfg, run_dir, info, resume=resume)


def _writes_into(run_dir: Path, monkeypatch, kill_at: int | None = None) -> list[str]:
    """Count every file replaced inside ``run_dir`` (each atomic write ends in os.replace);
    raise Killed instead of the ``kill_at``-th."""
    seen: list[str] = []
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if Path(dst).is_relative_to(run_dir):
            seen.append(Path(dst).relative_to(run_dir).as_posix())
            if len(seen) == kill_at:
                raise Killed(seen[-1])
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    return seen


def _final(run_dir: Path) -> dict:
    state = json.loads((run_dir / "state.json").read_text())
    tensors = {name: load_file(str(run_dir / name)) for name in
               ("best.safetensors", f"resume/epoch-{state['epoch']}.safetensors", f"resume/optim-{state['epoch']}.safetensors")}
    return {"state": {k: v for k, v in state.items() if k != "optimizer"}, "tensors": tensors,
            "metrics": (run_dir / "metrics.csv").read_text()}


def _same(a: dict, b: dict) -> None:
    assert a["state"] == b["state"] and a["metrics"] == b["metrics"]
    for name in a["tensors"]:
        assert a["tensors"][name].keys() == b["tensors"][name].keys()
        for k in a["tensors"][name]:
            assert torch.equal(a["tensors"][name][k], b["tensors"][name][k]), (name, k)


@pytest.mark.slow
def test_a_kill_at_every_write_resumes_to_the_uninterrupted_run(tiny_spec, labelled_set, tmp_path, monkeypatch):
    entries, _ = labelled_set
    writes = _writes_into(tmp_path / "full", monkeypatch)
    _run(tiny_spec, entries, tmp_path / "full")
    reference = _final(tmp_path / "full")
    points = list(writes)
    assert points.count("state.json") == 3 and len(points) >= 12, points
    for k, point in enumerate(points, 1):
        run_dir = tmp_path / f"kill{k}"
        _writes_into(run_dir, monkeypatch, kill_at=k)
        with pytest.raises(Killed):
            _run(tiny_spec, entries, run_dir)
        _writes_into(run_dir, monkeypatch)  # no more kills
        _run(tiny_spec, entries, run_dir, resume=True)
        try:
            _same(_final(run_dir), reference)
        except AssertionError as err:
            raise AssertionError(f"killed at write {k} ({point}): {err}") from None


def test_resume_refuses_changed_training_settings_and_impossible_states(tiny_spec, labelled_set, tmp_path):
    entries, _ = labelled_set
    run_dir = tmp_path / "run"
    cfg = TrainConfig(epochs=2, batch_size=8, num_workers=0, device="cpu", lr=0.01)
    _run(tiny_spec, entries, run_dir, cfg=cfg)
    with pytest.raises(DcarError, match="train_config lr = 0.02, but the run was started with 0.01"):
        _run(tiny_spec, entries, run_dir, resume=True, cfg=TrainConfig(epochs=2, batch_size=8, num_workers=0, device="cpu", lr=0.02))
    with pytest.raises(DcarError, match="train_config seed = 5"):
        _run(tiny_spec, entries, run_dir, resume=True, cfg=TrainConfig(epochs=2, batch_size=8, num_workers=0, device="cpu", lr=0.01, seed=5))
    before = (run_dir / "run.json").read_text()
    state = json.loads((run_dir / "state.json").read_text())
    for epoch in (-3, 0, 99, "1", None):
        (run_dir / "state.json").write_text(json.dumps({**state, "epoch": epoch}))
        with pytest.raises(DcarError, match=f"epoch {epoch!r} is not a finished epoch"):
            _run(tiny_spec, entries, run_dir, resume=True, cfg=cfg)
    (run_dir / "state.json").write_text(json.dumps({**state, "history": state["history"][:1]}))
    with pytest.raises(DcarError, match="history does not hold 2 epochs"):
        _run(tiny_spec, entries, run_dir, resume=True, cfg=cfg)
    assert (run_dir / "run.json").read_text() == before  # a refused resume rewrites nothing


def _nan_on_call(n: int):
    def wrap(method):
        original, calls = method.training_losses, [0]

        def losses(batch):
            calls[0] += 1
            out = original(batch)
            return {**out, "loss": out["loss"] * float("nan")} if calls[0] == n else out

        method.training_losses = losses
    return wrap


def test_a_non_finite_loss_stops_training_naming_the_step(tiny_spec, labelled_set, tmp_path):
    entries, _ = labelled_set
    with pytest.raises(DcarError, match=r"non-finite loss \(loss nan\) at step 3 \(epoch 2, batch 1\).*keeps epoch 1"):
        _run(tiny_spec, entries, tmp_path / "run", wrap=_nan_on_call(3))
    assert json.loads((tmp_path / "run" / "state.json").read_text())["epoch"] == 1  # epoch 1 stays, complete


def test_skip_nonfinite_skips_and_counts(tiny_spec, labelled_set, tmp_path):
    entries, _ = labelled_set
    result = _run(tiny_spec, entries, tmp_path / "run", wrap=_nan_on_call(3), skip_nonfinite=True)
    assert [r["nonfinite_skipped"] for r in result.history] == [0, 1, 0]
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["nonfinite_skipped"] == 1 and state["steps"] == 5  # 3 epochs x 2 batches, one skipped


def test_cli_diverging_lr_is_an_error_not_a_winner(tiny_spec, labelled_csv, tmp_path, capsys):
    table, images = labelled_csv
    run = tmp_path / "run"
    code, _, err = run_cli(["train", "--method", "coop", "--model", tiny_spec, "--train", str(table), "--val", str(table),
                            "--images", str(images), "--out", str(run), "--epochs", "2", "--batch-size", "8",
                            "--workers", "0", "--device", "cpu", "--lr", "1e30"], capsys)
    last = err.strip().splitlines()[-1]
    assert code == 2 and last.startswith("error:") and "non-finite" in last and "Traceback" not in err
    assert "step" in last or "became non-finite" in last
    state = json.loads((run / "state.json").read_text())
    assert state["epoch"] == 1 and all(abs(v) < 1e6 for v in load_file(str(run / "best.safetensors"))["ctx.layers.0"].flatten().tolist())


def test_max_steps_ends_the_run_early(tiny_spec, labelled_set, tmp_path):
    entries, _ = labelled_set
    result = _run(tiny_spec, entries, tmp_path / "run", max_steps=3)
    assert len(result.history) == 2  # 2 steps in epoch 1, the last step in epoch 2
    assert json.loads((tmp_path / "run" / "state.json").read_text())["steps"] == 3
