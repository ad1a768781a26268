"""Per-answer cache: an append-only JSONL file that makes a killed build resumable.

Every finished answer is appended as one line and fsync'ed before the builder moves on, so a
kill (or a crash, or a power cut after the fsync) loses at most the answers in flight. A line cut
short by a kill is skipped when the cache is read back. Keys hash the image content, the
captioner's identity and the exact question, so a changed prompt or model never reuses a stale
answer, and a moved or renamed image still hits.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path


def cache_key(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (the image's identity in cache keys)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class AnswerCache:
    """Thread-safe ``key -> record`` store backed by an append-only JSONL file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._records: dict[str, dict] = {}
        self.bad_lines = 0  # lines cut short by a kill, or edited by hand
        if self.path.exists():
            self._load()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._needs_newline = self._ends_mid_line()  # a killed run may have left half a line

    def _load(self) -> None:
        with open(self.path, "r", encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    record = json.loads(line)
                    self._records[record["id"]] = record
                except (json.JSONDecodeError, KeyError, TypeError):
                    self.bad_lines += 1

    def __len__(self) -> int:
        return len(self._records)

    def get(self, key: str) -> dict | None:
        with self._lock:
            return self._records.get(key)

    def put(self, key: str, **record: object) -> None:
        """Store and persist one record (fsync'ed before returning)."""
        line = json.dumps({"id": key, **record}, ensure_ascii=False) + "\n"
        with self._lock:
            with open(self.path, "a", encoding="utf-8") as f:
                if self._needs_newline:  # start on a fresh line after a cut-short one
                    f.write("\n")
                    self._needs_newline = False
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
            self._records[key] = {"id": key, **record}

    def _ends_mid_line(self) -> bool:
        try:
            with open(self.path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                return f.read(1) != b"\n"
        except OSError:  # missing or empty file
            return False
