"""`dcar demo` end to end on the built-in model (one epoch): every output, and a page a person can read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from browser_helpers import browser, screenshot_dir  # noqa: F401  (browser: a fixture)
from cli_helpers import cli_status, run_cli


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory) -> Path:
    """One demo run (one epoch), shared by the tests of its outputs."""
    out = tmp_path_factory.mktemp("demo") / "out"
    assert cli_status(["demo", "--out", str(out), "--epochs", "1"]) == 0
    return out


def test_demo_writes_results_report_chart_and_a_before_after_page(demo_out):
    out = demo_out
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


def test_demo_page_shows_thumbnails_and_marks_the_correct_results_in_a_real_browser(demo_out, browser, tmp_path):
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get((demo_out / "demo.html").resolve().as_uri())
    WebDriverWait(browser, 30).until(lambda d: d.execute_script(
        "return document.images.length > 0 && [...document.images].every(i => i.complete && i.naturalWidth > 0)"))
    runs = [r["label"] for r in json.loads((demo_out / "results.json").read_text())["runs"]]
    rows = browser.find_elements("css selector", "tr th")
    assert {r.text.split("\n")[0] for r in rows} >= set(runs)  # every run has rows on the page
    # the correct result is marked wherever it is in a top 5, and visibly (the mark's own text)
    hits = browser.find_elements("css selector", ".hit")
    assert hits and all(h.is_displayed() for h in hits)
    assert "correct" in browser.execute_script(
        "return getComputedStyle(arguments[0], '::after').content", hits[0])
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= browser.execute_script("return window.innerWidth") + 1  # no sideways scrolling
    browser.set_window_size(1400, max(1050, browser.execute_script("return document.body.scrollHeight")))
    shot = screenshot_dir(tmp_path) / "demo.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
