"""torchrun + DDP (gloo, CPU): 2 processes train the same tensors as 1 with the same global
batch, and a 2-process run killed with -9 resumes to the same tensors."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from dcar.distributed.ddp import GlobalBatchSampler
from dcar.training.resume import epoch_files

REPO_SRC = Path(__file__).resolve().parents[2] / "src"


def test_global_batches_are_cut_into_contiguous_shares_whatever_the_world_size():
    one = list(GlobalBatchSampler(21, 8, seed=5, rank=0, world_size=1))
    for size in (2, 3):
        shares = [list(GlobalBatchSampler(21, 8, seed=5, rank=r, world_size=size)) for r in range(size)]
        joined = [sum((s[b] for s in shares), []) for b in range(len(one))]
        assert joined == one  # rank order rebuilds each global batch exactly
    assert len(one) == 2 and all(len(b) == 8 for b in one)  # the incomplete last batch is dropped


def _torchrun_args(nproc: int, table: Path, images: Path, out: Path, config: Path, extra: list[str] = ()) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc), "-m", "dcar", "train",
            "--method", "dcar", "--model", os.environ["_DCAR_TINY_SPEC"], "--train", str(table), "--val", str(table),
            "--images", str(images), "--out", str(out), "--config", str(config), "--epochs", "2", "--batch-size", "8",
            "--workers", "0", "--device", "cpu", "--lr", "0.01", *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{REPO_SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}


def _torchrun(nproc: int, table: Path, images: Path, out: Path, config: Path, extra: list[str] = ()) -> subprocess.CompletedProcess:
    args = _torchrun_args(nproc, table, images, out, config, extra)
    return subprocess.run(args, env=_env(), capture_output=True, text=True, timeout=600)


def _kill_after_first_epoch(args: list[str], run: Path) -> int:
    """Start a torchrun job, SIGKILL its whole process group once epoch 1 is checkpointed; the epoch
    counter at that moment."""
    proc = subprocess.Popen(args, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    state = run / "state.json"
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if state.exists():
                break
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return json.loads(state.read_text())["epoch"]


def _last_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    """The trainable tensors of the run's last committed epoch."""
    epoch = json.loads((run_dir / "state.json").read_text())["epoch"]
    return load_file(str(epoch_files(run_dir, epoch)[0]))


@pytest.mark.slow
def test_two_gloo_processes_train_the_same_tensors_as_one(tiny_spec, labelled_set, tmp_path, monkeypatch):
    entries, _ = labelled_set
    table = tmp_path / "set.csv"
    with table.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "caption", "category", "meta_category"])
        w.writerows([Path(e.image).name, e.caption, e.category, e.meta_category] for e in entries)
    images = Path(entries[0].image).parent
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"method": {"depth": 2}}))
    monkeypatch.setenv("_DCAR_TINY_SPEC", tiny_spec)

    runs = {}
    for n in (1, 2):
        got = _torchrun(n, table, images, tmp_path / f"p{n}", config)
        assert got.returncode == 0, got.stderr[-3000:]
        runs[n] = _last_weights(tmp_path / f"p{n}")
        assert got.stderr.count("best epoch") == 1  # one writer, one report: rank 0
    assert runs[1].keys() == runs[2].keys()
    diff = max(float((runs[1][k] - runs[2][k]).abs().max()) for k in runs[1])
    print(f"DDP 2 processes vs 1: max abs difference of the trained tensors {diff:.3g}")
    assert diff < 1e-5
    history = {n: json.loads((tmp_path / f"p{n}" / "state.json").read_text())["history"] for n in (1, 2)}
    assert [h["epoch"] for h in history[2]] == [1, 2]
    for a, b in zip(history[1], history[2]):  # rank 0 logs the global batch's loss, as one process does
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5) and a["score"] == pytest.approx(b["score"])
    # the tensors moved: training did something that both runs agree on
    first = load_file(str(tmp_path / "p2" / "best.safetensors"))
    assert history[2][1]["loss"] != history[2][0]["loss"]
    assert {p.name for p in (tmp_path / "p2").iterdir()} >= {"run.json", "best.safetensors", "metrics.csv", "train_summary.json"}
    assert first.keys() == runs[2].keys()

    # kill -9 of every rank after epoch 1, then --resume: the same tensors as the uninterrupted run
    cut = tmp_path / "cut"
    assert _kill_after_first_epoch(_torchrun_args(2, table, images, cut, config), cut) == 1
    got = _torchrun(2, table, images, cut, config, ["--resume"])
    assert got.returncode == 0, got.stderr[-3000:]
    resumed = _last_weights(cut)
    assert all(torch.equal(resumed[k], runs[2][k]) for k in runs[2])
