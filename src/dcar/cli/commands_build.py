"""`dcar data build` (captions and negatives for labelled images) and `dcar data negatives`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from dcar.reporting import summary_table
from dcar.cli.app import data_app, locks_outputs
from dcar.errors import DcarError

STRATEGY_HELP = "swap: category swaps; attribute: attribute changes; mixed: half each."


def _check_strategy(strategy: str) -> str:
    from dcar.negatives import STRATEGIES

    if strategy not in STRATEGIES:
        raise DcarError(f"--strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")
    return strategy


@data_app.command("build")
@locks_outputs(out="file", cache="file")
def build_command(
    images: Path = typer.Option(
        ..., "--images", help="Class folders, a flat folder of <class>_image_<n>.jpg, or a CSV/JSONL "
        "(image,category[,meta_category][,caption])."
    ),
    out: Path = typer.Option(..., "--out", help="FDRD JSON to write."),
    captioner: str = typer.Option(
        "template:", "--captioner", help="openai:MODEL@URL | hf:DIR | template:[FILE] | file:[CSV]."
    ),
    taxonomy: Optional[Path] = typer.Option(None, "--taxonomy", help="JSON {subcategory: meta-category}."),
    negatives: int = typer.Option(4, "--negatives", min=0, help="Negatives per caption (0: none)."),
    strategy: str = typer.Option("mixed", "--strategy", help=STRATEGY_HELP),
    verify: Optional[str] = typer.Option(
        None, "--verify", help="Second model (openai:/hf:) that must confirm each caption."
    ),
    verify_prompt: Optional[str] = typer.Option(
        None, "--verify-prompt", help="Verifier question; {caption}, {class}, {a}, {meta}."
    ),
    prompt: Optional[List[str]] = typer.Option(
        None, "--prompt", help="Question to ask (repeatable; default: appearance, setting)."
    ),
    prefix: str = typer.Option(
        "This is {a} {class}.", "--prefix", help="Caption prefix ('' for none); {class}, {a}, {meta}."
    ),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", min=8, help="Text encoder context incl. start/end tokens (default: CLIP's, 77)."),
    workers: int = typer.Option(4, "--workers", min=1, help="Parallel requests."),
    attempts: int = typer.Option(4, "--attempts", min=1, help="Tries per request (retries with backoff)."),
    timeout: float = typer.Option(120.0, "--timeout", help="Seconds per HTTP request (openai:)."),
    api_key_env: Optional[str] = typer.Option(
        None, "--api-key-env", help="Environment variable holding the API key for the captioner's host (openai:); "
        "without it OPENAI_API_KEY goes only to api.openai.com.",
    ),
    allow_insecure_key: bool = typer.Option(
        False, "--allow-insecure-key", help="Allow sending the API key over plain http to a host that is not this machine."
    ),
    max_new_tokens: int = typer.Option(160, "--max-new-tokens", min=1, help="Answer length limit."),
    device: Optional[str] = typer.Option(None, "--device", help="hf: models (default: cuda if available)."),
    cache: Optional[Path] = typer.Option(
        None, "--cache", help="Answer cache (default OUT.cache.jsonl); rerun to resume."
    ),
    image_root: Optional[Path] = typer.Option(None, "--image-root", help="Where a table's relative image paths start."),
    model: Optional[str] = typer.Option(None, "--model", help="Backbone spec ranking hard siblings by text embedding."),
    seed: int = typer.Option(0, "--seed"),
    max_failures: int = typer.Option(
        20, "--max-failures", min=0, help="Stop after this many images fail in a row (0: never)."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
) -> None:
    """Caption labelled images FDRD-style (prefix, appearance, setting), add hard negatives, write FDRD JSON.

    Answers are cached as they arrive: rerun a killed run with the same options and only what is missing is asked.
    Images that still fail after the retries are skipped and listed in OUT.skipped.tsv. See docs/build.md.
    """
    from dcar.backbone.tokenizer import CLIP_CONTEXT_LENGTH
    from dcar.captioning.builder import BuildOptions
    from dcar.captioning.captioners.base import CaptionerOptions
    from dcar.captioning.pipeline import BuildConfig, build_dataset
    from dcar.captioning.questions import DEFAULT_PROMPTS, VERIFY_PROMPT
    from dcar.captioning.retry import RetryPolicy

    options = BuildOptions(
        prompts=tuple(prompt) if prompt else DEFAULT_PROMPTS, prefix=prefix or None,
        max_tokens=max_tokens or CLIP_CONTEXT_LENGTH,
        workers=workers, retry=RetryPolicy(attempts=attempts), max_consecutive_failures=max_failures, progress=progress,
    )
    if timeout <= 0:
        raise DcarError("--timeout must be positive")
    cfg = BuildConfig(
        source=images, out=out, captioner=captioner, image_root=image_root, taxonomy=taxonomy, negatives=negatives,
        strategy=_check_strategy(strategy), model=model, verify=verify, verify_prompt=verify_prompt or VERIFY_PROMPT,
        cache=cache, seed=seed, options=options,
        captioner_options=CaptionerOptions(timeout=timeout, max_new_tokens=max_new_tokens, device=device,
                                           api_key_env=api_key_env, allow_insecure_key=allow_insecure_key),
    )
    report = build_dataset(cfg, console=Console(stderr=True))
    if as_json:
        typer.echo(json.dumps(report.summary(), ensure_ascii=False))
        return
    _print_build(report.summary(), Console())


def _print_build(s: dict, console: Console) -> None:
    c, n = s["captions"], s["negatives"]
    rows = [
        ("entries read", s["entries_read"]),
        ("input rows skipped", s["input_skipped"]),
        ("images not found", s["missing_images"]),
        ("captions written", s["written"]),
        ("answers asked now / from cache", f"{c['answers_new']} / {c['answers_cached']}"),
        ("retries", c["retries"]),
        ("skipped: failed / filtered / rejected", f"{c['failed']} / {c['filtered']} / {c['rejected']}"),
        ("captions cut to fit", c["truncated"]),
        ("negatives (swap / attribute)", _kinds(n)),
        ("negatives identical to positive", n["identical"]),
        ("swaps within the meta-category", _share(n["swaps_same_meta_share"])),
        ("seconds", f"{c['seconds']:.1f}"),
    ]
    console.print(summary_table(f"dcar data build -> {s['out']}", rows))
    if s["skipped_file"]:
        console.print(f"skipped entries and reasons: {s['skipped_file']}", highlight=False, soft_wrap=True)
    if s["cache"]:
        console.print(f"answer cache (resume): {s['cache']}", highlight=False, soft_wrap=True)


def _kinds(stats: dict) -> str:
    kinds = stats["kinds"]
    return f"{stats['negatives']} ({kinds.get('swap', 0)} / {kinds.get('attribute', 0)})"


def _share(value: float | None) -> str:
    return "n/a (no taxonomy)" if value is None else f"{100 * value:.1f}%"


@data_app.command("negatives")
@locks_outputs(out="file")
def negatives_command(
    source: Path = typer.Argument(..., help="Captioned dataset: FDRD JSON, or CSV/JSONL with a caption column."),
    out: Path = typer.Option(..., "--out", help="FDRD JSON to write (FDRD input keeps its layout)."),
    k: int = typer.Option(4, "--k", min=1, help="Negatives per caption."),
    strategy: str = typer.Option("mixed", "--strategy", help=STRATEGY_HELP),
    taxonomy: Optional[Path] = typer.Option(None, "--taxonomy", help="JSON {subcategory: meta-category}."),
    repair: bool = typer.Option(False, "--repair", help="Keep the published negatives; replace only those identical "
                                "to the positive or repeated."),
    model: Optional[str] = typer.Option(None, "--model", help="Backbone spec ranking hard siblings by text embedding."),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
) -> None:
    """Generate hard negatives (category swaps, attribute changes), or repair a published file's."""
    from dcar.data.taxonomy import read_taxonomy
    from dcar.negatives.factory import make_generator
    from dcar.negatives.files import rewrite_negatives

    tax = read_taxonomy(taxonomy) if taxonomy else None
    _check_strategy(strategy)
    report = rewrite_negatives(
        source, out, lambda cats: make_generator(cats, k=k, strategy=strategy, taxonomy=tax, model=model, seed=seed),
        repair=repair, taxonomy=tax,
    )
    summary = report.summary()
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False))
        return
    _print_negatives(summary, out, Console())


def _print_negatives(s: dict, out: Path, console: Console) -> None:
    rows: list[tuple[str, object]] = [("entries", s["entries"]), ("entries skipped (no caption)", s["skipped"])]
    if "repair" in s:
        r = s["repair"]
        rows += [
            ("negatives checked", r["negatives"]),
            ("identical to positive / repeated", f"{r['identical']} / {r['repeated']}"),
            ("replaced", r["replaced"]),
            ("could not be replaced (dropped)", r["unfixable"]),
        ]
    if "generated" in s:
        g = s["generated"]
        rows += [
            ("negatives (swap / attribute)", _kinds(g)),
            ("entries with fewer than k", g["entries_with_fewer_than_k"]),
            ("swaps within the meta-category", _share(g["swaps_same_meta_share"])),
        ]
    rows += [("identical to positive after", s["identical_after"]), ("repeated after", s["repeated_after"])]
    console.print(summary_table(f"dcar data negatives -> {out}", rows))
