"""`dcar index build/add` and `dcar search` from the command line, including kill -9 and resume."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from cli_helpers import run_cli
from dcar.index import Index

SRC = Path(__file__).resolve().parents[2] / "src"


def _big_catalog(catalog_dir: Path, folder: Path, copies: int) -> Path:
    """The small catalog repeated ``copies`` times (distinct files, same pictures)."""
    for p in sorted((catalog_dir / "images").rglob("*.png")):
        (folder / p.parent.name).mkdir(parents=True, exist_ok=True)
        for c in range(copies):
            shutil.copy(p, folder / p.parent.name / f"{p.stem}_{c:02d}.png")
    return folder


def _shard_state(out: Path) -> dict[str, tuple[str, int]]:
    """Every file of every finished shard: content digest and modification time."""
    state = {}
    for marker in (out / "shards").glob("done-*.json"):
        number = marker.stem.split("-")[1]
        for f in (out / "shards").glob(f"*-{number}.*"):
            state[f.name] = (hashlib.sha256(f.read_bytes()).hexdigest(), f.stat().st_mtime_ns)
    return state


@pytest.mark.slow
def test_kill_9_during_build_then_rerun_reuses_finished_shards_and_equals_an_uninterrupted_build(
    catalog_dir, tiny_spec, tmp_path, capsys
):
    images = _big_catalog(catalog_dir, tmp_path / "images", copies=4)  # 64 images, 32 shards
    args = ["index", "build", "--model", tiny_spec, "--images", str(images), "--shard-size", "2",
            "--device", "cpu", "--no-progress"]
    killed = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    # One decoding process per shard slows the killed run down enough to be caught midway; the
    # reruns decode in-process (same features either way).
    proc = subprocess.Popen([sys.executable, "-m", "dcar", *args, "--workers", "1", "--out", str(killed)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while len(list((killed / "shards").glob("done-*.json"))) < 4:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "the build did not finish 4 shards in time"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "index.json").exists(), "the build finished before the kill; nothing to test"
    finished = _shard_state(killed)
    n_finished = len(list((killed / "shards").glob("done-*.json")))
    code, _, err = run_cli([*args, "--workers", "0", "--out", str(killed)], capsys)
    assert code == 0, err
    assert _reported(err, "shards reused") == n_finished
    assert _reported(err, "shards embedded now") == 32 - n_finished
    after = _shard_state(killed)
    assert all(after[name] == state for name, state in finished.items()), "a finished shard was written again"

    clean = tmp_path / "clean"
    code, _, err = run_cli([*args, "--workers", "0", "--out", str(clean)], capsys)
    assert code == 0, err
    a, b = json.loads((killed / "index.json").read_text()), json.loads((clean / "index.json").read_text())
    assert (a["count"], a["shards"], a["model"]) == (b["count"], b["shards"], b["model"]) and a["count"] == 64
    for f in sorted((clean / "shards").iterdir()):
        if f.suffix == ".npy":
            np.testing.assert_array_equal(np.load(f), np.load(killed / "shards" / f.name))
        elif f.suffix == ".parquet":
            assert pq.read_table(f).equals(pq.read_table(killed / "shards" / f.name))
    x, y = Index.open(killed), Index.open(clean)
    queries = np.stack([y.vector(i) for i in range(0, 64, 5)])
    np.testing.assert_array_equal(x.search(queries, 10)[1], y.search(queries, 10)[1])


def _reported(err: str, label: str) -> int:
    line = next(line for line in err.splitlines() if label in line)
    return int(line.strip("│| \n").split("│")[-1].strip())


def test_cli_build_search_add_and_one_line_errors(catalog_dir, tiny_spec, tmp_path, capsys):
    out = tmp_path / "idx"
    listing = tmp_path / "first.txt"
    pngs = sorted((catalog_dir / "images").rglob("*.png"))
    listing.write_text("\n".join(str(p) for p in pngs[:6]) + "\n")
    code, _, err = run_cli(["index", "build", "--model", tiny_spec, "--images", str(listing), "--captions",
                            str(catalog_dir / "captions.csv"), "--out", str(out), "--workers", "0", "--no-progress"], capsys)
    assert code == 0, err
    assert _reported(err, "images indexed now") == 6 and _reported(err, "captions indexed now") == 6
    assert "10 captioned images are not in the catalog" in err

    code, out_text, err = run_cli(["search", str(out), "--text", "a red zorblat", "--k", "3", "--json"], capsys)
    assert code == 0, err
    found = json.loads(out_text)
    assert len(found["results"]) == 3 and found["results"][0]["score"] >= found["results"][-1]["score"]
    code, out_text, _ = run_cli(["search", str(out), "--image", str(pngs[2]), "--json"], capsys)
    first = json.loads(out_text)["results"][0]
    assert first["path"] == str(pngs[2].resolve()) and first["score"] == pytest.approx(1.0, abs=1e-5)
    code, out_text, _ = run_cli(["search", str(out), "--image", str(pngs[2]), "--to", "texts", "--k", "2", "--json"], capsys)
    assert code == 0 and all(r["caption"] for r in json.loads(out_text)["results"])
    code, out_text, _ = run_cli(["search", str(out), "--text", "zorblat"], capsys)
    assert code == 0 and "score" in out_text

    code, _, err = run_cli(["index", "add", str(out), "--images", str(catalog_dir / "images"), "--workers", "0", "--no-progress"], capsys)
    assert code == 0, err
    assert _reported(err, "already in the index") == 6 and _reported(err, "images indexed now") == 10
    assert _reported(err, "unreadable images skipped") == 1 and "broken.jpg" in err
    assert len(Index.open(out)) == 16

    for bad, expected in [
        (["index", "build", "--images", str(listing), "--out", str(tmp_path / "x")], "exactly one of --model"),
        (["index", "build", "--model", tiny_spec, "--images", str(listing), "--out", str(out)], "already holds an index"),
        (["index", "build", "--model", tiny_spec, "--images", str(tmp_path / "nope"), "--out", str(tmp_path / "y")], "not found"),
        (["search", str(tmp_path), "--text", "x"], "not an index"),
        (["search", str(out), "--text", "x", "--image", str(pngs[0])], "exactly one of --text or --image"),
        (["search", str(out), "--image", str(catalog_dir / "images" / "zorblat" / "broken.jpg")], "unreadable image"),
        (["search", str(out), "--text", "x", "--to", "captions"], "choose images or texts"),
    ]:
        code, _, err = run_cli(bad, capsys)
        assert code == 2 and expected in err and len(err.strip().splitlines()) == 1, (bad, err)
