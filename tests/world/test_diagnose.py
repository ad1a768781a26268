"""`dcar world diagnose`: the world's checks of a model, loaded like every other model."""

from __future__ import annotations

import json

from cli_helpers import run_cli


def test_world_diagnose_writes_its_report_and_rerenders_it(tmp_path, capsys):
    out = tmp_path / "diag"
    args = ["world", "diagnose", "--model", "builtin:synthetic-small", "--domain", "garden",
            "--n-pretrain", "40", "--n-test", "48", "--out", str(out)]
    code, stdout, err = run_cli(args, capsys)
    assert code == 0, err
    report = json.loads((out / "diagnose.json").read_text())
    assert report["model"] == "builtin:synthetic-small" and list(report["domains"]) == ["garden"]
    garden = report["domains"]["garden"]
    assert garden["n"] == 48 and report["pretrain_heldout"]["n"] == 40
    for r in (garden, report["pretrain_heldout"]):
        for d in ("i2t", "t2i"):
            assert 0 <= r["recall"][d]["R@1"] <= r["recall"][d]["R@5"] <= r["recall"][d]["R@10"] <= 100
    probe = garden["zero_shot_classification"]
    assert probe["chance_subcategory"] < probe["linear_probe_16shot"] <= 100  # the shipped model knows the world
    table = (out / "diagnose.md").read_text()
    assert "| garden | 48 |" in table and table.strip() in stdout
    code, again, _ = run_cli(["world", "diagnose", "--from-json", str(out / "diagnose.json")], capsys)
    assert code == 0 and again.strip() == table.strip()


def test_world_diagnose_refuses_an_unknown_domain_in_one_line(capsys):
    code, _, err = run_cli(["world", "diagnose", "--domain", "nowhere"], capsys)
    assert code == 2 and "nowhere" in err and len(err.strip().splitlines()) == 1
