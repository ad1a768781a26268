"""`dcar train` and `dcar compare`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from dcar.cli.app import app, locks_outputs
from dcar.errors import DcarError
from dcar.methods import method_help  # the help text lists the registered methods
from dcar.training.config import TrainConfig

_D = TrainConfig()  # the defaults the help texts show


def _read_json(path: Path, missing_hint: str = "") -> object:
    """A JSON file's content, or a one-line DcarError naming the file."""
    from dcar.files import read_json

    if not path.is_file() and not path.is_dir() and not path.exists():
        raise DcarError(f"{path}: not found{missing_hint}")
    return read_json(path)


def _read_config(path: Path | None) -> dict:
    """--config FILE: {"method": {...method overrides}, "train": {...run settings}}."""
    if path is None:
        return {}
    cfg = _read_json(path)
    if not isinstance(cfg, dict) or set(cfg) - {"method", "train"}:
        raise DcarError(f'{path}: expected {{"method": {{...}}, "train": {{...}}}}')
    return cfg


@app.command("train")
@locks_outputs(out="folder")
def train_command(
    method: str = typer.Option(..., "--method", help=f"One of: {method_help()}."),
    model: str = typer.Option(..., "--model", help="Backbone spec, e.g. builtin:synthetic-small, open_clip:ViT-B-32:openai."),
    train: Path = typer.Option(..., "--train", help="Training set (FDRD JSON, CSV, JSONL or image folder)."),
    val: Optional[Path] = typer.Option(None, "--val", help="Validation set: best-on-val selection (else the last epoch)."),
    images: Optional[Path] = typer.Option(None, "--images", help="Image root of --train (and of --val unless --val-images)."),
    val_images: Optional[Path] = typer.Option(None, "--val-images"),
    taxonomy: Optional[Path] = typer.Option(None, "--taxonomy", help="JSON {subcategory: meta-category}."),
    out: Path = typer.Option(..., "--out", help="Run folder (checkpoints, logs)."),
    config: Optional[Path] = typer.Option(None, "--config", help='JSON {"method": {...}, "train": {...}} overrides.'),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out after its last finished epoch."),
    skip_nonfinite: bool = typer.Option(
        False, "--skip-nonfinite", help="Skip and count steps whose loss or gradient is NaN/inf (default: stop at the first)."
    ),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="Epochs.", show_default=str(_D.epochs)),
    max_steps: Optional[int] = typer.Option(
        None, "--max-steps", min=1, help="Stop after this many optimiser steps in all (the last epoch ends early).", show_default="no limit"
    ),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=2, help="Training batch.", show_default=str(_D.batch_size)),
    lr: Optional[float] = typer.Option(None, "--lr", help="Peak learning rate.", show_default="the method's reference rate"),
    seed: Optional[int] = typer.Option(None, "--seed", help="Run seed.", show_default=str(_D.seed)),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, ...", show_default="cuda if present, else cpu"),
    workers: Optional[int] = typer.Option(None, "--workers", min=0, help="Image decoding processes.", show_default=str(_D.num_workers)),
) -> None:
    """Train a method's parameters on a frozen backbone; writes OUT/best.safetensors + OUT/run.json."""
    from dcar.distributed.collective import is_main_process
    from dcar.training.run import run_training

    cfg = _read_config(config)
    cli = {"epochs": epochs, "max_steps": max_steps, "batch_size": batch_size, "lr": lr, "seed": seed, "device": device, "num_workers": workers,
           "skip_nonfinite": skip_nonfinite or None}
    train_overrides = {**cfg.get("train", {}), **{k: v for k, v in cli.items() if v is not None}}
    summary = run_training(
        method, model, train, val, images, val_images or images, taxonomy, out, cfg.get("method", {}), train_overrides, resume
    )
    chosen = (
        f"best epoch {summary['best_epoch']} (val mean R@1 {summary['best_score']:.2f})"
        if val is not None else f"kept the last epoch, {summary['best_epoch']} (no --val to select on)"
    )
    console = Console(stderr=True, quiet=not is_main_process())  # under torchrun rank 0 reports
    unreadable = summary["history"][-1].get("unreadable_images", 0) if summary["history"] else 0
    nonfinite = sum(r.get("nonfinite_skipped", 0) for r in summary["history"])
    if nonfinite:
        console.print(f"[yellow]warning:[/yellow] {nonfinite} steps skipped for a non-finite loss or gradient (--skip-nonfinite)", highlight=False)
    if unreadable:
        console.print(f"[yellow]warning:[/yellow] {unreadable} unreadable training images skipped in each epoch", highlight=False)
    console.print(
        f"{chosen}; "
        f"{summary['trainable_parameters']:,} trainable parameters; {summary['seconds']:.0f} s; wrote {out}",
        highlight=False,
    )


@app.command("compare")
@locks_outputs(out="folder")
def compare_command(
    runs: List[Path] = typer.Argument(..., help="Run folders (with results.json from `dcar eval`) or results JSON files."),
    out: Path = typer.Option(..., "--out", help="Folder for compare.md, compare.json and compare.png."),
) -> None:
    """Put several evaluations side by side: a markdown table, a JSON file and a chart.

    Runs evaluated with `dcar eval --per-query` are also compared query by query with the first
    such run: paired-bootstrap intervals on the difference in R@K, exact McNemar p-value on R@1,
    per-category wins and losses (paired.md, paired.json) and TREC run files (trec/)."""
    from dcar.atomic import write_json_atomic
    from dcar.atomic import write_text_atomic
    from dcar.reporting import markdown_table, recall_chart, rich_table

    loaded = [_load_results(p) for p in runs]
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic({"runs": loaded}, out / "compare.json")
    write_text_atomic(markdown_table(loaded), out / "compare.md")
    recall_chart(loaded, out / "compare.png")
    Console().print(rich_table(loaded))
    paired = [r for r in loaded if r.get("per_query")]
    if len(paired) >= 2:
        from dcar.abtest.report import compare_paired

        compare_paired(paired, out)
    elif len(loaded) >= 2:
        Console(stderr=True).print("no paired statistics: evaluate the runs with `dcar eval --per-query FILE`", highlight=False)
    Console(stderr=True).print(f"wrote {out}/compare.md, compare.json, compare.png")


def _load_results(path: Path) -> dict:
    file = path / "results.json" if path.is_dir() else path
    results = _read_json(file, " (run `dcar eval --checkpoint RUN --out RUN/results.json` first)")
    if not isinstance(results, dict) or not isinstance(results.get("datasets"), dict) or not all(
        isinstance(m, dict) and all(isinstance(m.get(d), dict) for d in ("i2t", "t2i")) for m in results["datasets"].values()
    ):
        raise DcarError(f"{file}: not a `dcar eval` results file")
    results.setdefault("label", f"{results.get('method', '?')} ({path.name})" if path.is_dir() else results.get("method"))
    return results
