"""A before/after page: a few test queries with each run's top results as thumbnails and captions.

Input: the per-query records of several runs on one test set (`dcar eval --per-query`, layout in
:func:`dcar.evaluation.evaluate.per_query_records`: 0-based ``rank``, ``relevant`` and ``top``
named by entry key, ``scores``), the first run being the reference (zero-shot), and the test set's
entries, which give each key's image file and caption. The page shows,
for text-to-image and image-to-text alike, queries the last run got right at rank 1 and the
reference did not, and queries it broke, in proportion to how often each happened, with every
run's top-K side by side and the correct item marked. One self-contained HTML file: thumbnails are
embedded, so it opens from anywhere and serves no file.
"""

from __future__ import annotations

import base64
import html
import io
import random
from pathlib import Path
from typing import Sequence

from PIL import Image

from dcar.atomic import write_text_atomic
from dcar.data.records import Entry

THUMB = 96  # pixels, the longest side of an embedded thumbnail


def _key(row: dict) -> tuple[str, str, str]:
    return row["dataset"], row["direction"], row["query"]


def query_changes(reference: Sequence[dict], adapted: Sequence[dict], direction: str) -> dict[str, list[tuple]]:
    """Queries of one direction by what happened to their R@1 hit: fixed, broken, both right, both wrong."""
    after = {_key(r): r for r in adapted if r["direction"] == direction}
    out: dict[str, list[tuple]] = {"fixed": [], "broken": [], "both right": [], "both wrong": []}
    for row in reference:
        if row["direction"] != direction or _key(row) not in after:
            continue
        before_hit, after_hit = row["rank"] == 0, after[_key(row)]["rank"] == 0
        kind = {(False, True): "fixed", (True, False): "broken", (True, True): "both right"}.get(
            (before_hit, after_hit), "both wrong"
        )
        out[kind].append(_key(row))
    return out


def pick_examples(changes: dict[str, list[tuple]], n: int, seed: int = 0) -> list[tuple[str, tuple]]:
    """``n`` queries drawn from the fixed and broken ones in proportion to their counts (at least
    one broken query whenever there is one, so the page never shows only wins)."""
    fixed, broken = changes["fixed"], changes["broken"]
    total = len(fixed) + len(broken)
    if total == 0:
        return []
    n_broken = min(len(broken), max(1 if broken else 0, round(n * len(broken) / total)))
    n_fixed = min(len(fixed), n - n_broken)
    rng = random.Random(seed)
    return [("fixed", k) for k in rng.sample(fixed, n_fixed)] + [("broken", k) for k in rng.sample(broken, n_broken)]


