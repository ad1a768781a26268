"""`dcar ab report LOG`: the online A/B test's difference, interval and p-value."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console

from dcar.cli.app import app

ab_app = typer.Typer(no_args_is_help=True, help="Online A/B tests between two indexes.")
app.add_typer(ab_app, name="ab")


@ab_app.command("report")
def report_command(
    log: Path = typer.Argument(..., help="The event log written by `dcar serve` in A/B mode (JSON lines)."),
    confidence: float = typer.Option(0.95, "--confidence", help="Level of the interval."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """B - A with its interval and p-value (users are the independent units: delta-method variance)."""
    from dcar.abtest.online import analyse, read_events
    from dcar.errors import DcarError
    from dcar.reporting import summary_table

    if not 0 < confidence < 1:
        raise DcarError("--confidence must lie strictly between 0 and 1")
    events, bad = read_events(log)
    report = {**analyse(events, confidence), "unreadable_lines": bad}
    if as_json:
        typer.echo(json.dumps(report, indent=1))
        return
    rows = [("design", report["mode"]), ("metric", report["metric"]), ("impressions", report["impressions"]),
            ("clicks", report["clicks"])]
    if report["mode"] == "split":
        for arm, a in report["arms"].items():
            rows.append((f"arm {arm}", f"{a['users']} users, {a['impressions']} impressions, ctr {a['ctr']:.4f}"))
    else:
        w = report["wins"]
        rows.append(("impressions won", f"A {w['a']}, B {w['b']}, tie {w['tie']} ({report['users']} users)"))
    rows += [("B - A", f"{report['diff']:+.4f}"),
             (f"{100 * confidence:g}% interval", f"[{report['ci'][0]:+.4f}, {report['ci'][1]:+.4f}]"),
             ("p-value", f"{report['p_value']:.4g}")]
    if report["review_outcomes"]:
        rows.append(("review outcomes", ", ".join(f"{k} {v}" for k, v in report["review_outcomes"].items())))
    if bad:
        rows.append(("unreadable lines (skipped)", bad))
    (Console() if sys.stdout.isatty() else Console(width=200)).print(summary_table(f"A/B report: {log}", rows))
