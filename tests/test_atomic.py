"""The one atomic writer: complete files or the old ones, never a half-written one."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from dcar.atomic import save_figure_atomic, write_csv_atomic, write_text_atomic


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path):
    path = tmp_path / "out.csv"
    write_csv_atomic([{"a": 1, "b": 2}, {"a": 3}], ["a", "b"], path)
    with path.open(newline="") as f:
        assert list(csv.DictReader(f)) == [{"a": "1", "b": "2"}, {"a": "3", "b": ""}]
    with pytest.raises(ValueError):
        write_csv_atomic([{"a": 1, "unknown": 2}], ["a"], path)  # fails while writing
    assert path.read_text().splitlines()[0] == "a,b"
    write_text_atomic("x", tmp_path / "other.txt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.txt", "out.csv"]


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".pdf", b"%PDF")])
def test_figures_take_the_format_of_their_destination(tmp_path: Path, suffix, magic):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    path = save_figure_atomic(fig, tmp_path / f"plot{suffix}")
    plt.close(fig)
    assert path.read_bytes().startswith(magic)
    assert [p.name for p in tmp_path.iterdir()] == [f"plot{suffix}"]
