"""Exported splits are ordinary FDRD data: JSON keys, images on disk, a taxonomy."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from dcar.cli import main
from dcar.data.taxonomy import read_taxonomy
from dcar.world.captions import caption
from dcar.world.domains import get_domain
from dcar.world.export import materialise
from dcar.world.render import render_array
from dcar.world.sample import make_sample

FDRD_KEYS = {"file_name", "file_path", "class_name", "positive", "negative", "number"}


def test_materialise_writes_fdrd_images_and_taxonomy(tmp_path):
    res = materialise("hangar", "train", tmp_path, shots=1, progress=False)
    assert res.fdrd == tmp_path / "hangar_train.json" and res.count == 16
    data = json.loads(res.fdrd.read_text())
    taxonomy = read_taxonomy(res.taxonomy)
    assert taxonomy == get_domain("hangar").taxonomy
    assert len(data) == 16 and len({v["class_name"] for v in data.values()}) == 16
    for i, (key, v) in enumerate(data.items()):
        assert set(v) == FDRD_KEYS and v["number"] == i
        s = make_sample("hangar", "train", i)
        assert key == s.key and v["positive"] == caption(s) and taxonomy[v["class_name"]] == s.meta
        assert len(v["negative"]) == 4
        img = np.asarray(Image.open(tmp_path / v["file_path"]).convert("RGB"))
        assert np.array_equal(img, render_array(s))  # PNG is lossless: the generator's pixels


def test_materialise_rerun_keeps_images_and_respects_size(tmp_path):
    materialise("garden", "val", tmp_path, n=3, progress=False)
    first = tmp_path / "images" / "garden_val_000000.png"
    stamp = first.stat().st_mtime_ns
    materialise("garden", "val", tmp_path, n=3, progress=False)
    assert first.stat().st_mtime_ns == stamp  # already there: skipped
    materialise("garden", "val", tmp_path, n=3, image_size=32, progress=False)
    assert Image.open(first).size == (32, 32)  # a different size is re-rendered


def test_cli_synth_writes_a_split(tmp_path):
    main(["data", "synth", "--domain", "wildlife", "--split", "test", "--n", "5", "--out", str(tmp_path)])
    data = json.loads((tmp_path / "wildlife_test.json").read_text())
    assert len(data) == 5 and (tmp_path / "wildlife_taxonomy.json").exists()
    assert len(list((tmp_path / "images").glob("*.png"))) == 5


def test_cli_synth_pretrain_split(tmp_path):
    main(["data", "synth", "--domain", "pretrain", "--split", "val", "--n", "4", "--out", str(tmp_path),
          "--negatives", "0"])
    data = json.loads((tmp_path / "pretrain_val.json").read_text())
    assert len(data) == 4 and all(v["negative"] == [] for v in data.values())


def test_cli_synth_list(capsys):
    main(["data", "synth", "--list"])
    names = [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()]
    assert names == ["pretrain", "garden", "wildlife", "hangar",  # world v1 (the shipped model's)
                     "pretrain-v2", "meadow", "pond", "airshow", "cabinet"]  # world v2


def test_cli_synth_unknown_domain_is_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["data", "synth", "--domain", "zoo", "--out", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "unknown domain 'zoo'" in err and len(err.splitlines()) == 1


def test_materialise_with_the_shared_negative_generator(tmp_path):
    res = materialise("garden", "test", tmp_path, n=6, progress=False, negatives_from="shared")
    for v in json.loads(res.fdrd.read_text()).values():
        assert len(v["negative"]) == 4 and v["positive"] not in v["negative"]


def test_materialise_rejects_unknown_negative_source(tmp_path):
    from dcar.errors import DcarError

    with pytest.raises(DcarError, match="negatives_from"):
        materialise("garden", "test", tmp_path, n=1, progress=False, negatives_from="llm")


def test_materialise_rerenders_when_the_catalog_definition_changed(tmp_path, monkeypatch):
    """Images cached from another catalog definition or world seed are never reused."""
    import dataclasses

    from dcar.world import domains
    from dcar.world.domains import Style

    first = tmp_path / "images" / "garden_val_000000.png"
    materialise("garden", "val", tmp_path, n=2, progress=False)
    before = first.read_bytes()
    changed = dataclasses.replace(domains.DOMAINS["garden"], style=Style(tint=(255, 0, 0), tint_strength=0.6))
    monkeypatch.setitem(domains.DOMAINS, "garden", changed)
    materialise("garden", "val", tmp_path, n=2, progress=False)
    assert first.read_bytes() != before  # the new look, not the cached image
    monkeypatch.undo()
    materialise("garden", "val", tmp_path, n=2, progress=False)
    assert first.read_bytes() == before  # back to the original definition: rendered the same again
