from __future__ import annotations

import json
from pathlib import Path

import pytest
from data_helpers import save_image, write_json

from dcar.data.sources import detect_format, load_entries
from dcar.errors import DataError


def test_image_folder(tmp_path: Path):
    save_image(tmp_path / "roses" / "a.jpg")
    save_image(tmp_path / "roses" / "sub" / "b.png")
    save_image(tmp_path / "tulips" / "c.JPG")
    save_image(tmp_path / "loose.jpg")
    (tmp_path / "tulips" / "notes.txt").write_text("not an image")
    data = load_entries(tmp_path)
    assert data.format == "folder"
    assert sorted((e.key, e.category, e.caption) for e in data.entries) == [
        ("roses/a.jpg", "roses", ""),
        ("roses/sub/b.png", "roses", ""),
        ("tulips/c.JPG", "tulips", ""),
    ]
    assert all(Path(e.image).is_file() for e in data.entries) and data.missing_images == []
    assert any("1 images lie directly" in p for p in data.problems)


def test_empty_folder(tmp_path: Path):
    with pytest.raises(DataError, match="no images in class sub-folders"):
        load_entries(tmp_path)


def test_csv_caption_optional_paths_relative_to_table(tmp_path: Path):
    save_image(tmp_path / "imgs" / "a.jpg")
    save_image(tmp_path / "imgs" / "b.jpg")
    (tmp_path / "list.csv").write_text(
        "Image,Category,meta_category\nimgs/a.jpg,rose,flower\nimgs/b.jpg,tulip,\nimgs/zz.jpg,tulip,\n"
    )
    data = load_entries(tmp_path / "list.csv")
    assert data.format == "csv"
    assert [(e.caption, e.category, e.meta_category) for e in data.entries] == [
        ("", "rose", "flower"), ("", "tulip", None), ("", "tulip", None)
    ]
    assert data.entries[0].image == str(tmp_path.resolve() / "imgs/a.jpg")
    assert data.missing_images == ["imgs/zz.jpg"]
    assert [e.key for e in data.with_images()] == ["imgs/a.jpg", "imgs/b.jpg"]


def test_csv_with_image_root_and_repeated_images(tmp_path: Path):
    save_image(tmp_path / "root" / "x" / "a.jpg")
    (tmp_path / "list.csv").write_text(
        'image,caption,category\nx/a.jpg,"a red, round flower",rose\nx/a.jpg,another caption,rose\n'
    )
    data = load_entries(tmp_path / "list.csv", images=tmp_path / "root")
    assert [e.key for e in data.entries] == ["x/a.jpg", "x/a.jpg#2"]
    assert data.entries[0].caption == "a red, round flower"
    assert data.entries[0].image == data.entries[1].image and data.missing_images == []


def test_csv_errors(tmp_path: Path):
    (tmp_path / "a.csv").write_text("image,caption\na.jpg,x\n")
    with pytest.raises(DataError, match=r"a\.csv: missing column 'category'"):
        load_entries(tmp_path / "a.csv")
    (tmp_path / "b.csv").write_text("image,category\na.jpg,rose\nb.jpg,\n")
    with pytest.raises(DataError, match=r"b\.csv: line 3: empty 'category'"):
        load_entries(tmp_path / "b.csv")
    data = load_entries(tmp_path / "b.csv", strict=False)
    assert len(data.entries) == 1 and data.skipped == ["line 3: empty 'category'"]


def test_tsv(tmp_path: Path):
    (tmp_path / "a.tsv").write_text("image\tcategory\tcaption\na.jpg\trose\ta, b\n")
    assert load_entries(tmp_path / "a.tsv").entries[0].caption == "a, b"


def test_jsonl(tmp_path: Path):
    save_image(tmp_path / "a.jpg")
    rows = [{"image": "a.jpg", "category": "rose", "caption": "red"}, {"image": "b.jpg", "category": "lily"}]
    (tmp_path / "l.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    data = load_entries(tmp_path / "l.jsonl")
    assert data.format == "jsonl" and [e.caption for e in data.entries] == ["red", ""]
    assert data.missing_images == ["b.jpg"]


def test_jsonl_bad_line(tmp_path: Path):
    (tmp_path / "l.jsonl").write_text('{"image": "a.jpg", "category": "rose"}\n{oops\n[1]\n')
    with pytest.raises(DataError, match=r"l\.jsonl: line 2: invalid JSON"):
        load_entries(tmp_path / "l.jsonl")
    data = load_entries(tmp_path / "l.jsonl", strict=False)
    assert len(data.entries) == 1 and len(data.skipped) == 2 and "expected a JSON object" in data.skipped[1]


def test_fdrd_through_load_entries(flower_like):
    fdrd, root = flower_like
    data = load_entries(fdrd, images=root)
    assert data.format == "fdrd" and len(data.entries) == 3 and data.missing_images == []
    assert data.extra["identical_negatives"] == 3
    assert load_entries(fdrd).image_root is None  # FDRD without a root: images not checked


def test_sniffing_unknown_extensions(tmp_path: Path):
    write_json(tmp_path / "one_line_fdrd.txt", {"a_1": {"positive": "p"}})
    (tmp_path / "indented.dat").write_text(json.dumps({"a_1": {"positive": "p"}}, indent=2))
    (tmp_path / "rows.txt").write_text('{"image": "a.jpg", "category": "c"}\n{"image": "b.jpg", "category": "c"}\n')
    (tmp_path / "table.txt").write_text("image,category\na.jpg,c\n")
    assert detect_format(tmp_path / "one_line_fdrd.txt") == "fdrd"
    assert detect_format(tmp_path / "indented.dat") == "fdrd"
    assert detect_format(tmp_path / "rows.txt") == "jsonl"
    assert detect_format(tmp_path / "table.txt") == "csv"
    with pytest.raises(DataError, match="file or folder not found"):
        detect_format(tmp_path / "nope.csv")
