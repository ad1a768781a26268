from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_cli
from eval_helpers import ColourEncoder
from PIL import Image

from dcar.cli import commands_retrieval


@pytest.fixture
def colour_model(monkeypatch):
    monkeypatch.setattr(commands_retrieval, "load_encoder", lambda model, device, checkpoint=None: ColourEncoder())




def test_eval_writes_exact_schema(colour_model, colour_fdrd, tmp_path: Path, capsys):
    fdrd, root = colour_fdrd
    out = tmp_path / "res" / "results.json"
    code, stdout, err = run_cli(
        ["eval", "--model", "test:colour", "--fdrd", str(fdrd), "--images", str(root), "--out", str(out),
         "--workers", "0"], capsys)
    assert code == 0, err
    res = json.loads(out.read_text())
    assert set(res) == {"model", "method", "datasets", "avg"}
    assert set(res["datasets"]["colours"]) == {
        "i2t", "t2i", "hard_negative_acc", "n_images", "n_captions", "skipped_images"}
    assert set(res["avg"]) == {"i2t", "t2i"} and set(res["avg"]["i2t"]) == {"R@1", "R@5", "R@10"}
    assert "colours" in stdout and "66.67" in stdout  # the table
    assert "broken_image_01.png" in err and "1 images not found (first: missing_image_01)" in err
    assert not Path(f"{out}.parts").exists()


def test_eval_same_stem_twice(colour_model, colour_fdrd, tmp_path: Path, capsys):
    fdrd, root = colour_fdrd
    out = tmp_path / "r.json"
    args = ["eval", "--model", "m", "--fdrd", str(fdrd), "--images", str(root)] * 1
    code, _, err = run_cli(args + ["--fdrd", str(fdrd), "--images", str(root), "--out", str(out),
                                   "--workers", "0"], capsys)
    assert code == 0, err
    assert list(json.loads(out.read_text())["datasets"]) == ["colours", "colours-2"]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--fdrd", "{fdrd}", "--fdrd", "{fdrd}", "--images", "{root}"], "2 --fdrd but 1 --images"),
        (["--fdrd", "{tmp}/nope.json", "--images", "{root}"], "nope.json: file or folder not found"),
        (["--fdrd", "{tmp}/bad.json", "--images", "{root}"], "bad.json: invalid JSON"),
    ],
)
def test_eval_errors_are_one_line(colour_model, colour_fdrd, tmp_path: Path, capsys, args, message):
    fdrd, root = colour_fdrd
    (tmp_path / "bad.json").write_text("{")
    args = [a.format(fdrd=fdrd, root=root, tmp=tmp_path) for a in args]
    code, _, err = run_cli(["eval", "--model", "m", "--out", str(tmp_path / "o.json"), *args], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_embed_images_rows_and_sidecar(colour_model, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (8, 8), (0, 0, 255)).save(tmp_path / "b.png")
    Image.new("RGB", (8, 8), (255, 0, 0)).save(tmp_path / "r.png")
    (tmp_path / "list.txt").write_text("b.png\n\nmissing.png\nr.png\n")
    out = tmp_path / "feats.npy"
    code, _, err = run_cli(["embed", "--model", "m", "--images", "list.txt", "--out", str(out),
                            "--workers", "0"], capsys)
    assert code == 0, err
    feats = np.load(out)
    assert feats.shape == (2, 3) and feats.dtype == np.float32 and feats.argmax(1).tolist() == [2, 0]
    sidecar = (tmp_path / "feats.npy.skipped.tsv").read_text().splitlines()
    assert sidecar[0] == "line\tpath\treason" and sidecar[1].startswith("3\tmissing.png\t")
    assert "1 unreadable images skipped" in err and not (tmp_path / "feats.npy.parts").exists()


def test_embed_texts_one_row_per_line(colour_model, tmp_path: Path, capsys):
    (tmp_path / "t.txt").write_text("a red\na green\na red\n")
    code, _, err = run_cli(["embed", "--model", "m", "--texts", str(tmp_path / "t.txt"), "--out",
                            str(tmp_path / "t.npy")], capsys)
    assert code == 0, err
    feats = np.load(tmp_path / "t.npy")
    assert feats.argmax(1).tolist() == [0, 1, 0] and np.allclose(np.linalg.norm(feats, axis=1), 1)


@pytest.mark.parametrize(
    "args,message",
    [
        ([], "exactly one of --images LIST or --texts LIST"),
        (["--texts", "{tmp}/t.txt", "--images", "{tmp}/t.txt"], "exactly one of"),
        (["--texts", "{tmp}/none.txt"], "none.txt: file not found"),
        (["--texts", "{tmp}/empty.txt"], "the list is empty"),
    ],
)
def test_embed_errors_are_one_line(colour_model, tmp_path: Path, capsys, args, message):
    (tmp_path / "t.txt").write_text("a red\n")
    (tmp_path / "empty.txt").write_text("")
    args = [a.format(tmp=tmp_path) for a in args]
    code, _, err = run_cli(["embed", "--model", "m", "--out", str(tmp_path / "o.npy"), *args], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
