"""What a test suite resets between tests: this process's caches of the runtime (the intake's
webhook-address cache) and the intake's overflow journal, which outlives a test's rolled-back
database. The root conftest calls ``reset_process_state`` around every test."""

from __future__ import annotations

import os
import sqlite3

from openline.runtime.intake import forget_numbers
from openline.runtime.journal import journal_path


def reset_process_state() -> None:
    forget_numbers()
    _empty_journal()


def _empty_journal() -> None:
    """A webhook journaled in one test must not turn up in the next one's database."""
    path = journal_path()
    if os.path.exists(path):
        db = sqlite3.connect(path, timeout=5)
        try:
            with db:
                db.execute("DELETE FROM pending")
        finally:
            db.close()
