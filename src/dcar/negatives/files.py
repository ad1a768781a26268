"""`dcar data negatives`: (re)write the negatives of a captioned dataset file.

FDRD input keeps its exact layout (every field but ``negative`` is written back as read), so a
repaired published file differs from the original only in the repaired negatives. Other inputs
(CSV/JSONL with captions) are written as FDRD.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from dcar.data.records import Entry, write_fdrd, write_json_atomic
from dcar.data.sources import load_entries
from dcar.files import read_json
from dcar.errors import DataError
from dcar.negatives.generator import NegativeGenerator
from dcar.negatives.repair import RepairCounts, repair_negatives
from dcar.negatives.stats import NegativeStats, bad_negatives


@dataclass
class NegativesReport:
    entries: int = 0
    skipped: list[str] = field(default_factory=list)  # entries without a caption
    generated: NegativeStats | None = None  # when negatives were generated afresh
    repair: RepairCounts | None = None  # when published negatives were repaired
    identical_after: int = 0  # identical to the positive, in what was written
    repeated_after: int = 0

    def summary(self) -> dict[str, object]:
        out: dict[str, object] = {"entries": self.entries, "skipped": len(self.skipped),
                                  "identical_after": self.identical_after, "repeated_after": self.repeated_after}
        if self.generated is not None:
            out["generated"] = self.generated.summary()
        if self.repair is not None:
            out["repair"] = dict(self.repair.__dict__)
        return out


def rewrite_negatives(
    source: str | Path,
    out: str | Path,
    make: Callable[[list[str]], NegativeGenerator],
    repair: bool = False,
    taxonomy: dict[str, str] | None = None,
) -> NegativesReport:
    """Generate (or with ``repair``, fix) every entry's negatives and write ``out`` atomically.

    ``make(categories)`` builds the generator once the file's categories are known.
    """
    source = Path(source)
    loaded = load_entries(source, strict=False)
    report = NegativesReport(skipped=list(loaded.skipped))
    entries = [e for e in loaded.entries if e.caption.strip()]
    report.skipped += [f"{e.key}: no caption" for e in loaded.entries if not e.caption.strip()]
    generator = make(sorted({e.category for e in loaded.entries}))
    if repair:
        report.repair = RepairCounts()
    else:
        report.generated = NegativeStats()
    for entry in entries:
        _update(entry, generator, report, taxonomy)
    report.entries = len(entries)
    if loaded.format == "fdrd":
        _write_fdrd_in_place(source, Path(out), entries)
    else:
        write_fdrd(entries, out)
    return report


def _update(entry: Entry, generator: NegativeGenerator, report: NegativesReport, taxonomy: dict[str, str] | None) -> None:
    if report.repair is not None:
        entry.negatives, counts = repair_negatives(entry.caption, entry.negatives, entry.category, generator, key=entry.key)
        report.repair.add(counts)
    else:
        made = generator.generate(entry.caption, entry.category, key=entry.key)
        assert report.generated is not None
        report.generated.add(entry.caption, made, entry.category, generator.k, taxonomy)
        entry.negatives = [n.text for n in made]
    identical, repeated = bad_negatives(entry.caption, entry.negatives)
    report.identical_after += identical
    report.repeated_after += repeated


def _write_fdrd_in_place(source: Path, out: Path, entries: list[Entry]) -> None:
    """The source JSON with only the ``negative`` lists replaced (entries skipped stay as read)."""
    raw = read_json(source)  # load_entries read it a moment ago
    for entry in entries:
        if isinstance(raw.get(entry.key), dict):
            raw[entry.key]["negative"] = list(entry.negatives)
    write_json_atomic(raw, out)
