"""`dcar calibrate` (fit accept/review/reject thresholds) and `dcar match` (decide under a policy)."""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import List, Optional

import numpy as np
import typer
from rich.console import Console

from dcar.cli.app import app, locks_outputs
from dcar.cli.commands_retrieval import MODEL_HELP, default_device, load_encoder
from dcar.errors import DcarError


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def encoder_id(encoder) -> str:
    """A short, stable name of the encoder's outputs (its fingerprint, hashed)."""
    return hashlib.sha256(encoder.fingerprint().encode()).hexdigest()[:16]


@app.command("calibrate")
@locks_outputs(out="file")
def calibrate_command(
    data: Path = typer.Option(..., "--data", help="Labelled held-out set (FDRD JSON, CSV, JSONL), not used in training."),
    images: Path = typer.Option(..., "--images", help="Image root of --data."),
    out: Path = typer.Option(..., "--out", help="Policy JSON (written atomically); the chart goes next to it."),
    model: Optional[str] = typer.Option(None, "--model", help=MODEL_HELP + " Zero-shot when no --checkpoint."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="A `dcar train` run folder."),
    task: str = typer.Option("category", "--task", help="category (image -> category), i2t (image -> caption), t2i (caption -> image), knn (image -> catalog item of its category)."),
    catalog: Optional[Path] = typer.Option(None, "--catalog", help="knn: the labelled catalog matched against (FDRD, CSV, JSONL)."),
    catalog_images: Optional[Path] = typer.Option(None, "--catalog-images", help="knn: image root of --catalog."),
    index: Optional[Path] = typer.Option(None, "--index", help="knn against a built index (`dcar index build`), with the index's own model."),
    target_precision: float = typer.Option(0.95, "--target-precision", help="Precision the accepted matches must reach."),
    confidence: float = typer.Option(0.9, "--confidence", help="Probability (over the calibration draw) that they do."),
    max_review: float = typer.Option(0.2, "--max-review", help="Largest share of queries sent to review."),
    score: str = typer.Option("auto", "--score", help="auto (the better of top1 and margin, each at half the risk), top1, margin."),
    template: str = typer.Option("a photo of a {}.", "--template", help="Category task: text of a category ({} = its name)."),
    batch_size: int = typer.Option(64, "--batch-size", min=1),
    workers: Optional[int] = typer.Option(None, "--workers", min=0, help="Image decoding processes."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, ... (default: cuda if present)."),
) -> None:
    """Fit thresholds: accept >= lambda_hi with precision >= target at the given confidence
    (Learn-then-Test, binomial test), review in [lambda_lo, lambda_hi), reject below."""
    from dcar.evaluation.evaluate import load_eval_dataset
    from dcar.policy.calibrate import check_sample_size, fit_thresholds
    from dcar.policy.plot import precision_coverage_chart
    from dcar.policy.policy import Policy
    from dcar.policy.tasks import check_task, labelled_matches
    check_task(task)
    if not (0 < target_precision < 1 and 0 < confidence < 1):
        raise DcarError("--target-precision and --confidence must lie strictly between 0 and 1")
    ds = load_eval_dataset(data, images)
    queries = len(ds.entries) if task == "t2i" else len({e.image for e in ds.entries})
    check_sample_size(queries, target_precision, confidence, score)  # before any compute
    if index is not None:
        from dcar.index import Index
        from dcar.policy.tasks import index_matches

        if task != "knn" or model or checkpoint or catalog:
            raise DcarError("--index calibrates the knn task with the index's own model: drop --task/--model/--checkpoint/--catalog")
        idx = Index.open(index)
        encoder = idx.load_encoder(device or default_device()).retrieval
        got = index_matches(idx, encoder, ds, batch_size, workers)
        checkpoint = Path(idx.model["run"]) if idx.model.get("run") else None
    else:
        encoder = load_encoder(model, device or default_device(), checkpoint)
        cat = load_eval_dataset(catalog, catalog_images) if catalog is not None else None
        got = labelled_matches(encoder, ds, task, template, batch_size=batch_size, workers=workers, catalog=cat)
    scores = {k: got.ranked.score(k) for k in ("top1", "margin")}
    fit = fit_thresholds(scores, got.correct, target_precision, confidence, max_review, score)
    policy = Policy(
        task=task, score=fit.score, lambda_hi=fit.lambda_hi, lambda_lo=fit.lambda_lo,
        target_precision=target_precision, confidence=confidence, max_review=max_review,
        model=encoder.model, checkpoint=str(checkpoint.resolve()) if checkpoint else None,
        encoder=encoder_id(encoder),
        data={"path": str(data.resolve()), "sha256": _sha256(data), "entries": len(ds.entries), "skipped_images": got.skipped_images,
              **({"catalog": str(catalog.resolve()), "catalog_sha256": _sha256(catalog)} if catalog else {}),
              **({"index": str(index.resolve()), "index_items": len(idx)} if index is not None else {})},
        sample_size=len(got.correct), date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        template=template if task == "category" else "", categories=got.categories,
        calibration={
            "bands": fit.stats,
            "top1_right_overall": float(got.correct.mean()),
            "scores": {k: {"delta": t.delta, "lambda_hi": t.lambda_hi, "accepted": t.n_accepted,
                           "coverage": t.n_accepted / len(got.correct), "right_accepted": t.right_accepted}
                       for k, t in fit.tried.items()},
        },
    )
    policy.save(out)
    chart = out.with_suffix(".png")
    precision_coverage_chart(fit, len(got.correct), target_precision, chart, f"{task}: {ds.name} (n={len(got.correct)})")
    _report(policy, fit, Console() if sys.stdout.isatty() else Console(width=200))
    err = Console(stderr=True)
    if fit.lambda_hi is None:
        err.print(f"[yellow]warning:[/yellow] no threshold reaches precision {target_precision} at confidence "
                  f"{confidence} on these {len(got.correct)} queries: nothing is accepted automatically", highlight=False)
    err.print(f"wrote {out} and {chart}", highlight=False)


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def _report(policy, fit, console: Console) -> None:
    from dcar.reporting import summary_table

    bands = fit.stats
    rows = [("task", policy.task), ("labelled queries", policy.sample_size),
            ("top-1 right overall", f"{100 * policy.calibration['top1_right_overall']:.1f}%")]
    for name, t in fit.tried.items():
        rows.append((f"{name}: accept >= (delta {t.delta:.3g})", f"{_fmt(t.lambda_hi)}, coverage {100 * t.n_accepted / policy.sample_size:.1f}%"))
    rows += [("score kept", policy.score), ("lambda_hi (accept)", _fmt(policy.lambda_hi)),
             ("lambda_lo (review)", _fmt(policy.lambda_lo))]
    for name in ("accept", "review", "reject"):
        b = bands[name]
        right = "-" if b["top1_right"] is None else f"{100 * b['top1_right']:.1f}%"
        rows.append((f"{name} share (top-1 right)", f"{100 * b['share']:.1f}% ({right})"))
    console.print(summary_table(f"policy: precision >= {policy.target_precision} at confidence {policy.confidence}", rows))


@app.command("match")
def match_command(
    policy_file: Path = typer.Option(..., "--policy", help="Policy JSON from `dcar calibrate`."),
    image: List[Path] = typer.Option([], "--image", help="Query image (category and i2t policies); repeat for several."),
    text: List[str] = typer.Option([], "--text", help="Query caption (t2i policies); repeat for several."),
    gallery: Optional[Path] = typer.Option(None, "--gallery", help="i2t / t2i: the candidates (FDRD, CSV, JSONL or image folder)."),
    gallery_images: Optional[Path] = typer.Option(None, "--gallery-images", help="Image root of --gallery."),
    index: Optional[Path] = typer.Option(None, "--index", help="knn: match against a built index instead of --gallery."),
    k: int = typer.Option(5, "--k", min=1, help="Candidates shown per query."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines instead of a table."),
    queue: Optional[Path] = typer.Option(None, "--queue", help="Send review-band matches to this review queue (review.sqlite or its folder)."),
    device: Optional[str] = typer.Option(None, "--device"),
) -> None:
    """Match queries and decide accept / review / reject for each top-1 under a policy."""
    from dcar.policy import load_policy
    from dcar.evaluation.topk import rank_candidates

    policy = load_policy(policy_file)
    encoder = load_encoder(None if policy.checkpoint else policy.model, device or default_device(),
                           Path(policy.checkpoint) if policy.checkpoint else None)
    if encoder_id(encoder) != policy.encoder:
        raise DcarError(f"{policy_file}: calibrated for encoder {policy.encoder}, but {policy.model} now gives "
                        f"{encoder_id(encoder)}: calibrate again for this model")
    queries, names = _queries(policy, image, text, encoder)
    if index is not None:
        ranked, cand_names = _index_candidates(policy, index, queries, k)
    else:
        cand_feats, cand_names = _candidates(policy, encoder, gallery, gallery_images)
        ranked = rank_candidates(queries, cand_feats, k)
    decisions = policy.decide(ranked.score(policy.score))
    results = [
        {"query": q, "decision": str(d), "score": float(s), policy.score: float(s),
         "candidates": [{"match": cand_names[j], "similarity": float(v)} for j, v in zip(ranked.indices[i][:k], ranked.sims[i][:k])]}
        for i, (q, d, s) in enumerate(zip(names, decisions, ranked.score(policy.score)))
    ]
    if queue is not None:
        _enqueue(queue, policy, policy_file, results)
    _print_matches(results, as_json, policy)


def _enqueue(queue: Path, policy, policy_file: Path, results: list[dict]) -> None:
    """Review-band matches into the queue; the same query under the same policy is one item."""
    from dcar.review import ReviewQueue

    q = ReviewQueue(queue)
    kind = "text" if policy.task == "t2i" else "image"
    for r in results:
        if r["decision"] == "review":
            request = hashlib.sha256(f"{policy.encoder}|{policy.task}|{policy.date}|{r['query']}".encode()).hexdigest()
            query = r["query"] if kind == "text" else str(Path(r["query"]).resolve())
            r["review_item"] = q.enqueue(request, policy.task, query, kind, r["candidates"], r["score"],
                                         policy=str(policy_file.resolve()))
    q.close()


def _queries(policy, image: list[Path], text: list[str], encoder) -> tuple[np.ndarray, list[str]]:
    from dcar.evaluation.embed import embed_images, embed_texts

    if policy.task == "t2i":
        if image or not text:
            raise DcarError("this policy matches captions to images: give --text (not --image)")
        return embed_texts(encoder, text, progress=False), list(text)
    if text or not image:
        raise DcarError(f"this policy matches images ({policy.task}): give --image (not --text)")
    for p in image:
        if not p.is_file():
            raise DcarError(f"{p}: image not found")
    got = embed_images(encoder, [str(p) for p in image], num_workers=0, progress=False)
    if got.skipped:
        i, path, why = got.skipped[0]
        raise DcarError(f"{path}: cannot read the image ({why})")
    return got.features, [str(p) for p in image]


def _index_candidates(policy, index_dir: Path, queries: np.ndarray, k: int):
    from dcar.evaluation.topk import Ranked
    from dcar.index import Index

    if policy.task != "knn":
        raise DcarError(f"--index matches the knn task; this policy is {policy.task}: use --gallery")
    idx = Index.open(index_dir)
    if hashlib.sha256(idx.model["fingerprint"].encode()).hexdigest()[:16] != policy.encoder:
        raise DcarError(f"{index_dir}: built with another model than the policy was calibrated for")
    scores, ids = idx.search(queries, max(k, 2), "images")
    names = {int(i): f"{idx.item(int(i))['category']}: {idx.item(int(i))['path']}" for i in np.unique(ids) if i >= 0}
    order = sorted(names)
    col = {i: j for j, i in enumerate(order)}
    return Ranked(np.vectorize(col.get)(ids), scores.astype(np.float32)), [names[i] for i in order]


def _candidates(policy, encoder, gallery: Path | None, gallery_images: Path | None) -> tuple[np.ndarray, list[str]]:
    from dcar.data.sources import load_entries
    from dcar.evaluation.embed import embed_images, embed_texts
    from dcar.policy.tasks import category_texts

    if policy.task == "category":
        if gallery is not None:
            raise DcarError("a category policy matches against its own categories: drop --gallery")
        return embed_texts(encoder, category_texts(policy.categories, policy.template), progress=False), policy.categories
    if gallery is None:
        raise DcarError(f"a {policy.task} policy needs the candidates: give --gallery FILE (and --gallery-images DIR)")
    entries = load_entries(gallery, images=gallery_images).with_images()
    if policy.task == "knn":
        paths = list(dict.fromkeys(e.image for e in entries))
        category = {e.image: e.category for e in entries}
        got = embed_images(encoder, paths, num_workers=0, progress=False)
        if not got.features.size:
            raise DcarError(f"{gallery}: none of its images could be read")
        return got.features, [f"{category[p]}: {p}" for p, ok in zip(paths, got.ok) if ok]
    if policy.task == "i2t":
        captions = list(dict.fromkeys(e.caption for e in entries if e.caption.strip()))
        if not captions:
            raise DcarError(f"{gallery}: no captions to match against")
        return embed_texts(encoder, captions, progress=False), captions
    paths = list(dict.fromkeys(e.image for e in entries))
    got = embed_images(encoder, paths, num_workers=0, progress=False)
    if not got.features.size:
        raise DcarError(f"{gallery}: none of its images could be read")
    return got.features, [p for p, ok in zip(paths, got.ok) if ok]


def _print_matches(results: list[dict], as_json: bool, policy) -> None:
    if as_json:
        for r in results:
            typer.echo(json.dumps(r, ensure_ascii=False))
        return
    from rich.table import Table

    table = Table(title=f"{policy.task} under policy (accept >= {_fmt(policy.lambda_hi)}, review >= {_fmt(policy.lambda_lo)})")
    for col in ("query", "decision", policy.score, "top-1", "next"):
        table.add_column(col)
    colour = {"accept": "green", "review": "yellow", "reject": "red"}
    for r in results:
        c = r["candidates"]
        table.add_row(r["query"], f"[{colour[r['decision']]}]{r['decision']}[/]", f"{r['score']:.4f}",
                      f"{c[0]['match']} ({c[0]['similarity']:.3f})",
                      ", ".join(f"{x['match']} ({x['similarity']:.3f})" for x in c[1:3]))
    (Console() if sys.stdout.isatty() else Console(width=200)).print(table)
