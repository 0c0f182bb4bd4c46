"""The intake's overflow journal (SQLite only).

A webhook that arrives while processing holds SQLite's write lock does not wait for it: the
event loop appends the event to this small side database (a file next to the main one, with
its own lock) and answers at once. Processing moves journaled events into InboundEvent under
the write lock before each batch, with the intake's own INSERT … ON CONFLICT DO NOTHING (so a
retried webhook is still stored once), and deletes them from the journal after that commit.
A crash in between moves them again, harmlessly. Durability is the main database's: WAL with
synchronous=NORMAL."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import threading
from typing import Any

from django.db import transaction

from openline.messaging.sql import inbound_events_insert
from openline.runtime.gate import write_gate

SUFFIX = "-intake"


def journal_path() -> str:
    return write_gate.database_path() + SUFFIX


class Journal:
    """One connection to the journal. ``wait`` is how long a write may wait for the
    journal's lock: 0 on the event loop (it hands the batch to the writer thread instead)."""

    def __init__(self, path: str, *, wait: float) -> None:
        # Webhook bodies (people's texts) wait here: the file is the service's own from its
        # first byte, and SQLite gives its -wal and -shm files the same mode.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=wait)
        self.db.execute(f"PRAGMA busy_timeout={int(wait * 1000)}")
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS pending (id INTEGER PRIMARY KEY, event TEXT NOT NULL)"
        )

    def append(self, rows: list[dict[str, Any]]) -> None:
        encoded = [
            (json.dumps({**row, "received_at": row["received_at"].isoformat()}),) for row in rows
        ]
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.executemany("INSERT INTO pending (event) VALUES (?)", encoded)
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise

    def take(self, limit: int) -> tuple[int, list[dict[str, Any]]]:
        """The oldest ``limit`` events and the id of the last one."""
        found = self.db.execute(
            "SELECT id, event FROM pending ORDER BY id LIMIT ?", (limit,)
        ).fetchall()
        rows = []
        for _, text in found:
            row = json.loads(text)
            row["received_at"] = dt.datetime.fromisoformat(row["received_at"])
            rows.append(row)
        return (found[-1][0] if found else 0), rows

    def forget(self, up_to: int) -> None:
        self.db.execute("DELETE FROM pending WHERE id <= ?", (up_to,))

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM pending").fetchone()[0])

    def close(self) -> None:
        self.db.close()


_local = threading.local()


def _thread_journal() -> Journal | None:
    """This thread's connection for moving events, if a journal file exists."""
    path = journal_path()
    journal: Journal | None = getattr(_local, "journal", None)
    if journal is not None and getattr(_local, "path", None) == path:
        return journal
    if not os.path.exists(path):
        return None
    journal = Journal(path, wait=5.0)
    _local.journal, _local.path = journal, path
    return journal


MOVE_LIMIT = 500


def journal_move(limit: int = MOVE_LIMIT) -> int:
    """Move journaled events into InboundEvent (processing calls this before each batch).
    Returns how many were moved."""
    if not write_gate.shared_file():
        return 0
    journal = _thread_journal()
    if journal is None:
        return 0
    last, rows = journal.take(limit)
    if not rows:
        return 0
    with transaction.atomic():  # takes the write gate (runtime.sqlite)
        inbound_events_insert(rows=rows)
    journal.forget(last)
    return len(rows)


def journal_count() -> int:
    """Events waiting in the journal (0 without one)."""
    if not write_gate.shared_file() or not os.path.exists(journal_path()):
        return 0
    journal = Journal(journal_path(), wait=1.0)
    try:
        return journal.count()
    finally:
        journal.close()
