"""`dcar index build`, `dcar index add` and `dcar search`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from dcar.cli.app import app, locks_outputs
from dcar.errors import DcarError
from dcar.reporting import summary_table

index_app = typer.Typer(no_args_is_help=True, help="Build and extend a searchable index of a catalog.")
app.add_typer(index_app, name="index")

IMAGES_HELP = "The catalog: an image folder (<class>/<image> or flat), a list file (one path a line), or a CSV/JSONL table."
CAPTIONS_HELP = "Captions to index with the images (FDRD JSON, CSV or JSONL); images are found under --images."


@index_app.command("build")
@locks_outputs(out="folder")
def build_command(
    images: Path = typer.Option(..., "--images", help=IMAGES_HELP),
    out: Path = typer.Option(..., "--out", help="Index folder to create."),
    model: Optional[str] = typer.Option(None, "--model", help="Model spec (zero-shot), e.g. builtin:synthetic-small."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="A `dcar train` run folder."),
    captions: Optional[Path] = typer.Option(None, "--captions", help=CAPTIONS_HELP),
    kind: str = typer.Option("auto", "--kind", help="auto, flat (exact), ivf, ivfpq or hnsw."),
    exact_max: int = typer.Option(200_000, "--exact-max", min=1, help="auto: exact search up to this many vectors."),
    shard_size: int = typer.Option(1024, "--shard-size", min=1, help="Images per shard (the unit of resume)."),
    batch_size: int = typer.Option(64, "--batch-size", min=1),
    workers: Optional[int] = typer.Option(None, "--workers", min=0, help="Image decoding processes."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, ... (default: cuda if present)."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
    ray: bool = typer.Option(False, "--ray", help='Embed the images on Ray Data (pip install "dcar[scale]"); a local Ray unless --ray-address.'),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="A Ray cluster (HOST:6379 or ray://HOST:10001); implies --ray."),
    ray_workers: int = typer.Option(1, "--ray-workers", min=1, help="Encoding actors (one per GPU on a GPU cluster)."),
) -> None:
    """Embed a catalog into a new index folder (resumes a killed build of the same inputs).

    Unreadable images are skipped, counted and listed in OUT/skipped.tsv. The approximate
    index's recall@10 against exact search is measured and reported.
    """
    from dcar.api import load
    from dcar.index import Index, read_catalog

    if (model is None) == (checkpoint is None):
        raise DcarError("give exactly one of --model SPEC or --checkpoint RUN_DIR")
    catalog = read_catalog(images, captions)
    _problems(catalog.problems)
    source = str(checkpoint) if checkpoint else model
    encoder = load(source, device=device)
    options = _ray_options(source, device, ray_address, ray_workers) if ray or ray_address else None
    report = Index.build(out, encoder, catalog.items, kind=kind, exact_max=exact_max, shard_size=shard_size,
                         batch_size=batch_size, workers=workers, progress=progress, ray=options)
    _print_report(report, out, "built")


@index_app.command("add")
@locks_outputs(index="folder")
def add_command(
    index: Path = typer.Argument(..., help="An index folder made by `dcar index build`."),
    images: Path = typer.Option(..., "--images", help=IMAGES_HELP),
    captions: Optional[Path] = typer.Option(None, "--captions", help=CAPTIONS_HELP),
    batch_size: int = typer.Option(64, "--batch-size", min=1),
    workers: Optional[int] = typer.Option(None, "--workers", min=0, help="Image decoding processes."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, ... (default: cuda if present)."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Append the catalog's images that are not indexed yet, with the index's own model."""
    from dcar.index import Index, read_catalog

    catalog = read_catalog(images, captions)
    _problems(catalog.problems)
    report = Index.add(index, catalog.items, batch_size=batch_size, workers=workers, progress=progress, device=device)
    _print_report(report, index, "extended")


