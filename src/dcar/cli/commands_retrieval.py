"""`dcar embed` and `dcar eval`."""

from __future__ import annotations

import shutil
from functools import partial
import sys
from pathlib import Path
from typing import List, Optional

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from dcar.cli.app import app, locks_outputs
from dcar.errors import DcarError

MODEL_HELP = "Model spec, e.g. open_clip:ViT-B-32:openai, open_clip:local-dir:DIR, hf:DIR."
EMBED_BLOCK = 4096  # items per resumable block of `dcar embed`


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_encoder(model: str | None, device: str | None, checkpoint: Path | None = None):
    """The encoder to evaluate: a trained run (``--checkpoint RUN_DIR``) or the zero-shot model
    (on ``device``, or the GPU of the process that loads it when there is one)."""
    device = device or default_device()
    if checkpoint is not None:
        from dcar.methods.encoder import MethodEncoder
        from dcar.checkpoint import load_method, read_run

        if model is not None and model != read_run(checkpoint)["backbone"]:
            raise DcarError(f"{checkpoint} was trained on {read_run(checkpoint)['backbone']}, not {model}: drop --model")
        return MethodEncoder(load_method(checkpoint, device=device))
    if model is None:
        raise DcarError("give --model SPEC (zero-shot) or --checkpoint RUN_DIR (a trained method)")
    from dcar.backbone import load_backbone
    from dcar.evaluation.encoders import ZeroShotEncoder

    return ZeroShotEncoder(load_backbone(model, device=device))