def _summary(runs: Sequence[tuple[str, Sequence[dict]]]) -> str:
    """R@1 and R@5 of each run and direction, counted from the per-query ranks (as Recall@K is)."""
    lines = ["<table class=summary><tr><th>run</th><th>T2I R@1</th><th>T2I R@5</th><th>I2T R@1</th><th>I2T R@5</th></tr>"]
    for label, rows in runs:
        cells = []
        for direction in ("t2i", "i2t"):
            ranks = [r["rank"] for r in rows if r["direction"] == direction]
            for k in (1, 5):
                cells.append(f"{100 * sum(r < k for r in ranks) / max(1, len(ranks)):.2f}")
        lines.append(f"<tr><th>{html.escape(label)}</th>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return "\n".join(lines) + "</table>"


def _thumb(path: str, cache: dict[str, str]) -> str:
    """A data: URI of a small JPEG of the image (empty when it cannot be read)."""
    if path not in cache:
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
                im.thumbnail((THUMB, THUMB))
                buf = io.BytesIO()
                im.save(buf, format="JPEG", quality=85)
            cache[path] = "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()
        except OSError:
            cache[path] = ""
    return cache[path]


def _image_cell(path: str, cache: dict[str, str], mark: str = "", score: float | None = None) -> str:
    src = _thumb(path, cache) if path else ""
    label = "" if score is None else f"<small>{score:.3f}</small>"
    return f'<figure class="{mark}"><img src="{src}" alt="{html.escape(Path(path).name)}">{label}</figure>'


def _text_cell(text: str, mark: str = "", score: float | None = None) -> str:
    label = "" if score is None else f"<small>{score:.3f}</small>"
    return f'<div class="cap {mark}">{html.escape(text)}{label}</div>'


def _run_rows(direction: str, key: tuple, runs: Sequence[tuple[str, dict]], k: int, entry: dict[str, Entry],
              cache: dict[str, str]) -> str:
    rows = []
    for label, by_key in runs:
        row = by_key[key]
        relevant = set(row["relevant"])
        scores = row["scores"] or [None] * len(row["top"])  # no scores after re-ranking
        cells = []
        for name, score in list(zip(row["top"], scores))[:k]:
            mark = "hit" if name in relevant else ""
            if direction == "t2i":
                cells.append(_image_cell(entry[name].image or "", cache, mark, score))
            else:
                cells.append(_text_cell(entry[name].caption, mark, score))
        rank = row["rank"] + 1
        rows.append(
            f'<tr><th>{html.escape(label)}<br><small>correct at rank {rank}</small></th>'
            f'<td><div class="strip">{"".join(cells)}</div></td></tr>'
        )
    return "\n".join(rows)


def render_page(
    title: str,
    runs: Sequence[tuple[str, Sequence[dict]]],
    entries: Sequence[Entry],
    examples_per_direction: int = 4,
    k: int = 5,
    seed: int = 0,
) -> str:
    """The page's HTML for ``runs`` = [(label, per-query rows), ...], reference first, adapted last."""
    indexed = [(label, {_key(r): r for r in rows}) for label, rows in runs]
    entry = {e.key: e for e in entries}
    ref_label, adapted_label = runs[0][0], runs[-1][0]
    cache: dict[str, str] = {}
    sections = []
    for direction, name in (("t2i", "Text to image"), ("i2t", "Image to text")):
        changes = query_changes(runs[0][1], runs[-1][1], direction)
        counts = ", ".join(f"{kind} {len(keys)}" for kind, keys in changes.items())
        parts = [
            f"<h2>{name}</h2>",
            f"<p>R@1 per query, {html.escape(ref_label)} &rarr; {html.escape(adapted_label)}: {counts}. "
            "Examples below are drawn from the fixed and broken queries in that proportion.</p>",
        ]
        for kind, key in pick_examples(changes, examples_per_direction, seed):
            named = entry[key[2]]
            query = _text_cell(named.caption) if direction == "t2i" else _image_cell(named.image or "", cache)
            parts.append(
                f'<section class="{kind}"><h3>{kind} by {html.escape(adapted_label)}</h3>'
                f'<div class="query">query: {query}</div><table>'
                f"{_run_rows(direction, key, indexed, k, entry, cache)}</table></section>"
            )
        sections.append("\n".join(parts))
    return _PAGE.format(title=html.escape(title), k=k, summary=_summary(runs), body="\n".join(sections))


def write_gallery(
    path: str | Path, title: str, runs: Sequence[tuple[str, Sequence[dict]]], entries: Sequence[Entry], **kwargs
) -> Path:
    """Write :func:`render_page` to ``path`` atomically."""
    write_text_atomic(render_page(title, runs, entries, **kwargs), path)
    return Path(path)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1400px; }}
h1 {{ font-size: 22px; }} h2 {{ margin-top: 32px; border-bottom: 1px solid #ccc; }}
section {{ margin: 16px 0 28px; }} section h3 {{ font-size: 15px; margin: 4px 0; }}
section.fixed h3 {{ color: #1a7f37; }} section.broken h3 {{ color: #b42318; }}
.query {{ display: flex; gap: 8px; align-items: center; margin-bottom: 6px; }}
table {{ border-collapse: collapse; }} th {{ text-align: left; vertical-align: top; width: 150px; padding: 6px; }}
.strip {{ display: flex; gap: 6px; }}
figure {{ margin: 0; padding: 3px; border: 3px solid transparent; text-align: center; }}
figure img {{ width: {thumb}px; height: {thumb}px; object-fit: cover; display: block; }}
.cap {{ width: 190px; font-size: 12px; padding: 4px; border: 3px solid #eee; }}
.hit {{ border-color: #1a7f37 !important; background: #e9f7ee; }}
.hit::after {{ content: " \\2713 correct"; color: #1a7f37; font-weight: 600; font-size: 12px; }}
small {{ display: block; color: #666; }}
table.summary td {{ padding: 2px 12px; text-align: right; }}
</style></head><body>
<h1>{title}</h1>
<p>Each block: one test query, and the top {k} results of every run, best first. The correct
result has a green frame. Scores are cosine similarities. Recall on the whole test split (%):</p>
{summary}
{body}
</body></html>
""".replace("{thumb}", str(THUMB))
