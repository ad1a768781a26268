"""The bad-input corpus's shared good inputs (a tiny model, a small labelled set, a finished run)
and the summary it prints: kinds tried, clean errors, counted skips."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from dcar.cli import main
from dcar.data.records import Entry, write_fdrd

import corpus as C


@pytest.fixture(scope="session")
def good_inputs(tiny_spec, labelled_set, labelled_csv, tmp_path_factory) -> dict:
    entries, _ = labelled_set
    table, images = labelled_csv
    folder = tmp_path_factory.mktemp("badinput-good")
    fdrd = folder / "good.json"
    write_fdrd([Entry(e.key, e.caption, e.category, Path(e.image).name, [f"This is a plarvik. {e.caption}"]) for e in entries], fdrd)
    run = folder / "run"
    try:
        main(["train", "--method", "coop", "--model", tiny_spec, "--train", str(table), "--images", str(images),
              "--out", str(run), "--epochs", "2", "--batch-size", "8", "--workers", "0", "--device", "cpu"])
    except SystemExit as exit_:
        assert not exit_.code
    return {"spec": tiny_spec, "fdrd": fdrd, "csv": table, "images": images, "run": run}


@pytest.fixture
def work_factory(good_inputs, tmp_path):
    counter = itertools.count()

    def make() -> C.Work:
        case_dir = tmp_path / f"case{next(counter)}"
        case_dir.mkdir()
        return C.Work(tmp=case_dir, **good_inputs)

    return make


def pytest_terminal_summary(terminalreporter):
    from test_corpus import CASES, TALLY

    if not TALLY:
        return
    outcomes = [t["outcome"] for t in TALLY.values()]
    terminalreporter.write_line(
        f"bad-input corpus: {len({c.kind for c in CASES})} kinds, {len(CASES)} cases through "
        f"{len({c.command for c in CASES})} commands; passed {len(TALLY)}: "
        f"{outcomes.count('clean error')} clean errors, {outcomes.count('counted skip')} counted skips, "
        f"{outcomes.count('accepted')} accepted as valid"
    )