@app.command("embed")
@locks_outputs(out="file")
def embed_command(
    model: Optional[str] = typer.Option(None, "--model", help=MODEL_HELP + " Zero-shot when no --checkpoint."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="A `dcar train` run folder: embed with what it learned."),
    images: Optional[Path] = typer.Option(None, "--images", help="Text file: one image path per line."),
    texts: Optional[Path] = typer.Option(None, "--texts", help="Text file: one caption per line."),
    out: Path = typer.Option(..., "--out", help="Output .npy: float32 [rows, dim], L2-normalised."),
    batch_size: int = typer.Option(64, "--batch-size", min=1),
    workers: Optional[int] = typer.Option(None, "--workers", min=0, help="Image decoding processes."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:1 ... (default: cuda if present)."),
    ray: bool = typer.Option(False, "--ray", help="Embed images on Ray Data (pip install \"dcar[scale]\"); a local Ray unless --ray-address."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="A Ray cluster (HOST:6379 or ray://HOST:10001); implies --ray."),
    ray_workers: int = typer.Option(1, "--ray-workers", min=1, help="Encoding actors (one per GPU on a GPU cluster)."),
) -> None:
    """Embed images or captions; rows follow the list's order.

    Images: blank lines are ignored, relative paths are relative to the current folder. Rows are
    written only for readable images; OUT.skipped.tsv lists the others (line, path, reason), so
    row r belongs to the r-th listed image that is not in it. Captions: one row per line.
    A killed run resumes from OUT.parts/.
    """
    from tqdm.auto import tqdm

    from dcar.atomic import write_text_atomic
    from dcar.evaluation.cache import BlockCache, file_stamps, fingerprint, save_npy_atomic
    from dcar.evaluation.embed import blockwise, embed_images, embed_texts

    if (images is None) == (texts is None):
        raise DcarError("give exactly one of --images LIST or --texts LIST")
    listing = images or texts
    kind = "images" if images else "texts"
    lines = _read_lines(listing)
    numbered = [(i + 1, s.strip()) for i, s in enumerate(lines) if s.strip()] if images else list(enumerate(lines, 1))
    if not numbered:
        raise DcarError(f"{listing}: the list is empty")
    items = [s for _, s in numbered]
    encoder = load_encoder(model, device or default_device(), checkpoint)
    key = fingerprint(encoder.fingerprint(), kind, EMBED_BLOCK, items=file_stamps(items) if images else items)
    image_embedder = embed_images
    if (ray or ray_address) and kind == "images":
        from dcar.distributed.ray_embed import RayOptions, ray_image_embedder

        image_embedder = ray_image_embedder(RayOptions(partial(load_encoder, model, device, checkpoint), ray_address, ray_workers))
    cache = BlockCache(Path(f"{out}.parts") / "embed", key)
    bar = tqdm(total=len(items), unit=kind[:-1], desc=f"embedding {kind}")

    def compute(start: int, stop: int) -> dict[str, np.ndarray]:
        if kind == "texts":
            return {"features": embed_texts(encoder, items[start:stop], batch_size, progress=bar.update)}
        got = image_embedder(encoder, items[start:stop], batch_size, workers, progress=bar.update)
        skipped = [f"{numbered[start + i][0]}\t{path}\t{why}" for i, path, why in got.skipped]
        return {"features": got.features, "skipped": np.array(skipped, dtype=str)}

    try:
        blocks = blockwise(len(items), EMBED_BLOCK, compute, cache, on_cached=bar.update)
    finally:
        bar.close()
    feats = [b["features"] for b in blocks if b["features"].size]
    features = np.concatenate(feats) if feats else np.zeros((0, 0), dtype=np.float32)
    if features.size and not np.isfinite(features).all():
        bad = int((~np.isfinite(features).all(axis=1)).sum())
        raise DcarError(f"the model gave non-finite features for {bad} of {len(features)} {kind}; nothing written "
                        "(the model or checkpoint is broken, e.g. a diverged training)")
    save_npy_atomic(features, out)
    console = Console(stderr=True)
    if kind == "images":
        skipped = [str(s) for b in blocks for s in b["skipped"]]
        sidecar = Path(f"{out}.skipped.tsv")
        write_text_atomic("line\tpath\treason\n" + "".join(s + "\n" for s in skipped), sidecar)
        if skipped:
            console.print(f"[yellow]warning:[/yellow] {len(skipped)} unreadable images skipped, listed in {sidecar}")
    cache.remove()
    console.print(f"wrote {features.shape[0]} x {features.shape[1] if features.size else 0} features to {out}")


@app.command("eval")
@locks_outputs(out="file", per_query="file")
def eval_command(
    model: Optional[str] = typer.Option(None, "--model", help=MODEL_HELP + " Zero-shot when no --checkpoint."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="A `dcar train` run folder to evaluate."),
    fdrd: List[Path] = typer.Option(..., "--fdrd", help="Test set (FDRD JSON, CSV, JSONL); repeat for several."),
    images: List[Path] = typer.Option(..., "--images", help="Image root of each --fdrd, in the same order."),
    out: Path = typer.Option(..., "--out", help="Results JSON (written atomically)."),
    per_query: Optional[Path] = typer.Option(None, "--per-query", help="Also write each query's rank and top-10 (JSON lines); `dcar compare` pairs two runs by it."),
    batch_size: int = typer.Option(64, "--batch-size", min=1),
    workers: Optional[int] = typer.Option(None, "--workers", min=0, help="Image decoding processes."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, ... (default: cuda if present)."),
) -> None:
    """Recall@1/5/10 (image->text, text->image) and hard-negative accuracy per test set.

    The gallery is each set's images with their positive captions; negatives only feed
    hard_negative_acc (entries whose positive outscores all their negatives; negatives identical
    to the positive are left out). All numbers in percent; ties rank the right answer first.
    The dataset name is the file's stem. A killed run resumes from OUT.parts/.
    """
    from dcar.atomic import write_json_atomic
    from dcar.evaluation.evaluate import evaluate, load_eval_dataset

    if len(fdrd) != len(images):
        raise DcarError(f"{len(fdrd)} --fdrd but {len(images)} --images: give one image root per test set")
    names = _unique_names([p.stem for p in fdrd])
    datasets = [load_eval_dataset(f, root, name) for f, root, name in zip(fdrd, images, names)]
    device = device or default_device()
    encoder = load_encoder(model, device, checkpoint)
    err = Console(stderr=True)
    skips: list[str] = []

    def on_skip(name: str, path: str, reason: str) -> None:
        skips.append(f"{name}: {path} ({reason})")

    parts = Path(f"{out}.parts")
    records: list[dict] | None = [] if per_query is not None else None
    results = evaluate(encoder, datasets, batch_size, workers, cache_dir=parts, on_skip=on_skip, device=device, per_query=records)
    if per_query is not None:
        from dcar.abtest.offline import write_per_query

        write_per_query(records, per_query)
        results["per_query"] = str(per_query.resolve())
    write_json_atomic(results, out)
    shutil.rmtree(parts, ignore_errors=True)
    for ds in datasets:
        if ds.missing_images:
            first = f" (first: {ds.missing_keys[0]})" if ds.missing_keys else ""
            err.print(f"[yellow]warning:[/yellow] {ds.name}: {ds.missing_images} images not found{first}", highlight=False)
    for line in skips[:5]:
        err.print(f"[yellow]warning:[/yellow] unreadable image skipped: {line}", highlight=False, soft_wrap=True)
    if len(skips) > 5:
        err.print(f"[yellow]warning:[/yellow] ... and {len(skips) - 5} more unreadable images", highlight=False)
    # Not a terminal (pipe, log file): no width to respect, and a wrapped table is unreadable.
    _print_results(results, Console() if sys.stdout.isatty() else Console(width=200))
    err.print(f"wrote {out}")


def _print_results(results: dict, console: Console) -> None:
    table = Table(title=f"{results['method']} {results['model']}")
    table.add_column("dataset", no_wrap=True)
    for d in ("i2t", "t2i"):
        for k in ("R@1", "R@5", "R@10"):
            table.add_column(f"{d}\n{k}", justify="right")
    table.add_column("hard-neg\nacc", justify="right")
    table.add_column("images", justify="right")
    table.add_column("captions", justify="right")
    table.add_column("skipped", justify="right")
    for name, r in results["datasets"].items():
        hna = "-" if r["hard_negative_acc"] is None else f"{r['hard_negative_acc']:.2f}"
        recalls = [f"{r[d][k]:.2f}" for d in ("i2t", "t2i") for k in ("R@1", "R@5", "R@10")]
        table.add_row(name, *recalls, hna, str(r["n_images"]), str(r["n_captions"]), str(r["skipped_images"]))
    avg = results["avg"]
    table.add_row("avg", *[f"{avg[d][k]:.2f}" for d in ("i2t", "t2i") for k in ("R@1", "R@5", "R@10")], "", "", "", "")
    console.print(table)


def _read_lines(path: Path) -> list[str]:
    """Lines without their line ends (only \n and \r\n end a line: captions may hold other
    characters that str.splitlines treats as breaks)."""
    from dcar.files import read_text

    text = read_text(path)
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    return lines[:-1] if lines and lines[-1] == "" else lines


def _unique_names(stems: list[str]) -> list[str]:
    """File stems as dataset names; a repeated stem gets -2, -3, ..."""
    seen: dict[str, int] = {}
    out = []
    for s in stems:
        seen[s] = seen.get(s, 0) + 1
        out.append(s if seen[s] == 1 else f"{s}-{seen[s]}")
    return out

