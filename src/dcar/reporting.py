"""Tables and charts from results.json objects (the `dcar eval` schema), for demo and compare."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from dcar.atomic import save_figure_atomic

KS = ("R@1", "R@5", "R@10")
DIRECTIONS = ("i2t", "t2i")


def run_label(run: dict[str, Any]) -> str:
    return run.get("label") or run.get("method", "?")


def _rows(runs: list[dict[str, Any]]) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(run label, backbone, dataset name, metrics) for every dataset of every run, AVG last when
    >1 dataset. The backbone is the model spec the run used: the same method on two backbones is
    two different results."""
    rows = []
    for run in runs:
        datasets = run.get("datasets", {})
        backbone = str(run.get("model", "?"))
        for name, metrics in datasets.items():
            rows.append((run_label(run), backbone, name, metrics))
        if len(datasets) > 1 and "avg" in run:
            rows.append((run_label(run), backbone, "AVG", run["avg"]))
    return rows


def markdown_table(runs: list[dict[str, Any]]) -> str:
    header = "| method | backbone | dataset | " + " | ".join(f"I2T {k}" for k in KS) + " | " + " | ".join(f"T2I {k}" for k in KS) + " | hard-neg acc |"
    lines = [header, "|" + "---|" * (4 + 2 * len(KS))]
    for label, backbone, name, m in _rows(runs):
        cells = [f"{m[d][k]:.2f}" for d in DIRECTIONS for k in KS]
        hn = m.get("hard_negative_acc")
        lines.append(f"| {label} | {backbone} | {name} | " + " | ".join(cells) + f" | {'-' if hn is None else f'{hn:.2f}'} |")
    return "\n".join(lines) + "\n"


def rich_table(runs: list[dict[str, Any]], title: str = "Recall@K (%)") -> Table:
    table = Table(title=title)
    for col in ("method", "backbone", "dataset", *(f"I2T {k}" for k in KS), *(f"T2I {k}" for k in KS)):
        table.add_column(col, justify="left" if col in ("method", "backbone", "dataset") else "right")
    for label, backbone, name, m in _rows(runs):
        table.add_row(label, backbone, name, *(f"{m[d][k]:.2f}" for d in DIRECTIONS for k in KS))
    return table


def recall_chart(runs: list[dict[str, Any]], path: str | Path, title: str = "Recall@K") -> None:
    """Grouped bars: one group per (direction, K), one bar per run (AVG or the single dataset)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [f"{d.upper()} {k}" for d in DIRECTIONS for k in KS]
    width = 0.8 / max(1, len(runs))
    fig, ax = plt.subplots(figsize=(8, 4))
    for i, run in enumerate(runs):
        summary = run["avg"] if len(run.get("datasets", {})) > 1 else next(iter(run["datasets"].values()))
        values = [summary[d][k] for d in DIRECTIONS for k in KS]
        xs = [g + i * width - 0.4 + width / 2 for g in range(len(groups))]
        ax.bar(xs, values, width, label=run_label(run))
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel("recall (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=120)
    plt.close(fig)


def summary_table(title: str, rows: list[tuple[str, object]]) -> Table:
    """A two-column "what / value" table, as the data commands print their reports."""
    table = Table(title=title, show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for what, value in rows:
        table.add_row(what, str(value))
    return table
