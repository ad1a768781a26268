"""The training loop end to end: resume equals an uninterrupted run; the CLI train/eval/compare."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from dcar.backbone import load_backbone
from dcar.cli import main
from dcar.evaluation.evaluate import EvalDataset
from dcar.methods import build_method
from dcar.training.config import TrainConfig
from dcar.training.loop import train
from dcar.training.selection import score_val


def _train(tiny_spec, entries, taxonomy, run_dir: Path, resume=False, stop_after=None):
    torch.manual_seed(123)  # method init differs unless seeded: resume must restore it from disk
    method = build_method("dcar", load_backbone(tiny_spec), {"depth": 2})
    cfg = TrainConfig(epochs=3, batch_size=8, num_workers=0, device="cpu", lr=0.01)
    val = EvalDataset("val", entries)
    info = {"method": "dcar", "method_config": method.config.to_dict(), "backbone": tiny_spec}
    return train(method, entries, score_val(val, cfg.eval_batch_size), cfg, run_dir, info, taxonomy, resume=resume, stop_after_epochs=stop_after)


def test_resume_after_a_kill_reaches_the_same_tensors(tiny_spec, labelled_set, tmp_path):
    entries, taxonomy = labelled_set
    full = _train(tiny_spec, entries, taxonomy, tmp_path / "full")
    _train(tiny_spec, entries, taxonomy, tmp_path / "cut", stop_after=1)
    assert json.loads((tmp_path / "cut" / "state.json").read_text())["epoch"] == 1
    torch.manual_seed(999)  # a different init: the resumed run must not depend on it
    resumed = _train(tiny_spec, entries, taxonomy, tmp_path / "cut", resume=True)
    a, b = (load_file(str(tmp_path / run / "resume" / "epoch-3.safetensors")) for run in ("full", "cut"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert [h["loss"] for h in full.history] == [h["loss"] for h in resumed.history]
    assert resumed.best_epoch == full.best_epoch
    with open(tmp_path / "cut" / "metrics.csv") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [1, 2, 3]


def test_starting_over_an_existing_run_needs_resume(tiny_spec, labelled_set, tmp_path):
    entries, taxonomy = labelled_set
    _train(tiny_spec, entries, taxonomy, tmp_path / "run", stop_after=1)
    from dcar.errors import DcarError

    with pytest.raises(DcarError, match="--resume"):
        _train(tiny_spec, entries, taxonomy, tmp_path / "run")


def test_resume_accepts_a_run_from_before_a_config_field_existed_but_not_a_changed_one(tiny_spec, labelled_set, tmp_path):
    from dcar.errors import DcarError

    entries, taxonomy = labelled_set
    run = tmp_path / "run"
    _train(tiny_spec, entries, taxonomy, run, stop_after=1)
    info = json.loads((run / "run.json").read_text())
    del info["method_config"]["negative_gradients"]  # as written by a version without the field
    (run / "run.json").write_text(json.dumps(info))
    resumed = _train(tiny_spec, entries, taxonomy, run, resume=True)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    info["method_config"]["gamma"] = 0.9  # a setting that really differs still refuses to resume
    (run / "run.json").write_text(json.dumps(info))
    with pytest.raises(DcarError, match="method_config gamma = 0.5, but the run was started with 0.9"):
        _train(tiny_spec, entries, taxonomy, run, resume=True)


def _write_csv(entries, path: Path) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "caption", "category", "meta_category"])
        for e in entries:
            w.writerow([Path(e.image).name, e.caption, e.category, e.meta_category])


def test_cli_train_eval_compare(tiny_spec, labelled_set, tmp_path, capsys):
    entries, _ = labelled_set
    table = tmp_path / "set.csv"
    _write_csv(entries, table)
    images = Path(entries[0].image).parent
    run = tmp_path / "run"
    args = ["train", "--method", "coop", "--model", tiny_spec, "--train", str(table), "--val", str(table),
            "--images", str(images), "--out", str(run), "--epochs", "2", "--batch-size", "8", "--workers", "0", "--device", "cpu"]
    main(args)
    assert {"run.json", "best.safetensors", "state.json", "metrics.csv", "train_summary.json"} <= {p.name for p in run.iterdir()}
    tensors = load_file(str(run / "best.safetensors"))
    assert set(tensors) == {"ctx.layers.0"}  # only the trainable prompt, never backbone weights
    main(["eval", "--checkpoint", str(run), "--fdrd", str(table), "--images", str(images), "--out", str(run / "results.json"), "--device", "cpu"])
    results = json.loads((run / "results.json").read_text())
    assert results["method"] == "coop" and results["model"] == tiny_spec
    r = results["datasets"]["set"]
    assert 0 <= r["i2t"]["R@1"] <= r["i2t"]["R@5"] <= r["i2t"]["R@10"] <= 100
    assert r["n_images"] == len(entries)
    captions = tmp_path / "captions.txt"
    captions.write_text("".join(e.caption + "\n" for e in entries[:5]))
    main(["embed", "--checkpoint", str(run), "--texts", str(captions), "--out", str(tmp_path / "trained.npy"), "--device", "cpu"])
    main(["embed", "--model", tiny_spec, "--texts", str(captions), "--out", str(tmp_path / "zeroshot.npy"), "--device", "cpu"])
    trained, zeroshot = np.load(tmp_path / "trained.npy"), np.load(tmp_path / "zeroshot.npy")
    assert trained.shape == zeroshot.shape == (5, zeroshot.shape[1])
    assert not np.allclose(trained, zeroshot)  # the learned prompt is used
    main(["compare", str(run), "--out", str(tmp_path / "cmp")])
    assert f"| coop (run) | {tiny_spec} | set |" in (tmp_path / "cmp" / "compare.md").read_text()  # names the backbone
    assert (tmp_path / "cmp" / "compare.png").stat().st_size > 1000
    with pytest.raises(SystemExit) as exit_info:
        main(args)  # the folder holds a run already
    assert exit_info.value.code == 2
    assert "--resume" in capsys.readouterr().err


def test_dcar_rerank_inference_only_reorders_the_top_k(tiny_spec, labelled_set):
    from dcar.evaluation.evaluate import evaluate
    from dcar.methods.encoder import MethodEncoder

    entries, _ = labelled_set
    backbone = load_backbone(tiny_spec)
    torch.manual_seed(0)
    unit = build_method("dcar", backbone, {"gamma": 1.0})
    torch.manual_seed(0)
    rerank = build_method("dcar", backbone, {"gamma": 1.0, "inference": "rerank", "rerank_k": 3})
    ds = [EvalDataset("set", entries)]
    a = evaluate(MethodEncoder(unit), ds, num_workers=0, progress=False)["datasets"]["set"]
    b = evaluate(MethodEncoder(rerank), ds, num_workers=0, progress=False)["datasets"]["set"]
    for d in ("i2t", "t2i"):
        # positives ranked 3rd or later keep their place; only the top 3 are re-ordered
        assert b[d]["R@5"] == a[d]["R@5"] and b[d]["R@10"] == a[d]["R@10"]
        assert 0 <= b[d]["R@1"] <= b[d]["R@5"]
    assert (a["i2t"]["R@1"], a["t2i"]["R@1"]) != (b["i2t"]["R@1"], b["t2i"]["R@1"]) or a["i2t"]["R@1"] == 100


def _cli_train(tiny_spec, table: Path, images: Path, out: Path, seed: int, capsys) -> dict[str, torch.Tensor]:
    from cli_helpers import run_cli

    code, _, err = run_cli(["train", "--method", "dcar", "--model", tiny_spec, "--train", str(table), "--val", str(table),
                            "--images", str(images), "--out", str(out), "--epochs", "2", "--batch-size", "8",
                            "--workers", "0", "--device", "cpu", "--seed", str(seed), "--lr", "0.01"], capsys)
    assert code == 0, err
    files = ("best.safetensors", "resume/epoch-2.safetensors", "resume/optim-2.safetensors")
    return {f"{name}/{k}": v for name in files for k, v in load_file(str(out / name)).items()}


def test_two_cli_trainings_with_one_seed_give_identical_tensors(tiny_spec, labelled_set, tmp_path, capsys):
    """The run seed drives initialisation, data order, augmentation and DCAR's negatives."""
    entries, _ = labelled_set
    table = tmp_path / "set.csv"
    _write_csv(entries, table)  # with meta-categories: DCAR builds its category negatives
    images = Path(entries[0].image).parent
    torch.manual_seed(1)  # whatever the process did before must not matter
    a = _cli_train(tiny_spec, table, images, tmp_path / "a", 5, capsys)
    torch.manual_seed(2)
    b = _cli_train(tiny_spec, table, images, tmp_path / "b", 5, capsys)
    c = _cli_train(tiny_spec, table, images, tmp_path / "c", 6, capsys)
    assert a.keys() == b.keys() == c.keys()
    assert max(float((a[k] - b[k]).abs().max()) for k in a) == 0.0
    assert any(not torch.equal(a[k], c[k]) for k in a)  # the seed is used, not ignored
    summary = [json.loads((tmp_path / r / "train_summary.json").read_text())["history"] for r in ("a", "b")]
    assert [h["loss"] for h in summary[0]] == [h["loss"] for h in summary[1]]


def test_a_run_written_with_dcars_own_seed_still_loads(tiny_spec, labelled_set, tmp_path):
    """Before the one run seed, DCAR's config carried a seed of its own: it is ignored, with a note."""
    from dcar.checkpoint import load_method

    entries, taxonomy = labelled_set
    run = tmp_path / "run"
    _train(tiny_spec, entries, taxonomy, run, stop_after=1)
    info = json.loads((run / "run.json").read_text())
    info["method_config"]["seed"] = 3
    (run / "run.json").write_text(json.dumps(info))
    with pytest.warns(UserWarning, match="'seed' is ignored"):
        method = load_method(run, which="resume/epoch-1.safetensors")
    assert "seed" not in method.config.to_dict()
    with pytest.warns(UserWarning, match="train.seed"):
        resumed = _train(tiny_spec, entries, taxonomy, run, resume=True)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
