"""The before/after page: which queries it picks, what it marks, and that it embeds its images."""

from __future__ import annotations

import re

from PIL import Image

from dcar.data.records import Entry
from dcar.gallery import pick_examples, query_changes, render_page, write_gallery


def _rows(images: list[str], i2t_ranks: list[int], t2i_ranks: list[int]) -> list[dict]:
    """Records in `dcar eval --per-query`'s layout; ranks given 1-based for readability. Query i's
    correct item is gallery item i, listed in position i (so its top list agrees with its rank
    only where that is i + 1; the page reads the marks from ``relevant``, not from the rank)."""
    n = len(images)
    scores = [round(0.9 - 0.1 * j, 6) for j in range(n)]
    rows = []
    for direction, ranks in (("i2t", i2t_ranks), ("t2i", t2i_ranks)):
        for i, rank in enumerate(ranks):
            rows.append({"dataset": "d", "direction": direction, "query": f"k{i}", "category": "c", "rank": rank - 1,
                         "relevant": [f"k{i}"], "top": [f"k{j}" for j in range(n)], "scores": scores})
    return rows


def _entries(images: list[str]) -> list[Entry]:
    return [Entry(key=f"k{i}", caption=f"caption {i}", category="c", image=p) for i, p in enumerate(images)]


def _images(tmp_path, n: int) -> list[str]:
    paths = []
    for i in range(n):
        p = tmp_path / f"img{i}.png"
        Image.new("RGB", (40, 30), (40 * i, 10, 200)).save(p)
        paths.append(str(p))
    return paths


def test_query_changes_sorts_queries_by_what_happened_to_their_rank_one_hit(tmp_path):
    images = _images(tmp_path, 4)
    before = _rows(images, [1, 2, 1, 3], [1, 1, 1, 1])
    after = _rows(images, [2, 1, 1, 3], [1, 1, 1, 1])
    changes = query_changes(before, after, "i2t")
    assert changes["fixed"] == [("d", "i2t", "k1")]
    assert changes["broken"] == [("d", "i2t", "k0")]
    assert changes["both right"] == [("d", "i2t", "k2")]
    assert changes["both wrong"] == [("d", "i2t", "k3")]


def test_examples_follow_the_fixed_to_broken_proportion_and_never_hide_the_broken():
    changes = {"fixed": [("d", "t2i", str(i)) for i in range(9)], "broken": [("d", "t2i", "b")], "both right": [], "both wrong": []}
    picked = pick_examples(changes, 4)
    kinds = [k for k, _ in picked]
    assert kinds.count("broken") == 1 and kinds.count("fixed") == 3
    assert pick_examples({"fixed": [], "broken": [], "both right": [], "both wrong": []}, 4) == []
    assert pick_examples(changes, 4, seed=1) == pick_examples(changes, 4, seed=1)


def test_page_shows_every_run_marks_the_correct_item_and_embeds_thumbnails(tmp_path):
    images = _images(tmp_path, 5)
    before = _rows(images, [2, 2, 1, 1, 1], [3, 1, 1, 1, 1])
    after = _rows(images, [1, 1, 1, 1, 2], [1, 1, 1, 1, 1])
    html_text = render_page("demo <test>", [("zero-shot", before), ("dcar", after)], _entries(images), examples_per_direction=3, k=3)
    assert "demo &lt;test&gt;" in html_text  # titles are escaped
    assert html_text.count("<th>zero-shot") == html_text.count("<th>dcar") > 0
    assert "fixed 2, broken 1" in html_text  # i2t: queries 0 and 1 fixed, 4 broken
    assert "fixed 1, broken 0" in html_text  # t2i
    assert 'class="hit"' in html_text and 'class="cap hit"' in html_text
    assert re.search(r'src="data:image/jpeg;base64,[A-Za-z0-9+/=]{40,}"', html_text)
    assert str(tmp_path) not in html_text  # images are embedded, never linked by path
    out = write_gallery(tmp_path / "page.html", "t", [("zero-shot", before), ("dcar", after)], _entries(images))
    assert out.read_text(encoding="utf-8").startswith("<!doctype html>")


def test_page_summary_counts_recall_from_the_ranks(tmp_path):
    images = _images(tmp_path, 4)
    before = _rows(images, [1, 2, 6, 1], [1, 1, 1, 1])
    page = render_page("t", [("zero-shot", before), ("dcar", before)], _entries(images))
    # i2t: 2 of 4 at rank 1 (50.00), 3 of 4 within rank 5 (75.00); t2i all at rank 1
    assert "<tr><th>zero-shot</th><td>100.00</td><td>100.00</td><td>50.00</td><td>75.00</td></tr>" in page
