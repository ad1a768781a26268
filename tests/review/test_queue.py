"""The review queue: durable, no loss or doubling under kill -9, exports that `dcar train` reads."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from cli_helpers import run_cli
from dcar.data.sources import load_entries
from dcar.errors import DcarError
from dcar.review import ReviewQueue

WRITER = Path(__file__).with_name("queue_writer.py")


def _writer(db: Path, start: int, stop: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2] / "src"), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, str(WRITER), str(db), str(start), str(stop)], stdout=subprocess.PIPE, text=True, env=env)


@pytest.mark.parametrize("after", [3, 40])
def test_kill_9_mid_write_loses_and_doubles_nothing(tmp_path, after):
    db = tmp_path / "review.sqlite"
    proc = _writer(db, 0, 100_000)
    confirmed = []
    while len(confirmed) < after:
        confirmed.append(int(proc.stdout.readline()))
    proc.send_signal(signal.SIGKILL)  # somewhere inside the next enqueue/decide
    proc.wait()
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    q = ReviewQueue(db)
    decided = {it.request_id: it for it in q.items("decided")}
    for i in confirmed:  # every confirmed decision is there, with reviewer and time
        it = decided[f"req-{i}"]
        assert it.reviewer == "writer" and it.decided_at
    counts = q.counts()
    assert counts["items"] - len(confirmed) in (0, 1)  # at most the one being written when killed
    # Restart the writer from the first unconfirmed request (a client retrying what it was not
    # told had succeeded): the half-written item is picked up again, nothing doubles.
    assert confirmed == list(range(after))
    redo = _writer(db, after, after + 2)
    assert redo.wait() == 0
    after_counts = q.counts()
    assert after_counts["items"] == after + 2 and after_counts["pending"] == 0
    assert after_counts["accept"] + after_counts["correct"] == after + 2  # each item decided exactly once
    request_ids = [it.request_id for it in q.items("all")]
    assert sorted(request_ids) == sorted(f"req-{i}" for i in range(after + 2))


def test_second_decision_is_refused_and_enqueue_is_idempotent(tmp_path):
    q = ReviewQueue(tmp_path)
    cands = [{"match": "a", "similarity": 0.9}, {"match": "b", "similarity": 0.8}]
    first = q.enqueue("r1", "i2t", "/x.png", "image", cands, 0.1)
    assert q.enqueue("r1", "i2t", "/x.png", "image", cands, 0.1) == first
    q.decide(first, "reject", "ann")
    with pytest.raises(DcarError, match="already decided \\(reject\\) by ann"):
        q.decide(first, "accept", "bob")
    with pytest.raises(DcarError, match="needs the right label"):
        q.decide(q.enqueue("r2", "i2t", "/y.png", "image", cands, 0.1), "correct", "ann")
    assert q.counts() == {"items": 2, "pending": 1, "accept": 0, "correct": 0, "reject": 1}
    assert (tmp_path / "review.sqlite").exists()
    assert sqlite3.connect(tmp_path / "review.sqlite").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_not_a_queue_is_a_one_line_error(tmp_path):
    bad = tmp_path / "review.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(DcarError, match="not a review queue"):
        ReviewQueue(bad)


@pytest.fixture
def reviewed(tmp_path):
    """A queue with image -> caption decisions over four small images."""
    images = tmp_path / "shop" / "photos"
    images.mkdir(parents=True)
    q = ReviewQueue(tmp_path / "index")
    colours = {"red": (220, 30, 30), "green": (30, 200, 60), "blue": (40, 60, 220), "yellow": (230, 210, 40)}
    for i, (name, rgb) in enumerate(colours.items()):
        path = images / f"{name}.png"
        Image.new("RGB", (32, 32), rgb).save(path)
        cands = [{"match": f"a {name} square", "similarity": 0.9}, {"match": "a grey square", "similarity": 0.8}]
        item = q.enqueue(f"r{i}", "i2t", str(path), "image", cands, 0.05, policy="p.json")
        if name == "red":
            q.decide(item, "accept", "ann")
        elif name == "green":
            q.decide(item, "correct", "bob", label="a bright green square")
        elif name == "blue":
            q.decide(item, "reject", "ann")
    return tmp_path, q


def test_export_fdrd_is_read_back_and_trained_on(reviewed, tiny_spec, capsys):
    tmp_path, q = reviewed
    out = tmp_path / "reviewed.json"
    code, _, err = run_cli(["review", "export", str(tmp_path / "index"), "--format", "fdrd", "--out", str(out)], capsys)
    assert code == 0, err
    root = err.split("--images ")[1].split()[0]
    data = load_entries(out, images=root)
    assert not data.missing_images
    got = {Path(e.image).name: e for e in data.entries}
    assert set(got) == {"red.png", "green.png"}  # accepted and corrected; not rejected, not pending
    assert got["red.png"].caption == "a red square"
    assert got["green.png"].caption == "a bright green square" and got["green.png"].negatives == ["a green square"]
    run = tmp_path / "run"
    code, _, err = run_cli(["train", "--method", "coop", "--model", tiny_spec, "--train", str(out), "--images", root,
                            "--out", str(run), "--epochs", "1", "--batch-size", "2", "--device", "cpu", "--workers", "0"], capsys)
    assert code == 0, err
    assert (run / "best.safetensors").exists()


def test_export_labelstudio_and_jsonl(reviewed, capsys):
    tmp_path, q = reviewed
    ls = tmp_path / "tasks.json"
    code, _, err = run_cli(["review", "export", str(tmp_path / "index"), "--format", "labelstudio", "--out", str(ls)], capsys)
    assert code == 0, err
    tasks = json.loads(ls.read_text())
    assert len(tasks) == 4
    assert all(t["predictions"][0]["score"] == pytest.approx(0.05) for t in tasks)
    by_image = {Path(t["data"]["image"]).name: t for t in tasks}
    assert by_image["green.png"]["annotations"][0]["result"][0]["value"]["choices"] == ["a bright green square"]
    assert "annotations" not in by_image["yellow.png"]  # still pending
    jl = tmp_path / "all.jsonl"
    code, _, err = run_cli(["review", "export", str(tmp_path / "index"), "--format", "jsonl", "--out", str(jl)], capsys)
    rows = [json.loads(line) for line in jl.read_text().splitlines()]
    assert [r["decision"] for r in rows] == ["accept", "correct", "reject", None]
    assert rows[1]["reviewer"] == "bob" and rows[1]["decided_at"]


def test_review_cli_decide_and_errors(reviewed, capsys):
    tmp_path, q = reviewed
    code, _, err = run_cli(["review", "decide", str(tmp_path / "index"), "4", "--decision", "accept", "--reviewer", "cy"], capsys)
    assert code == 0 and "accept" in err
    code, _, err = run_cli(["review", "decide", str(tmp_path / "index"), "4", "--decision", "reject", "--reviewer", "cy"], capsys)
    assert code == 2 and "already decided" in err
    code, _, err = run_cli(["review", "list", str(tmp_path / "nowhere")], capsys)
    assert code == 2 and "no review queue" in err
