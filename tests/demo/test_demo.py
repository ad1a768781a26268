"""`dcar demo` end to end on the built-in model (one epoch): every output, and a page a person can read."""

from __future__ import annotations

import json

from cli_helpers import run_cli


def test_demo_writes_results_report_chart_and_a_before_after_page(tmp_path, capsys):
    out = tmp_path / "demo"
    code, _, err = run_cli(["demo", "--out", str(out), "--epochs", "1"], capsys)
    assert code == 0, err
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert [r["label"] for r in runs] == ["zero-shot", "clip-adapter", "dcar"]
    for r in runs:
        for d in ("i2t", "t2i"):
            assert 0.0 <= r["avg"][d]["R@1"] <= r["avg"][d]["R@5"] <= r["avg"][d]["R@10"] <= 100.0
    report = (out / "report.md").read_text()
    assert "clip-adapter trained" in report and "dcar trained" in report
    assert (out / "recall.png").stat().st_size > 0
    page = (out / "demo.html").read_text()
    assert "Text to image" in page and "Image to text" in page
    assert page.count("<th>zero-shot") == page.count("<th>clip-adapter") == page.count("<th>dcar") > 0
    assert "data:image/jpeg;base64," in page


def test_demo_refuses_an_unknown_baseline_before_any_work(tmp_path, capsys):
    code, _, err = run_cli(["demo", "--out", str(tmp_path / "d"), "--baseline", "nope"], capsys)
    assert code == 2 and "unknown method 'nope'" in err
    assert not (tmp_path / "d" / "data").exists()
