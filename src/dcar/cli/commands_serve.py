"""`dcar serve`: the search service over an index (JSON API + web page)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from dcar.cli.app import app
from dcar.errors import DcarError


@app.command("serve")
def serve_command(
    index: Path = typer.Argument(..., help="An index folder made by `dcar index build`."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; the default is reachable from this machine only."),
    port: int = typer.Option(8000, "--port", min=0, max=65535),
    max_upload_mb: float = typer.Option(10.0, "--max-upload-mb", min=0.01, help="Largest accepted upload."),
    max_pixels: int = typer.Option(40_000_000, "--max-pixels", min=1, help="Largest accepted uploaded image, in pixels."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, ... (default: cuda if present)."),
    policy: Optional[Path] = typer.Option(None, "--policy", help="Policy from `dcar calibrate`: /api/match/* decide accept/review/reject; review page at /review."),
    queue: Optional[Path] = typer.Option(None, "--queue", help="Review queue file (default: INDEX/review.sqlite)."),
    token_file: Optional[Path] = typer.Option(None, "--token-file", help="File holding the token that review actions need (default: $DCAR_REVIEW_TOKEN, else a new one, printed)."),
    ab_index: Optional[Path] = typer.Option(None, "--ab-index", help="A second index: arm B of an online A/B test (INDEX is arm A)."),
    ab_mode: str = typer.Option("split", "--ab-mode", help="split (users assigned by a salted hash of their id) or interleave (team-draft)."),
    ab_log: Optional[Path] = typer.Option(None, "--ab-log", help="Append-only A/B event log (default: INDEX/ab-events.jsonl)."),
    ab_salt: str = typer.Option("ab", "--ab-salt", help="Assignment salt: a new salt draws a new split."),
) -> None:
    """Serve search over INDEX: a web page at http://HOST:PORT/ and a JSON API (docs at /docs)."""
    from dcar.index import Index
    from dcar.serving import Limits, create_app

    try:
        import uvicorn
    except ImportError:
        raise DcarError('dcar serve needs the serve extra: pip install "dcar[serve]"') from None
    import torch

    # One intra-op thread per request: requests run in parallel threads, and OpenMP hand-offs on a
    # busy CPU cost far more than one query's work (measured here with 2 threads on 2 loaded
    # cores: one text encoded in 336 ms against 5.6 ms with 1 thread).
    torch.set_num_threads(1)
    idx = Index.open(index)
    encoder = idx.load_encoder(device)
    limits = Limits(max_upload_bytes=int(max_upload_mb * 1024 * 1024), max_pixels=max_pixels)
    application = create_app(idx, encoder, limits)
    err = Console(stderr=True)
    if policy is not None or ab_index is not None:
        from dcar.review.web import add_operations

        token = add_operations(application, idx, encoder, limits, index, policy, queue, token_file, ab_index, ab_mode, ab_log, ab_salt, device)
        if token is not None:
            err.print(f"review token: {token}", highlight=False)
    if host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"[yellow]warning:[/yellow] binding {host}: the service is reachable from other machines")
    err.print(f"serving {len(idx)} items from {index} at http://{host}:{port}/ (Ctrl-C stops)")
    uvicorn.run(application, host=host, port=port, log_level="warning", access_log=False)
