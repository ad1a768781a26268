"""`dcar demo`."""

from __future__ import annotations

from pathlib import Path

import typer

from dcar.builtin import SYNTHETIC_SMALL_SPEC
from dcar.cli.app import app, locks_outputs


@app.command("demo")
@locks_outputs(out="folder")
def demo_command(
    out: Path = typer.Option(
        Path("demo-out"), "--out", help="Folder for data, runs, results.json, report.md, recall.png, demo.html."
    ),
    domain: str = typer.Option("garden", "--domain", help="World domain (`dcar data synth --list`)."),
    model: str = typer.Option(SYNTHETIC_SMALL_SPEC, "--model", help="Backbone spec."),
    baseline: str = typer.Option(
        "clip-adapter", "--baseline", help="Baseline trained beside DCAR (a method name; 'none' for zero-shot only)."
    ),
    epochs: int = typer.Option(8, "--epochs", min=1),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Zero-shot, a baseline and DCAR on a built-in fine-grained domain, end to end (a few minutes on CPU)."""
    from dcar.demo import DemoConfig, run_demo

    from dcar.methods.registry import method_class

    if baseline != "none":
        method_class(baseline)  # an unknown name is a one-line error before any work
    cfg = DemoConfig(out=out, domain=domain, model=model, seed=seed, baseline=None if baseline == "none" else baseline)
    cfg.train["epochs"] = epochs
    run_demo(cfg)
