"""SQLite has one writer at a time. Inside one process, threads that write take turns here
instead of sleeping in SQLite's busy handler (which backs off up to 100 ms), and webhook
intake goes first: an acknowledgement waits on it, background processing does not.

On PostgreSQL writers do not exclude each other, so the gate lets everyone through."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection


class WriteGate:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._busy = False
        self._urgent_waiting = 0

    @contextmanager
    def urgent(self) -> Iterator[None]:
        if connection.vendor != "sqlite":
            yield
            return
        with self._cond:
            self._urgent_waiting += 1
            while self._busy:
                self._cond.wait()
            self._urgent_waiting -= 1
            self._busy = True
        try:
            yield
        finally:
            self._release()

    @contextmanager
    def background(self) -> Iterator[None]:
        if connection.vendor != "sqlite":
            yield
            return
        with self._cond:
            while self._busy or self._urgent_waiting:
                self._cond.wait()
            self._busy = True
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        with self._cond:
            self._busy = False
            self._cond.notify_all()


write_gate = WriteGate()
