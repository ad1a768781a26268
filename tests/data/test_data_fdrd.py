from __future__ import annotations

import json
from pathlib import Path

import pytest
from data_helpers import save_image, write_json

from dcar.data.fdrd import category_from_key, load_fdrd
from dcar.data.image_index import ImageIndex, resolve_images
from dcar.data.records import Entry
from dcar.errors import DataError


@pytest.mark.parametrize(
    "key,cls",
    [
        ("707-320_1514522", "707-320"),
        ("Sphynx_43", "Sphynx"),
        ("monkshood_image_06422", "monkshood"),
        ("Faces_image_0426.jpg", "Faces"),
        ("great_pyrenees_118", "great_pyrenees"),
        ("no_number_here", None),
    ],
)
def test_category_from_key(key, cls):
    assert category_from_key(key) == cls


def test_flower_variant(flower_like):
    fdrd, root = flower_like
    f = load_fdrd(fdrd, images=root)
    assert [e.category for e in f.entries] == ["monkshood", "corn_poppy", "monkshood"]
    assert f.classes == ["corn_poppy", "monkshood"]
    assert (f.negatives_min, f.negatives_max) == (4, 4)
    assert f.identical_negatives == 3 and f.entries_with_identical_negatives == 3
    assert f.class_from_key == 0
    assert f.resolution.missing == []
    # the authors' absolute path was matched by its tail under the user's root
    assert f.entries[0].image == str(root.resolve() / "flower/test/monkshood_image_00000.jpg")
    assert any("identical to their positive" in p for p in f.problems)


def test_caltech_variant(caltech_like):
    fdrd, root = caltech_like
    f = load_fdrd(fdrd, images=root)
    assert f.classes == ["face", "yin_yang"]
    assert (f.negatives_min, f.negatives_max) == (0, 0) and f.identical_negatives == 0
    assert f.resolution.missing == []
    # placeholder path -> the flattened key found as <folder>_<name>
    by_key = {e.key: e.image for e in f.entries}
    assert by_key["yin_yang_image_0002.jpg"].endswith("101_ObjectCategories/yin_yang/image_0002.jpg")


def test_without_images_keeps_written_path(flower_like, caltech_like):
    f = load_fdrd(flower_like[0])
    assert f.resolution is None and f.entries[0].image.startswith("/root/autodl-tmp/")
    assert load_fdrd(caltech_like[0]).entries[0].image == "Faces_image_0001.jpg"  # not the placeholder


def test_class_derived_from_key_when_class_name_absent(tmp_path: Path):
    fdrd = write_json(
        tmp_path / "pets.json",
        {
            "Sphynx_43": {"positive": "a cat", "negative": []},
            "707-320_1514522": {"positive": "a plane", "class_name": ""},
            "oddkey": {"positive": "something"},
        },
    )
    f = load_fdrd(fdrd)
    assert [e.category for e in f.entries] == ["Sphynx", "707-320", "oddkey"]
    assert f.class_from_key == 3
    assert any("no numeric suffix" in p and "oddkey" in p for p in f.problems)


def test_missing_positive_names_file_and_key(tmp_path: Path):
    fdrd = write_json(tmp_path / "f.json", {"a_1": {"positive": "ok"}, "b_2": {"negative": []}})
    with pytest.raises(DataError, match=r"f\.json: entry 'b_2': missing 'positive'"):
        load_fdrd(fdrd)
    f = load_fdrd(fdrd, strict=False)
    assert [e.key for e in f.entries] == ["a_1"]
    assert f.skipped == ["b_2: missing 'positive' caption"]
    assert any("1 entries skipped" in p for p in f.problems)


@pytest.mark.parametrize(
    "content,message",
    [
        ('{"a": ', "invalid JSON at line 1"),
        ("[1, 2]", "JSON object keyed by image id, got a JSON list"),
        ("{}", "no entries"),
        ('{"a_1": "text"}', "entry 'a_1': expected an object"),
        ('{"a_1": {"positive": "p", "negative": "n"}}', "entry 'a_1': 'negative' must be a list"),
        ('{"a_1": {"positive": 3}}', "entry 'a_1': 'positive' is not a string"),
    ],
)
def test_bad_files(tmp_path: Path, content, message):
    (tmp_path / "bad.json").write_text(content)
    with pytest.raises(DataError, match=message) as info:
        load_fdrd(tmp_path / "bad.json")
    assert str(tmp_path / "bad.json") in str(info.value) and "\n" not in str(info.value)


