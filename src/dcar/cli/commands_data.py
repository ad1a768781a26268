"""`dcar data ...` commands: validate, synth, build, negatives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from dcar.reporting import summary_table
from dcar.cli.app import data_app


@data_app.command("validate")
def validate_command(
    source: Path = typer.Argument(..., help="FDRD JSON, CSV, JSONL file, or an image folder (<class>/<image>)."),
    images: Optional[Path] = typer.Option(
        None, "--images", help="Root to find the images under; every image found is decoded."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print exactly one JSON object on stdout."),
    decode: bool = typer.Option(True, "--decode/--no-decode", help="Decode every image found."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Decoding threads."),
) -> None:
    """Check a dataset: entries, classes, negatives, caption lengths, missing and unreadable images.

    Exits 0 when the file could be read (problems are reported as warnings), 2 when it cannot.
    JSON keys: entries, classes, negatives_min, negatives_max, identical_negatives,
    missing_images and unreadable_images (null when not checked), over_length_captions
    (captions over CLIP's 77-token context incl. start/end tokens), problems, and a few more.
    """
    from dcar.data.validate import validate

    err = Console(stderr=True)
    with Progress(
        TextColumn("decoding images"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=err, transient=True,
    ) as bar:
        task = bar.add_task("decode", total=None)
        report = validate(
            source, images=images, decode=decode, workers=workers,
            progress=lambda n: bar.advance(task, n),
            on_total=lambda n: bar.update(task, total=n),
        )
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False))
    else:
        _print_report(report, Console())


def _print_report(report: dict, console: Console) -> None:
    rows = [
        ("entries", report["entries"]),
        ("skipped entries", report["skipped_entries"]),
        ("classes", report["classes"]),
        ("negatives per entry", f"{report['negatives_min']}..{report['negatives_max']}"),
        ("negatives identical to positive", report["identical_negatives"]),
        ("empty captions", report["empty_captions"]),
        ("captions over 77 tokens", report["over_length_captions"]),
        ("negatives over 77 tokens", report["over_length_negatives"]),
        ("image root", report["image_root"] or "not checked (give --images)"),
        ("missing images", _or_unchecked(report["missing_images"])),
        ("unreadable images", _or_unchecked(report["unreadable_images"])),
    ]
    console.print(summary_table(f"{report['source']} ({report['format']})", rows))
    for p in report["problems"]:
        console.print(f"[yellow]warning:[/yellow] {p}", highlight=False, soft_wrap=True)
    if not report["problems"]:
        console.print("[green]no problems found[/green]")


def _or_unchecked(value: int | None) -> str:
    return "not checked" if value is None else str(value)
