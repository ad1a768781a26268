"""`dcar data split` and taxonomies from nested class folders."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from cli_helpers import run_cli
from data_helpers import save_image

from dcar.data.records import Entry
from dcar.data.sources import load_entries
from dcar.data.split import PartSize, split_entries
from dcar.errors import DcarError

TREE = {"bird": ["finch", "wren", "robin"], "fish": ["carp", "eel"]}


@pytest.fixture
def nested(tmp_path: Path) -> Path:
    """<meta>/<sub>/<image>: 5 classes x 10 images."""
    root = tmp_path / "photos"
    for meta, subs in TREE.items():
        for sub in subs:
            for i in range(10):
                save_image(root / meta / sub / f"{sub}_{i}.jpg", color=(i * 20, 50, 50))
    return root


def _entries(per_class: dict[str, int]) -> list[Entry]:
    return [Entry(f"{c}_{i}", f"a {c}", c, f"/img/{c}_{i}.jpg") for c, n in per_class.items() for i in range(n)]


def test_nested_class_folders_give_subcategory_and_meta(nested):
    data = load_entries(nested)
    assert {(e.category, e.meta_category) for e in data.entries} == {(s, m) for m, subs in TREE.items() for s in subs}
    assert len(data.entries) == 50


def test_flat_class_folders_keep_the_top_folder_as_category(tmp_path):
    save_image(tmp_path / "a" / "x.jpg")
    save_image(tmp_path / "b" / "deeper" / "y.jpg")  # not every image two levels deep: not nested
    data = load_entries(tmp_path)
    assert {(e.category, e.meta_category) for e in data.entries} == {("a", None), ("b", None)}


def test_a_class_under_two_meta_categories_is_an_error(tmp_path):
    save_image(tmp_path / "bird" / "other" / "x.jpg")
    save_image(tmp_path / "fish" / "other" / "y.jpg")
    with pytest.raises(DcarError, match="'other' is under both 'bird' and 'fish'"):
        load_entries(tmp_path)


def test_split_is_stratified_with_shots_and_shares():
    entries = _entries({"a": 10, "b": 10, "c": 7})
    sizes = {"train": PartSize.parse("4", "--train"), "val": PartSize.parse("0.2", "--val"), "test": PartSize.parse("0.3", "--test")}
    got = split_entries(entries, sizes, seed=0)
    per = {name: {c: sum(e.category == c for e in part) for c in "abc"} for name, part in got.parts.items()}
    assert per["test"] == {"a": 3, "b": 3, "c": 2}  # round(0.3 * 7) = 2
    assert per["val"] == {"a": 2, "b": 2, "c": 1}
    assert per["train"] == {"a": 4, "b": 4, "c": 4}
    keys = [e.key for part in got.parts.values() for e in part]
    assert len(keys) == len(set(keys))  # no entry in two parts
    assert got.short == {}


def test_split_is_deterministic_and_the_test_set_does_not_move_with_the_shots():
    entries = _entries({"a": 12, "b": 9})
    sizes = {"train": PartSize.parse("rest", "--train"), "val": PartSize.parse("2", "--val"), "test": PartSize.parse("0.25", "--test")}
    keys = lambda split: {n: [e.key for e in p] for n, p in split.parts.items()}  # noqa: E731
    first, again = split_entries(entries, sizes, 7), split_entries(list(reversed(entries)), sizes, 7)
    assert {n: sorted(v) for n, v in keys(first).items()} == {n: sorted(v) for n, v in keys(again).items()}
    assert sorted(keys(split_entries(entries, sizes, 8))["test"]) != sorted(keys(first)["test"])
    few = split_entries(entries, {**sizes, "train": PartSize.parse("1", "--train")}, 7)
    assert sorted(keys(few)["test"]) == sorted(keys(first)["test"])
    assert sorted(keys(few)["val"]) == sorted(keys(first)["val"])


def test_rows_of_one_image_stay_in_one_part():
    entries = _entries({"a": 6})
    entries += [Entry(f"{e.key}#2", "another caption", "a", e.image) for e in entries]
    got = split_entries(entries, {"train": PartSize(), "val": PartSize(count=1), "test": PartSize(count=2)}, 0)
    images = {n: {e.image for e in p} for n, p in got.parts.items()}
    assert len(images["test"]) == 2 and len(got.parts["test"]) == 4
    assert not images["train"] & images["test"] and not images["val"] & images["test"]


def test_classes_smaller_than_the_shots_are_counted():
    got = split_entries(_entries({"a": 3, "b": 20}), {"train": PartSize(count=8), "val": PartSize(count=0), "test": PartSize(count=1)}, 0)
    assert got.short == {"train": ["a"]} and sum(e.category == "a" for e in got.parts["train"]) == 2


def test_cli_split_of_nested_folders_writes_fdrd_and_taxonomy(nested, tmp_path, capsys):
    out = tmp_path / "splits"
    code, stdout, err = run_cli(["data", "split", str(nested), "--out", str(out), "--train", "4", "--val", "1",
                                 "--test", "rest", "--seed", "3", "--json"], capsys)
    assert code == 0, err
    report = json.loads(stdout)
    assert (report["train_entries"], report["val_entries"], report["test_entries"]) == (20, 5, 25)
    assert json.loads((out / "taxonomy.json").read_text()) == {s: m for m, subs in TREE.items() for s in subs}
    parts = {name: load_entries(out / f"{name}.json", images=nested) for name in ("train", "val", "test")}
    for name, data in parts.items():
        assert not data.missing_images, name  # the written files find their images under the root
    images = [e.image for data in parts.values() for e in data.entries]
    assert len(images) == 50 and len(set(images)) == 50
    code2, stdout2, _ = run_cli(["data", "split", str(nested), "--out", str(tmp_path / "again"), "--train", "4",
                                 "--val", "1", "--test", "rest", "--seed", "3", "--json"], capsys)
    assert code2 == 0 and (tmp_path / "again" / "test.json").read_text() == (out / "test.json").read_text()


def test_cli_split_of_a_table_skips_bad_rows_and_counts_them(tmp_path, capsys):
    table = tmp_path / "set.csv"
    with table.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "category"])
        for i in range(8):
            save_image(tmp_path / f"x{i}.jpg")
            w.writerow([f"x{i}.jpg", "x" if i % 2 else "y"])
        w.writerow(["", "y"])  # no image: skipped, counted
        w.writerow(["gone.jpg", "y"])  # not found: skipped, counted
    code, stdout, err = run_cli(["data", "split", str(table), "--out", str(tmp_path / "s"), "--json"], capsys)
    assert code == 0, err
    r = json.loads(stdout)
    assert r["skipped_rows"] == 1 and r["missing_images"] == 1 and r["taxonomy"] is None
    assert r["train_entries"] + r["val_entries"] + r["test_entries"] == 8


@pytest.mark.parametrize(
    "sizes,says",
    [
        (["--train", "rest", "--val", "rest"], "only one part can be 'rest'"),
        (["--test", "1.5"], "--test '1.5'"),
        (["--val", "many"], "--val 'many'"),
        (["--train", "-2"], "--train '-2'"),
    ],
)
def test_cli_split_bad_sizes_are_one_line(nested, tmp_path, capsys, sizes, says):
    code, _, err = run_cli(["data", "split", str(nested), "--out", str(tmp_path / "s"), *sizes], capsys)
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1
