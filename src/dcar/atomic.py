"""Atomic file writes: a reader, or a run killed midway, never sees a half-written file.

Everything dcar writes goes through :func:`atomic_path`: the content goes to a temporary file in
the destination folder, which replaces the destination only once complete.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator


def _umask_mode() -> int:
    """The mode a plain ``open()`` would give a new file (mkstemp's 0600 is for secrets)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(text: str, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def write_json_atomic(obj: object, path: str | Path) -> None:
    text = json.dumps(obj, ensure_ascii=False, indent=1)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates kept from an input file: keep them as \\udXXX escapes
        text = json.dumps(obj, ensure_ascii=True, indent=1)
    write_text_atomic(text, path)


def write_csv_atomic(rows: Iterable[dict[str, Any]], fields: list[str], path: str | Path) -> None:
    """A CSV with header ``fields``; keys missing from a row are left empty."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, restval="")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(buf.getvalue(), path)


def save_figure_atomic(fig: Any, path: str | Path, **savefig_kwargs: Any) -> Path:
    """``fig.savefig`` to ``path``; the format comes from the destination's suffix (the temporary
    file's own suffix would tell matplotlib nothing)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", **savefig_kwargs)
    return path
