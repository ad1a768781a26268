"""Reading the files a user points dcar at, with one-line errors naming the file.

Every text or JSON file dcar reads from the user (datasets, taxonomies, configs, run folders,
lists) goes through :func:`read_text` / :func:`read_json`: a missing file, a folder, a named pipe
or device (which would block a plain ``open``), bad UTF-8, invalid JSON and JSON nested too
deeply for Python's parser all become a :class:`~dcar.errors.DataError`, never a traceback or a hang.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, Callable

from dcar.errors import DataError


def check_readable_file(path: str | Path, what: str = "file") -> Path:
    """``path`` as a Path if it is an existing regular file (symlinks followed), else a DataError."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from None
    if stat.S_ISDIR(mode):
        raise DataError(f"{path}: is a folder, not a {what}")
    if not stat.S_ISREG(mode):
        raise DataError(f"{path}: is {special_kind(mode)}, not a regular {what}")
    return path


def special_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def text_problem(text: str) -> str | None:
    """Why ``text`` is not valid Unicode text (JSON's ``\\ud800`` escapes decode to lone surrogates,
    which no file, tokenizer or terminal accepts), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        return f"invalid character {text[err.start]!r} (a lone surrogate) at position {err.start}"
    return None


def read_text(path: str | Path, what: str = "file", encoding: str = "utf-8") -> str:
    path = check_readable_file(path, what)
    try:
        return path.read_text(encoding=encoding)
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from None


def read_json(path: str | Path, what: str = "JSON file", object_pairs_hook: Callable[[list], Any] | None = None) -> Any:
    """The parsed content of a JSON file (see module docstring for the errors)."""
    text = read_text(path, what, encoding="utf-8-sig")  # -sig: editors on Windows write a BOM
    try:
        return json.loads(text, object_pairs_hook=object_pairs_hook)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: invalid JSON at line {err.lineno} column {err.colno}: {err.msg}") from None
    except RecursionError:
        raise DataError(f"{path}: JSON nested too deeply to read") from None