@app.command("search")
def search_command(
    index: Path = typer.Argument(..., help="An index folder."),
    text: Optional[str] = typer.Option(None, "--text", help="Find images for this text."),
    image: Optional[Path] = typer.Option(None, "--image", help="Find images (or captions, --to texts) like this image."),
    to: str = typer.Option("images", "--to", help="images or texts (captions; image queries only)."),
    k: int = typer.Option(10, "--k", min=1, max=1000),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    device: Optional[str] = typer.Option(None, "--device"),
) -> None:
    """Search an index by text (text to image) or by image (image to image, image to caption)."""
    from dcar.data.images import load_image
    from dcar.index import Index

    if (text is None) == (image is None):
        raise DcarError("give exactly one of --text or --image")
    if to not in ("images", "texts"):
        raise DcarError(f"--to {to!r}: choose images or texts")
    idx = Index.open(index)
    if to == "texts" and "texts" not in idx.backends:
        raise DcarError(f"{index}: holds no captions (build it with --captions) to search by image")
    encoder = idx.load_encoder(device)
    if text is not None:
        if not text.strip():
            raise DcarError("--text is empty")
        query, space = encoder.encode_text([text]).numpy(), "images"
    else:
        query, space = encoder.encode_image([load_image(image)]).numpy(), to
    hits = idx.hits(query, k, space)[0]
    if as_json:
        json.dump({"query": {"text": text, "image": str(image) if image else None, "to": space}, "results": hits},
                  sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
        return
    table = Table(title=f"{len(hits)} results from {index}")
    for col, just in (("#", "right"), ("score", "right"), ("id", "right"), ("category", "left"), ("path", "left"), ("caption", "left")):
        table.add_column(col, justify=just)
    for rank, h in enumerate(hits, 1):
        table.add_row(str(rank), f"{h['score']:.4f}", str(h["id"]), h["category"], h["path"], (h["caption"] or "")[:80])
    (Console() if sys.stdout.isatty() else Console(width=200)).print(table)


def _actor_encoder(source: str, device: str | None):
    """What each Ray actor runs: the same model, loaded where the actor is."""
    from dcar.api import load

    return load(source, device=device).retrieval


def _ray_options(source: str, device: str | None, address: str | None, workers: int):
    from functools import partial

    from dcar.distributed.ray_embed import RayOptions

    return RayOptions(partial(_actor_encoder, source, device), address, workers).started()


@index_app.command("export")
def export_command(
    index: Path = typer.Argument(..., help="An index folder made by `dcar index build`."),
    to: str = typer.Option("qdrant", "--to", help="Target engine (qdrant)."),
    url: Optional[str] = typer.Option(None, "--url", help="Qdrant server, e.g. http://localhost:6333 (API key from QDRANT_API_KEY)."),
    path: Optional[Path] = typer.Option(None, "--path", help="Qdrant local mode: a folder (or :memory:)."),
    collection: Optional[str] = typer.Option(None, "--collection", help="Collection name (default: the index folder's name)."),
    recreate: bool = typer.Option(False, "--recreate", help="Empty the collection first."),
    use: bool = typer.Option(False, "--use", help="Search this index's images through the collection from now on."),
) -> None:
    """Copy an index's image vectors and metadata into a vector database (resumes: finished shards
    are skipped); with --use, `dcar search` and `dcar serve` then query it there."""
    from dcar.index.qdrant import QdrantBackend, export_index, use_for_search
    from dcar.index.store import read_info

    if to != "qdrant":
        raise DcarError(f"--to {to}: only qdrant is supported")
    info = read_info(index)
    name = collection or index.resolve().name
    backend = QdrantBackend.open(name, dim=info["dim"], url=url, path=str(path) if path else None, recreate=recreate)
    try:
        written = export_index(index, backend)
        total = backend.ntotal
        if use:
            use_for_search(index, backend)
    finally:
        backend.close()
    Console(stderr=True).print(f"exported {written:,} vectors to Qdrant collection {name!r} ({total:,} in it)"
                               + ("; the index now searches its images there" if use else ""), highlight=False)


def _problems(lines: list[str]) -> None:
    err = Console(stderr=True)
    for line in lines:
        err.print(f"[yellow]warning:[/yellow] {line}", highlight=False, soft_wrap=True)


def _print_report(report, out: Path, verb: str) -> None:
    err = Console(stderr=True)
    recall = report.recall_at_10 or {}
    rows = [
        ("catalog items given", report.items),
        ("already in the index", report.already_indexed),
        ("images indexed now", report.added),
        ("captions indexed now", report.texts),
        ("unreadable images skipped", len(report.skipped)),
        ("shards reused (finished before)", report.shards_reused),
        ("shards embedded now", report.shards_embedded),
    ]
    rows += [(f"recall@10 vs exact ({space})", "exact" if r is None else f"{r:.4f}") for space, r in recall.items()]
    err.print(summary_table(f"index {verb}: {out}", rows))
    for path, why in report.skipped[:5]:
        err.print(f"[yellow]warning:[/yellow] unreadable image skipped: {path} ({why})", highlight=False, soft_wrap=True)
    if len(report.skipped) > 5:
        err.print(f"[yellow]warning:[/yellow] ... and {len(report.skipped) - 5} more, listed in {out / 'skipped.tsv'}")
