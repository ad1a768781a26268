"""`dcar data synth` (write a procedural-world split as FDRD data), `dcar pretrain` (train the small CLIP) and
`dcar world diagnose` (how a model behaves on the world)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from dcar.builtin import SYNTHETIC_SMALL_SPEC
from dcar.cli.app import app, data_app, locks_outputs, world_app
from dcar.errors import DcarError

_console = Console()


@data_app.command("synth")
@locks_outputs(out="folder")
def synth(
    domain: Optional[str] = typer.Option(None, "--domain", help="A domain name (see --list): pretrain, pretrain-v2, or a downstream catalog."),
    split: str = typer.Option("test", "--split", help="train | val | test"),
    n: Optional[int] = typer.Option(None, "--n", min=1, help="Number of images (default: the split's size)."),
    shots: Optional[int] = typer.Option(None, "--shots", min=1, help="Images per subcategory in a downstream train split (default 16)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder: NAME_SPLIT.json, images/, NAME_taxonomy.json."),
    seed: int = typer.Option(0, "--seed", help="World seed (same seed, same data)."),
    image_size: Optional[int] = typer.Option(None, "--image-size", min=16, help="Image side in pixels (default: the domain's, 64 in world v1, 96 in v2)."),
    negatives: int = typer.Option(4, "--negatives", min=0, help="Hard negative captions per image."),
    negatives_from: str = typer.Option("world", "--negatives-from", help="world (from each sample's structure) or shared (dcar.negatives, text-based)."),
    list_domains: bool = typer.Option(False, "--list", help="Print the domain names and exit."),
) -> None:
    """Write a split of the procedural fine-grained world as FDRD JSON + images + taxonomy."""
    from dcar.world.domains import DOMAINS
    from dcar.world.export import materialise

    if list_domains:
        for name, d in DOMAINS.items():
            typer.echo(f"{name}\tworld v{d.version}, {len(d.subcategories)} subcategories\t{d.description}")
        return
    if not domain or out is None:
        raise DcarError("dcar data synth: give --domain and --out (or --list)")
    result = materialise(domain, split, out, n=n, seed=seed, shots=shots, image_size=image_size,
                         negatives=negatives, negatives_from=negatives_from)
    _console.print(f"wrote {result.count} entries: {result.fdrd}, images in {result.images}, taxonomy {result.taxonomy}")


@app.command("pretrain")
@locks_outputs(out="folder")
def pretrain(
    preset: str = typer.Option("synthetic-small", "--preset", help="Recipe name (synthetic-small, synthetic-v2, tiny)."),
    out: Path = typer.Option(..., "--out", help="Run folder: checkpoint, train_log.csv, model/, loss_curve.png."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", min=1, help="Stop after this many steps (resumable)."),
    device: str = typer.Option("cpu", "--device", help="torch device (cpu, cuda)."),
    workers: Optional[int] = typer.Option(None, "--workers", min=0, help="Processes rendering batches (default: the preset's)."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="torch threads (default: the preset's; 1 is faster on busy cores)."),
) -> None:
    """Pretrain a small CLIP on the procedural world (resumes from DIR/checkpoint.safetensors)."""
    from dcar.pretrain import get_preset, train

    overrides = {k: v for k, v in (("workers", workers), ("threads", threads)) if v is not None}
    p = get_preset(preset, **overrides)
    result = train(p, out, max_steps=max_steps, device=device)
    if result["finished"]:
        _console.print(f"done: {out / 'model'} ({result['model_bytes'] / 1e6:.1f} MB), "
                       f"{result['train_wall_s'] / 60:.1f} min; load it with open_clip 'local-dir:{out / 'model'}'")
    else:
        _console.print(f"stopped at step {result['step']}; run the same command again to resume")


@world_app.command("diagnose")
@locks_outputs(out="folder")
def diagnose(
    model: str = typer.Option(SYNTHETIC_SMALL_SPEC, "--model", help="Model spec, as for --model elsewhere."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write diagnose.json and diagnose.md into this folder."),
    seed: int = typer.Option(0, "--seed", help="World seed."),
    device: str = typer.Option("cpu", "--device", help="torch device (cpu, cuda)."),
    domain: Optional[List[str]] = typer.Option(None, "--domain", help="A downstream domain (repeatable; default: all)."),
    n_pretrain: int = typer.Option(1000, "--n-pretrain", min=2, help="Held-out pretraining pairs in the gallery."),
    n_test: Optional[int] = typer.Option(None, "--n-test", min=2, help="At most this many test images per domain."),
    from_json: Optional[Path] = typer.Option(None, "--from-json", help="Only re-render the table of an earlier diagnose.json."),
) -> None:
    """Zero-shot recall, top-1 error kinds, hard-negative accuracy and a linear probe on the world."""
    import json

    from dcar.world.diagnose import diagnose as run_diagnosis
    from dcar.world.diagnose import to_markdown, write_report
    from dcar.world.domains import downstream_domains

    if from_json is not None:
        from dcar.files import read_json

        report = read_json(from_json, "diagnose.json")
        if not isinstance(report, dict):
            raise DcarError(f"{from_json}: not a diagnose.json (expected a JSON object)")
    else:
        unknown = [d for d in domain or [] if d not in downstream_domains()]
        if unknown:
            raise DcarError(f"--domain {unknown[0]!r}: not a downstream domain (see `dcar data synth --list`)")
        report = run_diagnosis(model, seed, n_pretrain, device, domain or None, n_test)
    typer.echo(to_markdown(report))
    if out is not None:
        write_report(report, out)
