"""`dcar data validate` and `dcar data split`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from dcar.reporting import summary_table
from dcar.cli.app import data_app, locks_outputs
from dcar.errors import DcarError


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


@data_app.command("split")
@locks_outputs(out="folder")
def split_command(
    source: Path = typer.Argument(..., help="Labelled set: FDRD JSON, CSV, JSONL, or class folders (<class>/ or <meta>/<sub>/)."),
    out: Path = typer.Option(..., "--out", help="Folder for train.json, val.json, test.json (FDRD) and taxonomy.json."),
    images: Optional[Path] = typer.Option(None, "--images", help="Image root of SOURCE (FDRD: required)."),
    train: str = typer.Option("rest", "--train", help="Per class: a count (16 shots), a share (0.7) or 'rest'."),
    val: str = typer.Option("0.1", "--val", help="Per class: a count, a share or 'rest'."),
    test: str = typer.Option("0.2", "--test", help="Per class: a count, a share or 'rest'."),
    taxonomy: Optional[Path] = typer.Option(None, "--taxonomy", help="JSON {subcategory: meta-category} to write along."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same split."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
) -> None:
    """Split a labelled set into train / val / test FDRD files, stratified by category.

    Test is filled first, then val, then train, so changing only --train keeps the test set.
    Images in several rows stay in one part. Rows that cannot be read and images not found are
    skipped and counted. Nested class folders (<meta>/<sub>/<image>) also give taxonomy.json.
    """
    from dcar.data.split import PartSize, split_entries
    from dcar.data.sources import load_entries
    from dcar.data.taxonomy import read_taxonomy, write_taxonomy

    sizes = {"train": PartSize.parse(train, "--train"), "val": PartSize.parse(val, "--val"), "test": PartSize.parse(test, "--test")}
    data = load_entries(source, images=images, strict=False)
    if data.format == "fdrd" and data.image_root is None:
        raise DcarError(f"{source}: give --images, the folder its images are under")
    usable = data.with_images()
    if not usable:
        raise DcarError(f"{source}: none of its {len(data.entries)} images found under {data.image_root}")
    result = split_entries(usable, sizes, seed)
    tax = read_taxonomy(taxonomy) if taxonomy else {e.category: e.meta_category for e in usable if e.meta_category}
    written = _write_parts(result.parts, data.image_root, out)
    if tax:
        write_taxonomy(tax, out / "taxonomy.json")
    report = {
        "source": str(source), "out": str(out), "seed": seed, "classes": len({e.category for e in usable}),
        **{f"{name}_entries": n for name, n in result.counts().items()},
        "files": written, "taxonomy": str(out / "taxonomy.json") if tax else None,
        "skipped_rows": len(data.skipped), "missing_images": len(data.missing_images),
        "classes_short": {name: len(classes) for name, classes in result.short.items()},
    }
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False))
        return
    rows = [(f"{name} entries", report[f"{name}_entries"]) for name in ("train", "val", "test")]
    rows += [("classes", report["classes"]), ("rows skipped", report["skipped_rows"]), ("images not found", report["missing_images"])]
    rows += [(f"classes with fewer {name} images than asked", n) for name, n in report["classes_short"].items()]
    Console().print(summary_table(f"dcar data split -> {out} (seed {seed})", rows))


def _write_parts(parts: dict, image_root: Path | None, out: Path) -> list[str]:
    """Each non-empty part as OUT/<part>.json, image paths relative to the image root."""
    from dataclasses import replace

    from dcar.data.records import write_fdrd

    written = []
    for name, entries in parts.items():
        if not entries:
            continue
        if image_root is not None:
            entries = [replace(e, image=_relative(e.image, image_root)) for e in entries]
        write_fdrd(entries, out / f"{name}.json")
        written.append(str(out / f"{name}.json"))
    return written


def _relative(image: str | None, root: Path) -> str | None:
    if image is None:
        return None
    try:
        return Path(image).relative_to(root).as_posix()
    except ValueError:
        return image
