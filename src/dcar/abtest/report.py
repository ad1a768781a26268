"""What `dcar compare` writes for runs with per-query records: paired.md / paired.json, trec/."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from dcar.abtest.offline import markdown, paired_statistics, read_per_query, write_trec_qrels, write_trec_run
from dcar.atomic import write_json_atomic, write_text_atomic
from dcar.reporting import run_label


def compare_paired(runs: list[dict], out: Path) -> list[dict]:
    """Each run against the first, query by query; returns the comparisons written."""
    base = runs[0]
    base_q = read_per_query(base["per_query"])
    (out / "trec").mkdir(parents=True, exist_ok=True)
    write_trec_qrels(base_q, out / "trec" / "qrels.txt")
    write_trec_run(base_q, out / "trec" / "run-0.txt", run_label(base))
    comparisons, text = [], []
    for i, run in enumerate(runs[1:], 1):
        other = read_per_query(run["per_query"])
        rows = paired_statistics(base_q, other)
        write_trec_run(other, out / "trec" / f"run-{i}.txt", run_label(run))
        comparisons.append({"a": run_label(base), "b": run_label(run), "rows": rows})
        text.append(markdown(run_label(base), run_label(run), rows))
        _print(run_label(base), run_label(run), rows)
    write_json_atomic({"comparisons": comparisons}, out / "paired.json")
    write_text_atomic("\n".join(text), out / "paired.md")
    Console(stderr=True).print(f"wrote {out}/paired.md, paired.json, trec/ (qrels.txt, run-N.txt)", highlight=False)
    return comparisons


def _print(a: str, b: str, rows: list[dict]) -> None:
    table = Table(title=f"{b} - {a} (paired, 95% bootstrap CI; McNemar on R@1)")
    for col in ("dataset", "dir", "K", "A", "B", "B - A", "95% CI", "McNemar p"):
        table.add_column(col, justify="left" if col in ("dataset", "dir") else "right")
    for r in rows:
        for k, v in r["recall"].items():
            p = f"{r['mcnemar_r1']['p_value']:.3g}" if k == "R@1" else ""
            table.add_row(r["dataset"], r["direction"], k, f"{v['a']:.2f}", f"{v['b']:.2f}", f"{v['diff']:+.2f}",
                          f"[{v['ci'][0]:+.2f}, {v['ci'][1]:+.2f}]", p)
    (Console() if sys.stdout.isatty() else Console(width=200)).print(table)
