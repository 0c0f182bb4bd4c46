"""Django's SQLite backend, with every transaction taking its turn at the write gate.

SQLite has one writer at a time. Every ``transaction.atomic()`` on SQLite begins with
``BEGIN IMMEDIATE`` (settings.DATABASES), so it is a writer from its first statement; here it
first takes the gate (``runtime.gate``: webhook intake before background work, across the
web process and its worker child), and gives it back the moment it commits or rolls back,
before any on-commit work runs. Domain code writes with plain ``transaction.atomic()`` and
never names a lock: processing, the alert sweep and every later bulk writer are covered by
this one place. A transaction inside one the thread already holds (the intake writer's, a
test's) does not queue again.

A write in autocommit mode (a lone ``save()`` or ``update()``, a task enqueued after
commit) is a transaction of one statement: it takes its turn at the gate too, instead of
polling in SQLite's busy handler, which sleeps 1 to 100 ms between tries and loses to any
writer that holds the lock in a loop. With a task thread for dispatch beside one for the
broadcast runner, enqueues waiting there were most of a text's time (bench/README.md,
"make bench-broadcast")."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db.backends.sqlite3 import base

from openline.runtime.gate import write_gate

_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


class GatedCursorWrapper(base.SQLiteCursorWrapper):
    """Django's cursor; a write outside a transaction takes the write gate around it."""

    def execute(self, query: str, params: Any = None) -> Any:
        with self._turn(query):
            return super().execute(query, params)

    def executemany(self, query: str, param_list: Any) -> Any:
        with self._turn(query):
            return super().executemany(query, param_list)

    @contextmanager
    def _turn(self, query: str) -> Iterator[None]:
        if self.connection.in_transaction or not query.lstrip()[:7].upper().startswith(_WRITES):
            yield
            return
        with write_gate.background():
            yield


class DatabaseWrapper(base.DatabaseWrapper):
    # The hooks below are private to Django and django-stubs leaves them out, hence the
    # ignores on the super() calls.
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._gate_release: Callable[[], None] | None = None

    def create_cursor(self, name: str | None = None) -> Any:
        return self.connection.cursor(factory=GatedCursorWrapper)

    def _start_transaction_under_autocommit(self) -> None:
        self._gate_release = write_gate.enter_background()
        try:
            super()._start_transaction_under_autocommit()  # type: ignore[misc]
        except BaseException:
            self._leave_gate()
            raise

    def _commit(self) -> None:
        try:
            super()._commit()  # type: ignore[misc]
        finally:
            self._leave_gate()

    def _rollback(self) -> None:
        try:
            super()._rollback()  # type: ignore[misc]
        finally:
            self._leave_gate()

    def _close(self) -> None:
        try:
            super()._close()  # type: ignore[misc]
        finally:
            self._leave_gate()

    def _leave_gate(self) -> None:
        release, self._gate_release = self._gate_release, None
        if release is not None:
            release()
