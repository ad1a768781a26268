"""The pretraining recipe: equal fast text path, resumable after an interruption, clean exports."""

from __future__ import annotations

import csv
import importlib
import os
import signal

import pytest
import torch
from safetensors.torch import load_file

from dcar.cli import main
from dcar.errors import DcarError
from dcar.pretrain import get_preset, train
from dcar.pretrain.data import StepBatches
from dcar.pretrain.model import build_model, encode_text_fast

train_module = importlib.import_module("dcar.pretrain.train")


def test_fast_text_encoder_equals_open_clip(tiny_open_clip_cfg):
    from open_clip import tokenize

    model = build_model(tiny_open_clip_cfg, seed=0).eval()
    ids = tokenize(["This is a flower. A small red plain flower is at the center on a white background.",
                    "This is an Ostrel Sparrowjet. Two blue airplanes."])
    with torch.no_grad():
        assert torch.allclose(encode_text_fast(model, ids), model.encode_text(ids), atol=1e-5)


def test_step_batches_are_a_function_of_the_step():
    whole = list(StepBatches(50, 8, seed=1, start=0, stop=14))
    assert list(StepBatches(50, 8, seed=1, start=9, stop=14)) == whole[9:]
    epoch0 = [i for b in whole[:6] for i in b]
    assert len(set(epoch0)) == 48  # one epoch: each pair at most once


def _weights(run) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model" / "open_clip_model.safetensors"))


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_after_interruption_gives_the_same_model(tmp_path, monkeypatch):
    p = get_preset("tiny")
    straight = train(p, tmp_path / "a", progress=False)
    assert straight["finished"]
    # interrupted by a step limit, then resumed
    assert train(p, tmp_path / "b", max_steps=3, progress=False) == {"step": 3, "finished": False}
    train(p, tmp_path / "b", progress=False)
    # interrupted by SIGTERM during step 2: the loop checkpoints and stops at the end of the step
    real = train_module.lr_at
    monkeypatch.setattr(train_module, "lr_at", lambda s, q: (s == 1 and os.kill(os.getpid(), signal.SIGTERM)) or real(s, q))
    assert train(p, tmp_path / "c", progress=False) == {"step": 2, "finished": False}
    monkeypatch.setattr(train_module, "lr_at", real)
    train(p, tmp_path / "c", progress=False)
    ref = _weights(tmp_path / "a")
    assert _same(ref, _weights(tmp_path / "b")) and _same(ref, _weights(tmp_path / "c"))
    steps = [int(r["step"]) for r in csv.DictReader(open(tmp_path / "c" / "train_log.csv")) if r["loss"]]
    assert steps == list(range(1, p.steps + 1))  # no duplicated or missing rows after resuming
    for name in ("loss_curve.png", "metrics.json", "model/open_clip_config.json"):
        assert (tmp_path / "c" / name).exists()


def test_a_kill_that_reaches_the_rendering_workers_too_still_checkpoints(tmp_path):
    """`pkill -f "dcar pretrain"` or Ctrl-C signal the workers too; the run must still stop cleanly."""
    import subprocess
    import sys
    import time

    code = ("from dcar.pretrain import get_preset, train; print(train(get_preset('tiny', workers=1, steps=400, "
            f"corpus=4096, log_every=1), {str(tmp_path)!r}, progress=False))")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, text=True)
    log, deadline = tmp_path / "train_log.csv", time.time() + 120
    while not (log.exists() and len(log.read_text().splitlines()) > 3) and time.time() < deadline:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGTERM)  # the whole process group, as a shell's kill does
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "stopped at step" in out and "Traceback" not in out, out[-2000:]
    assert (tmp_path / "checkpoint.safetensors").exists()


def test_resume_refuses_another_recipe(tmp_path):
    train(get_preset("tiny"), tmp_path, max_steps=2, progress=False)
    with pytest.raises(DcarError, match="another recipe"):
        train(get_preset("tiny", lr=1e-2), tmp_path, progress=False)


def test_exported_model_loads_with_open_clip(tmp_path):
    import open_clip

    train(get_preset("tiny"), tmp_path, progress=False)
    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{tmp_path / 'model'}")
    trained = _weights(tmp_path)
    assert model.state_dict()["logit_scale"].dtype == torch.float32
    assert torch.equal(model.state_dict()["visual.conv1.weight"], trained["visual.conv1.weight"].float())


def test_cli_pretrain_tiny(tmp_path, capsys):
    main(["pretrain", "--preset", "tiny", "--out", str(tmp_path), "--max-steps", "2"])
    assert "resume" in capsys.readouterr().out
    main(["pretrain", "--preset", "tiny", "--out", str(tmp_path)])
    assert (tmp_path / "model" / "open_clip_model.safetensors").exists()


def test_cli_pretrain_unknown_preset(tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["pretrain", "--preset", "huge", "--out", str(tmp_path)])
    assert exc.value.code == 2


def test_tag_loss_trains_a_head_that_resumes_and_is_never_exported(tmp_path):
    import open_clip

    p = get_preset("tiny", aux_labels=1.0)
    assert p.fingerprint() != get_preset("tiny").fingerprint()  # a tagged run never resumes an untagged one
    assert get_preset("tiny", aux_labels=0.0).fingerprint() == get_preset("tiny").fingerprint()
    straight = train(p, tmp_path / "a", progress=False)
    train(p, tmp_path / "b", max_steps=3, progress=False)
    train(p, tmp_path / "b", progress=False)
    assert straight["finished"] and _same(_weights(tmp_path / "a"), _weights(tmp_path / "b"))
    assert not any(k.startswith(train_module.AUX_HEAD) for k in _weights(tmp_path / "a"))
    open_clip.create_model_and_transforms(f"local-dir:{tmp_path / 'a' / 'model'}")  # a plain CLIP
    # the head changes what the image tower learns: same recipe without it, other weights
    train(get_preset("tiny"), tmp_path / "c", progress=False)
    assert not torch.equal(_weights(tmp_path / "a")["visual.conv1.weight"], _weights(tmp_path / "c")["visual.conv1.weight"])