def test_missing_file_and_not_utf8(tmp_path: Path):
    with pytest.raises(DataError, match="file not found"):
        load_fdrd(tmp_path / "nope.json")
    (tmp_path / "latin.json").write_bytes('{"é": 1}'.encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        load_fdrd(tmp_path / "latin.json")


def test_duplicate_keys_reported(tmp_path: Path):
    (tmp_path / "d.json").write_text('{"a_1": {"positive": "x"}, "a_1": {"positive": "y"}}')
    f = load_fdrd(tmp_path / "d.json")
    assert [e.caption for e in f.entries] == ["y"] and f.duplicate_keys == ["a_1"]


def test_missing_and_ambiguous_images(tmp_path: Path):
    root = tmp_path / "img"
    save_image(root / "cats" / "image_0001.jpg")
    save_image(root / "dogs" / "image_0001.jpg")
    save_image(root / "dogs" / "rex_7.png")
    entries = [
        Entry("image_0001.jpg", "c", "x"),  # two files share this name: not guessed
        Entry("dogs_image_0001", "c", "dogs"),  # <folder>_<stem> is unique
        Entry("rex_7", "c", "rex"),  # stem, other extension
        Entry("k", "c", "x", image="elsewhere/dogs/rex_7.png"),  # relative path tail
        Entry("gone_3", "c", "x"),
    ]
    res = resolve_images(entries, root)
    assert res.missing == ["image_0001.jpg", "gone_3"] and res.ambiguous == ["image_0001.jpg"]
    assert res.found["dogs_image_0001"] == root.resolve() / "dogs/image_0001.jpg"
    assert res.found["rex_7"] == res.found["k"] == root.resolve() / "dogs/rex_7.png"


def test_absolute_path_outside_root_is_used(tmp_path: Path):
    outside = save_image(tmp_path / "other" / "a.jpg")
    (tmp_path / "root").mkdir()
    res = resolve_images([Entry("a_1", "c", "x", image=str(outside))], tmp_path / "root")
    assert res.found["a_1"] == outside


def test_resolution_answers_from_one_walk_of_the_root(tmp_path: Path):
    """The index is a snapshot of one walk: resolving 30 entries touches the disk no more (a file
    removed afterwards still resolves, one added afterwards does not)."""
    root = tmp_path / "img"
    for i in range(30):
        save_image(root / f"c{i % 3}" / f"c{i % 3}_image_{i:04d}.jpg")
    entries = [Entry(f"c{i % 3}_image_{i:04d}", "", f"c{i % 3}", image="YOUR_IMAGE_PATH") for i in range(30)]
    index = ImageIndex(root)
    (root / "c0" / "c0_image_0000.jpg").unlink()
    save_image(root / "c0" / "c0_image_0099.jpg")
    res = resolve_images(entries + [Entry("c0_image_0099", "", "c0", image="YOUR_IMAGE_PATH")], index)
    assert len(res.found) == 30 and "c0_image_0000" in res.found and "c0_image_0099" not in res.found


def test_symlink_loop_is_walked_once(tmp_path: Path):
    save_image(tmp_path / "img" / "a" / "x_1.jpg")
    (tmp_path / "img" / "a" / "loop").symlink_to(tmp_path / "img")
    assert list(ImageIndex(tmp_path / "img").by_rel) == ["a/x_1.jpg"]


def test_missing_root(tmp_path: Path):
    with pytest.raises(DataError, match="image folder not found"):
        ImageIndex(tmp_path / "nope")


def test_loaded_entries_round_trip_through_write_fdrd(tmp_path: Path, flower_like):
    from dcar.data.records import write_fdrd

    f = load_fdrd(flower_like[0])
    write_fdrd(f.entries, tmp_path / "copy.json")
    g = load_fdrd(tmp_path / "copy.json")
    assert [(e.key, e.caption, e.category, e.negatives) for e in g.entries] == [
        (e.key, e.caption, e.category, e.negatives) for e in f.entries
    ]
    assert json.loads((tmp_path / "copy.json").read_text())  # sanity: valid JSON
