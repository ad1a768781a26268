"""`dcar data build` end to end: inputs, captioners, report, validate, and a killed run resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from chat_server import COLOURS, Reply, image_hash
from PIL import Image

from dcar.cli import main
from dcar.data.fdrd import load_fdrd
from dcar.data.validate import validate

SRC = Path(__file__).resolve().parents[2] / "src"


def _images(root: Path, layout: str, n: int = 8) -> list[Path]:
    paths = []
    for i, rgb in enumerate(list(COLOURS.values())[:n]):
        cls = ["sunflower", "tiger_lily", "corn_poppy", "tree_poppy"][i % 4]
        path = root / cls / f"img_{i}.jpg" if layout == "folders" else root / f"{cls}_image_{i:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (20 + i, 16), rgb).save(path)
        paths.append(path)
    return paths


def build(args: list[str], capsys) -> dict:
    main(["data", "build", *args, "--no-progress", "--json"])
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("layout", ["folders", "flat"])
def test_template_build_validates(tmp_path, capsys, layout):
    _images(tmp_path / "img", layout)
    out = tmp_path / "out.json"
    report = build(["--images", str(tmp_path / "img"), "--out", str(out)], capsys)
    assert report["written"] == 8 and report["negatives"]["identical"] == 0
    # template captions carry no attributes and there are only 3 other classes: 3 swaps each
    assert report["negatives"]["entries_with_fewer_than_k"] == 8
    entries = load_fdrd(out).entries
    assert {e.category for e in entries} == {"sunflower", "tiger_lily", "corn_poppy", "tree_poppy"}
    for e in entries:
        assert e.caption.startswith(f"This is a {e.category.replace('_', ' ')}. ")
        assert len(e.negatives) == 3
    check = validate(out, images=tmp_path / "img")
    assert check["identical_negatives"] == 0 and check["over_length_captions"] == 0
    assert check["missing_images"] == 0 and check["empty_captions"] == 0
    assert report["cache"] is None  # nothing worth caching for templates


def test_csv_with_meta_categories_and_existing_captions(tmp_path, capsys):
    paths = _images(tmp_path / "img", "flat", n=4)
    meta = {"sunflower": "daisy family", "tiger_lily": "lily family", "corn_poppy": "poppy family", "tree_poppy": "poppy family"}
    rows = ["image,category,meta_category,caption"]
    for p in paths:
        cls = p.stem.split("_image_")[0]
        rows.append(f"{p.name},{cls},{meta[cls]},A {'red' if 'poppy' in cls else 'yellow'} flower on the left.")
    rows.append("missing.jpg,rose,,")
    (tmp_path / "img" / "list.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "out.json"
    report = build(["--images", str(tmp_path / "img" / "list.csv"), "--out", str(out), "--captioner", "file:",
                    "--strategy", "swap", "--negatives", "1"], capsys)
    assert report["written"] == 4 and report["missing_images"] == 1
    assert report["negatives"]["swaps_same_meta_share"] == pytest.approx(0.5)  # the two poppies swap with each other
    entries = {e.key: e for e in load_fdrd(out).entries}
    poppy = entries["corn_poppy_image_00002.jpg"]
    assert poppy.caption == "This is a corn poppy. A red flower on the left."
    assert poppy.negatives == ["This is a tree poppy. A red flower on the left."]
    skipped = Path(report["skipped_file"]).read_text().splitlines()
    assert skipped == ["key\treason", "missing.jpg\timage not found"]


def test_template_uses_meta_from_taxonomy(tmp_path, capsys):
    _images(tmp_path / "img", "folders", n=4)
    tax = tmp_path / "tax.json"
    tax.write_text(json.dumps({"sunflower": "flower", "tiger_lily": "flower", "corn_poppy": "flower", "tree_poppy": "flower"}))
    templates = tmp_path / "t.txt"
    templates.write_text("# one template\nA photo of {a} {class}, a type of {meta}.\n")
    out = tmp_path / "out.json"
    report = build(["--images", str(tmp_path / "img"), "--out", str(out), "--captioner", f"template:{templates}",
                    "--taxonomy", str(tax), "--prefix", ""], capsys)
    assert report["negatives"]["swaps_same_meta_share"] == 1.0
    assert {e.caption for e in load_fdrd(out).entries} >= {"A photo of a sunflower, a type of flower."}


def test_openai_build_reports_skips_and_caches(tmp_path, capsys, chat_server):
    paths = _images(tmp_path / "img", "folders", n=4)
    bad = image_hash(paths[2])
    chat_server.behaviour = lambda req, n: Reply(status=500) if req.image == bad else Reply(text="A bright bloom.")
    out = tmp_path / "out.json"
    args = ["--images", str(tmp_path / "img"), "--out", str(out), "--captioner", chat_server.spec(), "--attempts", "2",
            "--negatives", "2"]
    report = build(args, capsys)
    assert report["written"] == 3 and report["captions"]["failed"] == 1
    lines = Path(report["skipped_file"]).read_text().splitlines()
    assert len(lines) == 2 and lines[1].startswith("corn_poppy/img_2.jpg\tfailed: HTTP 500")
    assert Path(report["cache"]).name == "out.json.cache.jsonl"
    before = len(chat_server.requests)
    report = build(args, capsys)  # rerun: only the failed image is asked again
    assert len(chat_server.requests) - before == 2 and report["captions"]["answers_cached"] == 6


def test_user_errors_are_one_line(tmp_path, capsys):
    _images(tmp_path / "img", "folders", n=2)
    for args, needle in [
        (["--captioner", "gpt4"], "captioner spec 'gpt4'"),
        (["--captioner", "hf:" + str(tmp_path / "nothing")], "not a model directory"),
        (["--strategy", "random"], "--strategy"),
        (["--taxonomy", str(tmp_path / "none.json")], "taxonomy file not found"),
        (["--verify", "template:"], "cannot answer questions"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main(["data", "build", "--images", str(tmp_path / "img"), "--out", str(tmp_path / "o.json"), "--no-progress", *args])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and needle in err and "Traceback" not in err, (args, err)
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "build", "--images", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o.json")])
    assert exit_info.value.code == 2 and "nowhere" in capsys.readouterr().err


@pytest.mark.slow
def test_killed_cli_run_resumes_without_asking_again(tmp_path, chat_server):
    """Run the CLI in a subprocess, SIGKILL it midway, rerun: finished answers are not requested
    again and none is lost."""
    _images(tmp_path / "img", "folders", n=8)
    total = 8 * 2
    chat_server.behaviour = lambda req, n: Reply(text=f"Answer {req.image[:8]} {'A' if 'appearance' in req.question else 'S'}.", delay=0.15)
    out, cache = tmp_path / "out.json", tmp_path / "out.json.cache.jsonl"
    cmd = [sys.executable, "-m", "dcar", "data", "build", "--images", str(tmp_path / "img"), "--out", str(out),
           "--captioner", chat_server.spec(), "--workers", "1", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not cache.exists() or len(cache.read_text().splitlines()) < 6):
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()  # killed before the end: no half-written output
    finished = [json.loads(line)["answer"] for line in cache.read_text().splitlines()]
    assert 6 <= len(finished) < total
    first_run = len(chat_server.requests)

    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=180)
    second = chat_server.requests[first_run:]
    assert len(second) == total - len(finished)  # nothing finished was asked again
    asked_again = {f"Answer {r.image[:8]} {'A' if 'appearance' in r.question else 'S'}." for r in second}
    assert not asked_again & set(finished)
    captions = " ".join(e.caption for e in load_fdrd(out).entries)
    assert all(answer in captions for answer in finished)  # and none was lost
    assert len(load_fdrd(out).entries) == 8
