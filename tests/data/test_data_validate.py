from __future__ import annotations

import json
from pathlib import Path

import pytest
from data_helpers import caltech_style, save_image, write_json

from cli_helpers import run_cli
from dcar.backbone.tokenizer import count_over_length, token_count
from dcar.data.validate import validate




def test_token_count_includes_start_and_end():
    assert token_count("a photo") == 4
    assert count_over_length(["word " * 75, "word " * 76, "short", "word " * 76]) == 2


def test_validate_counts_problems(tmp_path: Path, flower_like):
    fdrd, root = flower_like
    obj = json.loads(fdrd.read_text())
    (root / "flower/test/corn_poppy_image_00001.jpg").write_bytes(b"\xff\xd8 broken")
    obj["gone_image_00009"] = dict(
        obj["monkshood_image_00000"], file_path="/x/gone_image_00009.jpg", file_name="gone_image_00009"
    )
    obj["long_image_00010"] = dict(obj["monkshood_image_00000"], positive="word " * 80)
    obj["bad_image_00011"] = {"negative": []}
    write_json(fdrd, obj)
    r = validate(fdrd, images=root)
    assert (r["entries"], r["skipped_entries"], r["classes"]) == (5, 1, 2)
    assert (r["negatives_min"], r["negatives_max"]) == (4, 4)
    assert r["identical_negatives"] == 4  # one per fixture entry, plus the unchanged copy
    assert (r["missing_images"], r["unreadable_images"], r["over_length_captions"]) == (1, 1, 1)
    assert any("corn_poppy_image_00001.jpg" in p for p in r["problems"])
    assert any("bad_image_00011" in p for p in r["problems"])


def test_images_unchecked_without_root(flower_like):
    r = validate(flower_like[0])
    assert r["missing_images"] is None and r["unreadable_images"] is None and r["entries"] == 3


def test_cli_json_is_one_object(flower_like, capsys):
    fdrd, root = flower_like
    code, out, _ = run_cli(["data", "validate", str(fdrd), "--images", str(root), "--json"], capsys)
    assert code == 0
    report = json.loads(out)  # the whole stdout is one JSON document
    for key in ("entries", "classes", "negatives_min", "negatives_max", "identical_negatives",
                "missing_images", "unreadable_images", "over_length_captions", "problems"):
        assert key in report
    assert report["entries"] == 3 and report["unreadable_images"] == 0


def test_cli_human_summary(caltech_like, capsys):
    code, out, _ = run_cli(["data", "validate", str(caltech_like[0])], capsys)
    assert code == 0 and "entries" in out and "not checked" in out


@pytest.mark.parametrize("content", [None, '{"a": ', "[]"])
def test_cli_unreadable_file_exits_2_with_one_line(tmp_path: Path, capsys, content):
    path = tmp_path / "f.json"
    if content is not None:
        path.write_text(content)
    code, out, err = run_cli(["data", "validate", str(path), "--json"], capsys)
    assert code == 2 and out == ""
    assert err.strip().startswith("error:") and str(path) in err and len(err.strip().splitlines()) == 1


def test_cli_placeholder_paths_only(tmp_path: Path, capsys):
    """A Caltech-style file whose images are not under the root: reported, still exit 0."""
    fdrd = write_json(tmp_path / "c.json", {"Faces_image_0001.jpg": caltech_style("Faces_image_0001.jpg", "face", "c")})
    save_image(tmp_path / "img" / "Other" / "image_0001.jpg")
    code, out, _ = run_cli(["data", "validate", str(fdrd), "--images", str(tmp_path / "img"), "--json"], capsys)
    assert code == 0 and json.loads(out)["missing_images"] == 1


@pytest.mark.shared_data
@pytest.mark.parametrize("decode", [False, pytest.param(True, marks=pytest.mark.slow)])
@pytest.mark.parametrize(
    "name,images,entries,classes",
    [("flower_test.json", "flower/test", 2463, 102), ("inter_caltech-101_test.json", "caltech-101", 2465, 100)],
)
def test_shared_fdrd_files(shared_data: Path, name, images, entries, classes, decode):
    r = validate(shared_data / "fdrd" / name, images=shared_data / "images" / images, decode=decode)
    assert (r["entries"], r["classes"], r["skipped_entries"]) == (entries, classes, 0)
    assert r["missing_images"] == 0
    if name.startswith("flower"):
        assert (r["negatives_min"], r["negatives_max"]) == (4, 4)
        assert r["identical_negatives"] > 0
    else:
        assert (r["negatives_min"], r["negatives_max"], r["identical_negatives"]) == (0, 0, 0)
    assert r["unreadable_images"] == (0 if decode else None)
