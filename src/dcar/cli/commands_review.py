"""`dcar review list|decide|export`: the human review queue from the command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from dcar.cli.app import app, locks_outputs

review_app = typer.Typer(no_args_is_help=True, help="The review queue: list, decide, export reviewed matches.")
app.add_typer(review_app, name="review")

QUEUE_HELP = "The queue: a review.sqlite file, or the folder (index) holding it."


def _open(queue: Path):
    from dcar.review import ReviewQueue

    return ReviewQueue(queue, create=False)  # list, decide, export: never create an empty queue


@review_app.command("list")
def list_command(
    queue: Path = typer.Argument(..., help=QUEUE_HELP),
    status: str = typer.Option("pending", "--status", help="pending, decided or all."),
    limit: int = typer.Option(50, "--limit", min=1),
) -> None:
    """Items waiting for a decision (or decided), oldest first."""
    q = _open(queue)
    table = Table(title=f"review queue {q.path}: " + ", ".join(f"{k} {v}" for k, v in q.counts().items()))
    for col in ("id", "task", "query", "proposed", "score", "decision", "reviewer"):
        table.add_column(col)
    for it in q.items(status, limit):
        table.add_row(str(it.id), it.task, it.query, it.proposed, f"{it.score:.4f}", it.decision or "", it.reviewer or "")
    (Console() if sys.stdout.isatty() else Console(width=200)).print(table)


@review_app.command("decide")
def decide_command(
    queue: Path = typer.Argument(..., help=QUEUE_HELP),
    item: int = typer.Argument(..., help="Item id (see `dcar review list`)."),
    decision: str = typer.Option(..., "--decision", help="accept, correct or reject."),
    reviewer: str = typer.Option(..., "--reviewer", help="Who decides (stored with the decision)."),
    label: Optional[str] = typer.Option(None, "--label", help="correct: the right category, caption or image."),
) -> None:
    """Record one decision (stored durably with reviewer and time; an item is decided once)."""
    it = _open(queue).decide(item, decision, reviewer, label)
    Console(stderr=True).print(f"item {it.id}: {it.decision} ({it.label}) by {it.reviewer} at {it.decided_at}", highlight=False)


@review_app.command("export")
@locks_outputs(out="file")
def export_command(
    queue: Path = typer.Argument(..., help=QUEUE_HELP),
    fmt: str = typer.Option("fdrd", "--format", help="fdrd (training data for `dcar train`), labelstudio or jsonl."),
    out: Path = typer.Option(..., "--out", help="Output file (written atomically)."),
    template: str = typer.Option("a photo of a {}.", "--template", help="fdrd: caption of a confirmed category ({} = its name)."),
) -> None:
    """Export reviewed decisions: FDRD training data, Label Studio tasks, or JSON lines."""
    from dcar.review.export import export

    Console(stderr=True).print(export(_open(queue), fmt, out, template), highlight=False, soft_wrap=True)
