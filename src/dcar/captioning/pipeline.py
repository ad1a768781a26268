"""`dcar data build` end to end: read labelled images, caption, add negatives, write FDRD JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from dcar.atomic import write_text_atomic
from dcar.backbone.tokenizer import fits
from dcar.captioning.builder import BuildOptions, BuildReport, CaptionBuilder
from dcar.captioning.answer_cache import AnswerCache
from dcar.captioning.captioners.base import CaptionerOptions, load_captioner
from dcar.captioning.questions import VERIFY_PROMPT
from dcar.captioning.inputs import load_build_input
from dcar.captioning.verify import Verifier
from dcar.data.records import Entry, write_fdrd
from dcar.data.taxonomy import read_taxonomy
from dcar.negatives.factory import make_generator
from dcar.negatives.generator import Strategy
from dcar.negatives.stats import NegativeStats


@dataclass
class BuildConfig:
    source: Path
    out: Path
    captioner: str = "template:"
    image_root: Path | None = None  # where a table's relative image paths start
    taxonomy: Path | None = None
    negatives: int = 4
    strategy: Strategy = "mixed"
    model: str | None = None  # backbone spec for hard siblings by text embedding
    verify: str | None = None
    verify_prompt: str = VERIFY_PROMPT  # {caption}, {class}, {a}, {meta}
    cache: Path | None = None  # default: OUT.cache.jsonl
    seed: int = 0
    options: BuildOptions = field(default_factory=BuildOptions)
    captioner_options: CaptionerOptions = field(default_factory=CaptionerOptions)

    @property
    def cache_path(self) -> Path:
        return self.cache or self.out.with_name(self.out.name + ".cache.jsonl")

    @property
    def skipped_path(self) -> Path:
        return self.out.with_name(self.out.name + ".skipped.tsv")


@dataclass
class DatasetReport:
    entries_read: int
    input_skipped: list[str]  # rows or files that could not become entries
    missing_images: list[str]
    captions: BuildReport
    negatives: NegativeStats
    written: int
    out: Path
    cache: Path | None
    skipped_file: Path | None

    def summary(self) -> dict[str, object]:
        return {
            "out": str(self.out),
            "entries_read": self.entries_read,
            "input_skipped": len(self.input_skipped),
            "missing_images": len(self.missing_images),
            "written": self.written,
            "captions": self.captions.summary(),
            "negatives": self.negatives.summary(),
            "cache": str(self.cache) if self.cache else None,
            "skipped_file": str(self.skipped_file) if self.skipped_file else None,
        }


def build_dataset(cfg: BuildConfig, console: Console | None = None) -> DatasetReport:
    loaded = load_build_input(cfg.source, cfg.image_root)
    taxonomy = _taxonomy(cfg, loaded.entries)
    entries = [_with_meta(e, taxonomy) for e in loaded.with_images()]
    captioner = load_captioner(cfg.captioner, cfg.captioner_options)
    verifier = Verifier(load_captioner(cfg.verify, cfg.captioner_options), cfg.verify_prompt) if cfg.verify else None
    cache = AnswerCache(cfg.cache_path) if captioner.cacheable or verifier else None
    try:
        built, report = CaptionBuilder(captioner, cfg.options, cache, verifier, console=console).build(entries)
    finally:
        captioner.close()
        if verifier is not None:
            verifier.captioner.close()
    stats = _add_negatives(cfg, built, taxonomy, categories=sorted({e.category for e in loaded.entries}))
    write_fdrd(built, cfg.out)
    skipped = [*(f"{s}\tunreadable input" for s in loaded.skipped),
               *(f"{k}\timage not found" for k in loaded.missing_images),
               *(f"{k}\t{why}" for k, why in report.skipped)]
    skipped_file = _write_skipped(cfg.skipped_path, skipped)
    return DatasetReport(
        entries_read=len(loaded.entries), input_skipped=list(loaded.skipped), missing_images=list(loaded.missing_images),
        captions=report, negatives=stats, written=len(built), out=cfg.out,
        cache=cfg.cache_path if cache is not None else None, skipped_file=skipped_file,
    )


def _taxonomy(cfg: BuildConfig, entries: list[Entry]) -> dict[str, str]:
    """The taxonomy file, else the meta-categories the input itself carries."""
    if cfg.taxonomy is not None:
        return read_taxonomy(cfg.taxonomy)
    return {e.category: e.meta_category for e in entries if e.meta_category}


def _with_meta(entry: Entry, taxonomy: dict[str, str]) -> Entry:
    if not entry.meta_category and entry.category in taxonomy:
        entry.meta_category = taxonomy[entry.category]
    return entry


def _add_negatives(cfg: BuildConfig, entries: list[Entry], taxonomy: dict[str, str], categories: list[str]) -> NegativeStats:
    stats = NegativeStats()
    if cfg.negatives <= 0 or not entries:
        return stats
    generator = make_generator(
        categories, k=cfg.negatives, strategy=cfg.strategy, taxonomy=taxonomy or None, model=cfg.model,
        seed=cfg.seed, fits=lambda text: fits(text, cfg.options.max_tokens),
    )
    for entry in entries:
        made = generator.generate(entry.caption, entry.category, key=entry.key)
        entry.negatives = [n.text for n in made]
        stats.add(entry.caption, made, entry.category, cfg.negatives, taxonomy)
    return stats


def _write_skipped(path: Path, lines: list[str]) -> Path | None:
    """Every skipped entry with its reason, one per line (None, and no file, when nothing was)."""
    if not lines:
        path.unlink(missing_ok=True)
        return None
    write_text_atomic("key\treason\n" + "\n".join(lines) + "\n", path)
    return path
