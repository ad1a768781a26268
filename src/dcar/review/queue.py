"""A durable review queue in SQLite (WAL mode, synchronous=FULL: a committed write survives a
kill -9 or a power cut; an uncommitted one leaves no trace).

Nothing is lost or doubled: an item is enqueued under an idempotency key (``request_id``: the
same match enqueued twice, e.g. a client retrying after a crash, is one item), and ``decisions``
has the item as its primary key, so an item is decided once; a second decision is refused with the
first one named. Each decision records the reviewer and the time (UTC).
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from dcar.errors import DcarError

QUEUE_FILE = "review.sqlite"  # next to the index
DECISIONS = ("accept", "correct", "reject")

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    task TEXT NOT NULL,
    query TEXT NOT NULL,
    query_kind TEXT NOT NULL CHECK (query_kind IN ('image', 'text')),
    category TEXT,
    candidates TEXT NOT NULL,
    proposed TEXT NOT NULL,
    score REAL NOT NULL,
    policy TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS decisions (
    item_id INTEGER PRIMARY KEY REFERENCES items(id),
    decision TEXT NOT NULL CHECK (decision IN ('accept', 'correct', 'reject')),
    label TEXT,
    reviewer TEXT NOT NULL,
    decided_at TEXT NOT NULL
);
"""


@dataclass
class Item:
    id: int
    request_id: str
    created_at: str
    task: str
    query: str
    query_kind: str
    category: str | None
    candidates: list[dict]  # [{"match": ..., "similarity": ..., ...}], best first
    proposed: str
    score: float
    policy: str
    decision: str | None = None
    label: str | None = None
    reviewer: str | None = None
    decided_at: str | None = None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class ReviewQueue:
    """Open (or, with ``create``, create) the queue at ``path``. One connection per thread or process.

    Commands that only read or decide open with ``create=False``: a path that holds no queue is
    then an error, not a new empty queue that silently lists nothing.
    """

    def __init__(self, path: str | Path, create: bool = True):
        self.path = Path(path)
        if self.path.is_dir():
            self.path = self.path / QUEUE_FILE
        if not create:
            self._check_existing()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            with self._transaction():
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        self.db.execute(statement)
        except sqlite3.DatabaseError as err:
            raise DcarError(f"{self.path}: not a review queue ({err})") from None

    def _check_existing(self) -> None:
        from dcar.files import check_readable_file

        if not self.path.exists():
            raise DcarError(f"{self.path}: no review queue here")
        check_readable_file(self.path, "review queue")
        with open(self.path, "rb") as f:
            if f.read(16) != b"SQLite format 3\x00":  # the header of every SQLite database file
                raise DcarError(f"{self.path}: not a review queue (not an SQLite database)")
        try:
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
            try:
                found = db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='items'").fetchone()
            finally:
                db.close()
        except sqlite3.DatabaseError as err:
            raise DcarError(f"{self.path}: not a review queue ({err})") from None
        if not found:
            raise DcarError(f"{self.path}: not a review queue (no items table)")

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def enqueue(self, request_id: str, task: str, query: str, query_kind: str, candidates: list[dict],
                score: float, policy: str = "", category: str | None = None) -> int:
        """The item's id; enqueuing the same ``request_id`` again returns the first item's id."""
        if not candidates:
            raise DcarError("a review item needs at least one candidate")
        with self._transaction():
            self.db.execute(
                "INSERT OR IGNORE INTO items (request_id, created_at, task, query, query_kind, category, candidates,"
                " proposed, score, policy) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (request_id, _now(), task, query, query_kind, category, json.dumps(candidates, ensure_ascii=False),
                 str(candidates[0]["match"]), float(score), policy),
            )
            (item_id,) = self.db.execute("SELECT id FROM items WHERE request_id = ?", (request_id,)).fetchone()
        return int(item_id)

    def decide(self, item_id: int, decision: str, reviewer: str, label: str | None = None) -> Item:
        """Store a decision: ``accept`` the proposed match, ``correct`` it to ``label``, or ``reject`` it."""
        if decision not in DECISIONS:
            raise DcarError(f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
        if not reviewer.strip():
            raise DcarError("a decision needs the reviewer's name")
        if decision == "correct" and not (label or "").strip():
            raise DcarError("a correction needs the right label")
        with self._transaction():
            item = self.get(item_id)
            if item.decision is not None:
                raise DcarError(f"item {item_id} was already decided ({item.decision}) by {item.reviewer} at {item.decided_at}")
            self.db.execute(
                "INSERT INTO decisions (item_id, decision, label, reviewer, decided_at) VALUES (?, ?, ?, ?, ?)",
                (item_id, decision, label if decision == "correct" else (item.proposed if decision == "accept" else None),
                 reviewer.strip(), _now()),
            )
        return self.get(item_id)

    def get(self, item_id: int) -> Item:
        row = self.db.execute(_SELECT + " WHERE items.id = ?", (item_id,)).fetchone()
        if row is None:
            raise DcarError(f"no review item {item_id}")
        return _item(row)

    def items(self, status: str = "all", limit: int | None = None, offset: int = 0) -> list[Item]:
        """``pending``, ``decided`` or ``all`` items, oldest first."""
        where = {"pending": " WHERE decisions.item_id IS NULL", "decided": " WHERE decisions.item_id IS NOT NULL", "all": ""}
        if status not in where:
            raise DcarError(f"status must be pending, decided or all, got {status!r}")
        sql = _SELECT + where[status] + " ORDER BY items.id" + (f" LIMIT {int(limit)} OFFSET {int(offset)}" if limit else "")
        return [_item(r) for r in self.db.execute(sql)]

    def counts(self) -> dict[str, int]:
        total = self.db.execute("SELECT COUNT(*) FROM items").fetchone()[0]
        by = dict(self.db.execute("SELECT decision, COUNT(*) FROM decisions GROUP BY decision").fetchall())
        decided = sum(by.values())
        return {"items": total, "pending": total - decided, **{d: by.get(d, 0) for d in DECISIONS}}


_SELECT = (
    "SELECT items.id, request_id, created_at, task, query, query_kind, category, candidates, proposed, score, policy,"
    " decision, label, reviewer, decided_at FROM items LEFT JOIN decisions ON decisions.item_id = items.id"
)


def _item(row: tuple) -> Item:
    values = list(row)
    values[7] = json.loads(values[7])
    return Item(*values)
