"""Repairing published negatives, and the `dcar data negatives` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dcar.cli import main
from dcar.negatives import NegativeGenerator, normalize, repair_negatives

CATS = ["monkshood", "corn_poppy", "rose", "sword_lily"]


def test_identical_and_repeated_negatives_are_replaced_in_place():
    pos = "This is a monkshood.A purple flower."
    negs = ["This is a rose.A purple flower.", pos, "This is a rose.A purple flower.", "This is a corn poppy.A purple flower."]
    fixed, counts = repair_negatives(pos, negs, "monkshood", NegativeGenerator(CATS))
    assert counts.identical == 1 and counts.repeated == 1 and counts.replaced == 2 and counts.unfixable == 0
    assert fixed[0] == negs[0] and fixed[3] == negs[3]  # good ones kept, order kept
    assert len({normalize(n) for n in fixed} | {normalize(pos)}) == 5


def test_clean_lists_are_untouched_and_hopeless_ones_dropped():
    pos = "This is a rose."
    fine = ["This is a monkshood.", "This is a corn poppy."]
    assert repair_negatives(pos, fine, "rose", NegativeGenerator(CATS))[0] == fine
    fixed, counts = repair_negatives(pos, [pos, pos], "rose", NegativeGenerator(["rose"]))
    assert fixed == [] and counts.unfixable == 2


def _fdrd(path: Path, entries: dict) -> Path:
    path.write_text(json.dumps(entries))
    return path


def _published(tmp_path: Path) -> Path:
    entries = {}
    for i, cls in enumerate(["monkshood", "rose", "sword_lily", "corn_poppy"] * 2):
        name = cls.replace("_", " ")
        pos = f"This is a {name}.A small purple flower on the left."
        negs = [pos.replace(name, CATS[(i + j) % 4].replace("_", " ")) for j in range(4)]  # includes itself
        entries[f"{cls}_image_{i:05d}"] = {"file_name": f"{cls}_image_{i:05d}", "class_name": cls, "number": f"{i:05d}",
                                           "file_path": f"/root/x/{cls}_image_{i:05d}.jpg", "positive": pos, "negative": negs}
    return _fdrd(tmp_path / "published.json", entries)


def run(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return exit_info.value.code, capsys.readouterr()


def test_cli_repair_changes_only_the_bad_negatives(tmp_path, capsys):
    src = _published(tmp_path)
    out = tmp_path / "repaired.json"
    main(["data", "negatives", str(src), "--out", str(out), "--repair", "--json"])
    report = json.loads(capsys.readouterr().out)
    before, after = json.loads(src.read_text()), json.loads(out.read_text())
    assert report["repair"]["identical"] == 8 and report["repair"]["replaced"] == 8
    assert report["identical_after"] == 0 and report["repeated_after"] == 0
    changed = 0
    for key, value in before.items():
        assert {k: v for k, v in after[key].items() if k != "negative"} == {k: v for k, v in value.items() if k != "negative"}
        changed += sum(a != b for a, b in zip(value["negative"], after[key]["negative"]))
        assert all(normalize(n) != normalize(value["positive"]) for n in after[key]["negative"])
    assert changed == 8


def test_cli_generate_with_taxonomy_reports_kinds_and_meta_share(tmp_path, capsys):
    src = _published(tmp_path)
    tax = tmp_path / "tax.json"
    tax.write_text(json.dumps({"monkshood": "buttercup family", "rose": "rose family", "sword_lily": "iris family",
                               "corn_poppy": "buttercup family"}))
    out = tmp_path / "new.json"
    main(["data", "negatives", str(src), "--out", str(out), "--k", "4", "--strategy", "mixed", "--taxonomy", str(tax), "--json"])
    g = json.loads(capsys.readouterr().out)["generated"]
    assert g["identical"] == 0 and g["negatives"] == 32 and g["kinds"] == {"swap": 16, "attribute": 16}
    # monkshood and corn poppy have one sibling each: 4 of their 8 swaps stay in the family
    assert g["swaps_same_meta_share"] == pytest.approx(4 / 16)
    assert all(len(v["negative"]) == 4 for v in json.loads(out.read_text()).values())


def test_cli_csv_input_and_bad_options(tmp_path, capsys):
    csv = tmp_path / "caps.csv"
    csv.write_text("image,category,caption\na.jpg,rose,This is a rose. A red flower.\nb.jpg,sword_lily,\n")
    out = tmp_path / "o.json"
    main(["data", "negatives", str(csv), "--out", str(out), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["entries"] == 1 and report["skipped"] == 1
    assert len(json.loads(out.read_text())["a.jpg"]["negative"]) == 4
    code, captured = run(["data", "negatives", str(csv), "--out", str(out), "--strategy", "random"], capsys)
    assert code == 2 and "--strategy 'random'" in captured.err and "Traceback" not in captured.err
    code, captured = run(["data", "negatives", str(tmp_path / "missing.json"), "--out", str(out)], capsys)
    assert code == 2 and "missing.json" in captured.err


def test_repair_shared_flower_file(shared_data, tmp_path, capsys):
    """The published Flowers file: every identical or repeated negative is fixed, nothing else moves."""
    src = shared_data / "fdrd" / "flower_test.json"
    out = tmp_path / "flower_repaired.json"
    main(["data", "negatives", str(src), "--out", str(out), "--repair", "--json"])
    report = json.loads(capsys.readouterr().out)
    r = report["repair"]
    assert r["negatives"] == 9852 and r["identical"] > 200  # ~2.5% published as identical
    assert r["replaced"] == r["identical"] + r["repeated"] and r["unfixable"] == 0
    assert report["identical_after"] == 0 and report["repeated_after"] == 0
