"""``file:[PATH]``: captions the user already has.

``file:`` alone takes each entry's own caption from the input (a CSV/JSONL with a caption
column). ``file:PATH`` reads a CSV or JSONL with a ``caption`` column and one of ``key``,
``image`` or ``file_name``; entries are matched by key, then image path, file name, file stem.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from dcar.captioning.captioners.base import CaptionerOptions, CaptionItem, Captioner, register
from dcar.captioning.failures import PermanentError
from dcar.errors import DataError

ID_COLUMNS = ("key", "image", "file_name")


@register("file")
class FileCaptioner(Captioner):
    cacheable = False
    can_verify = False
    needs_image = False

    def __init__(self, spec: str, rest: str, options: CaptionerOptions | None = None) -> None:
        super().__init__(spec)
        self.path = Path(rest) if rest else None
        self.table = read_caption_table(self.path) if self.path else None

    def questions(self, prompts: tuple[str, ...]) -> tuple[str, ...]:
        return ("",)

    def answer(self, item: CaptionItem, question: str) -> str:
        if self.table is None:
            if not item.caption:
                raise PermanentError(f"{item.key}: the input has no caption for this entry")
            return item.caption
        for name in _lookup_names(item):
            if name in self.table:
                return self.table[name]
        raise PermanentError(f"{item.key}: no caption in {self.path}")


def _lookup_names(item: CaptionItem) -> list[str]:
    names = [item.key]
    if item.image is not None:
        names += [str(item.image), item.image.name, item.image.stem]
    return names


def read_caption_table(path: Path) -> dict[str, str]:
    """``{identifier: caption}``: every id column's value, its file name and stem, map to the caption."""
    rows = list(_rows(path))
    table: dict[str, str] = {}
    for number, row in rows:
        caption = str(row.get("caption") or "").strip()
        ids = [str(row[c]).strip() for c in ID_COLUMNS if row.get(c)]
        if not caption or not ids:
            raise DataError(f"{path}: entry {number}: needs a caption and one of {', '.join(ID_COLUMNS)}")
        for value in ids:
            for name in (value, Path(value).name, Path(value).stem):
                table.setdefault(name, caption)
    return table


def _rows(path: Path):
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: caption file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read captions ({err})") from None
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise DataError(f"{path}: line {number}: not JSON ({err.msg})") from None
                if not isinstance(row, dict):
                    raise DataError(f"{path}: line {number}: expected a JSON object")
                yield f"line {number}", row
        return
    reader = csv.DictReader(text.splitlines(), dialect=csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel)
    for number, row in enumerate(reader, 2):
        yield f"row {number}", {(k or "").strip().lower(): v for k, v in row.items()}
