"""SQLite has one writer at a time. Writers take turns here instead of sleeping in SQLite's
busy handler (which backs off up to 100 ms and lets a writer in a tight loop win every
time), and webhook intake goes first: an acknowledgement waits on it, background
processing does not.

Two levels, because `openline run` writes from two processes (web and worker child):
threads of one process queue on a condition, and processes take an exclusive ``flock`` on
a small file next to the database. That file is also shared memory (``mmap``): the intake
writer thread sets a flag while it wants or holds the lock, and the intake publishes how
many webhooks wait for their answer. Background writers in any process wait while that flag
is set (up to MAX_YIELD_SECONDS, so they are never starved) before they queue. Webhooks in
flight alone do not hold them back: the event loop never waits for the lock (it journals
what it cannot write, see runtime.intake), so only the writer thread can be kept waiting.

On PostgreSQL writers do not exclude each other, so the gate lets everyone through."""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import OperationalError, connection

MAX_YIELD_SECONDS = 0.2
# Webhooks waiting for their answer from which the intake counts as busy: a few are
# normal traffic (background work goes on), more mean a burst (it waits).
BUSY_IN_FLIGHT = 4
# SQLite's own automatic checkpoint runs at 1,000 pages (about 4 MB).
WAL_CHECKPOINT_BYTES = 4 * 1024 * 1024
YIELD_POLL_SECONDS = 0.0005
# As long as SQLite's own busy timeout (settings.DATABASES): a writer never waits forever.
LOCK_TIMEOUT_SECONDS = 20.0


class _ProcessLock:
    """The cross-process part: an flock, and shared memory holding an 'intake writer is
    waiting' byte and the number of webhooks in flight (uint32 at offset 4)."""

    SIZE = 8

    def __init__(self, path: str) -> None:
        self.path = path
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        if os.fstat(fd).st_size < self.SIZE:
            os.ftruncate(fd, self.SIZE)
        self.fd = fd
        self.flag = mmap.mmap(fd, self.SIZE)

    def acquire(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def try_acquire(self) -> bool:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)

    def set_urgent(self, on: bool) -> None:
        self.flag[0] = 1 if on else 0

    def urgent(self) -> bool:
        return self.flag[0] == 1

    def set_in_flight(self, count: int) -> None:
        struct.pack_into("<I", self.flag, 4, max(0, count))

    def in_flight(self) -> int:
        return int(struct.unpack_from("<I", self.flag, 4)[0])

    def busy(self) -> bool:
        return self.flag[0] == 1 or self.in_flight() >= BUSY_IN_FLIGHT


class _NoProcessLock(_ProcessLock):
    def __init__(self) -> None:
        pass

    def acquire(self) -> None:
        pass

    def release(self) -> None:
        pass

    def set_urgent(self, on: bool) -> None:
        pass

    def urgent(self) -> bool:
        return False

    def set_in_flight(self, count: int) -> None:
        pass

    def busy(self) -> bool:
        return False


class WriteGate:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._busy = False
        self._urgent_waiting = 0
        self._process_lock: _ProcessLock | None = None
        self._owner: int | None = None
        self._resolved = False
        self._no_autocheckpoint: Any = None

    def _shared(self) -> _ProcessLock | None:
        """The database's process lock, opened on first use (the name is final by then,
        also in tests, where the test database replaces it before any test runs)."""
        if not self._resolved:
            with self._cond:
                if not self._resolved:
                    name = str(settings.DATABASES["default"]["NAME"])
                    sqlite = connection.vendor == "sqlite"
                    # An in-memory database lives in one process.
                    if sqlite and not name.startswith((":memory:", "file:")):
                        self._process_lock = _ProcessLock(f"{name}-gate")
                    self._resolved = True
        return self._process_lock

    def intake_busy(self) -> bool:
        """Whether webhooks wait for an answer or the intake writer wants the database,
        in any process."""
        shared = self._shared()
        return shared is not None and shared.busy()

    def in_flight(self) -> int:
        """Webhooks waiting for their answer as the intake last published it (0 unless
        writers share a lock file)."""
        shared = self._shared()
        return shared.in_flight() if shared is not None else 0

    def note_in_flight(self, count: int) -> None:
        """The intake (event loop) says how many webhooks wait for their answer."""
        shared = self._shared()
        if shared is not None:
            shared.set_in_flight(count)

    def held_here(self) -> bool:
        """Whether this thread holds the write lock (its transaction is already covered)."""
        return self._owner == threading.get_ident()

    @contextmanager
    def urgent(self) -> Iterator[None]:
        """The intake writer's turn: before any background writer that waits."""
        if connection.vendor != "sqlite" or self.held_here():
            yield
            return
        shared = self._shared() or _NoProcessLock()
        shared.set_urgent(True)
        with self._cond:
            self._urgent_waiting += 1
            try:
                self._wait_until(lambda: not self._busy)
            finally:
                self._urgent_waiting -= 1
            self._take()
        shared.acquire()
        try:
            yield
        finally:
            shared.release()
            shared.set_urgent(False)
            self._release()

    def enter_background(self) -> Callable[[], None] | None:
        """Take the write lock for a background transaction (``runtime.sqlite`` calls this
        at BEGIN, so every writer takes its turn without knowing). Returns the function that
        gives it back, or None when this thread already holds it."""
        if self.held_here():
            return None
        shared = self._shared() or _NoProcessLock()
        deadline = time.monotonic() + MAX_YIELD_SECONDS
        while shared.urgent() and time.monotonic() < deadline:
            time.sleep(YIELD_POLL_SECONDS)
        with self._cond:
            self._wait_until(lambda: not (self._busy or self._urgent_waiting))
            self._take()
        shared.acquire()
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                shared.release()
                self._release()

        return release

    @contextmanager
    def background(self) -> Iterator[None]:
        """Hold the write lock around a block (tests, and code that is not a transaction)."""
        release = self.enter_background() if connection.vendor == "sqlite" else None
        try:
            yield
        finally:
            if release is not None:
                release()

    def _wait_until(self, ready: Callable[[], bool]) -> None:
        """Wait on the condition (held) until ``ready``; a lock held longer than SQLite's
        own busy timeout fails the same way SQLite would, instead of hanging."""
        if not self._cond.wait_for(ready, timeout=LOCK_TIMEOUT_SECONDS):
            raise OperationalError("database is locked (waited for the write gate)")

    def _take(self) -> None:
        self._busy = True
        self._owner = threading.get_ident()

    def shared_file(self) -> bool:
        """Whether writers share the lock file (SQLite in a file)."""
        return self._shared() is not None

    def try_now(self) -> bool:
        """Take the write lock only if nobody holds or wants it this instant (SQLite on a
        file only): for the event loop, which must never wait. ``release_now`` gives it
        back."""
        shared = self._shared()
        if shared is None:
            return False
        with self._cond:
            if self._busy or self._urgent_waiting:
                return False
            self._take()
        if not shared.try_acquire():
            self._release()
            return False
        return True

    def release_now(self) -> None:
        shared = self._shared()
        assert shared is not None
        shared.release()
        self._release()

    def wal_needs_checkpoint(self) -> bool:
        """Whether the WAL has grown so large that the intake should checkpoint it itself
        (background processing normally does)."""
        try:
            return os.stat(f"{self.database_path()}-wal").st_size > WAL_CHECKPOINT_BYTES * 8
        except OSError:
            return False

    def database_path(self) -> str:
        return str(settings.DATABASES["default"]["NAME"])

    def urgent_connection_setup(self) -> None:
        """The intake writer's connection never checkpoints the WAL itself: copying pages
        into the database file would stall acknowledgements. Background processing does it
        (``checkpoint``), off the write lock, on the other core."""
        if connection.vendor != "sqlite":
            return
        connection.ensure_connection()
        if self._no_autocheckpoint is not connection.connection:
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA wal_autocheckpoint=0")
            self._no_autocheckpoint = connection.connection
        if self.wal_needs_checkpoint():  # nobody has for a long while: do it here after all
            checkpoint(force=True)

    def _release(self) -> None:
        with self._cond:
            self._busy = False
            self._owner = None
            self._cond.notify_all()


write_gate = WriteGate()


def checkpoint(*, force: bool = False) -> None:
    """Copy the WAL into the database file when it has grown (PASSIVE: it waits for
    neither readers nor writers)."""
    if connection.vendor != "sqlite":
        return
    if not force:
        try:
            if (
                os.stat(f"{settings.DATABASES['default']['NAME']}-wal").st_size
                < WAL_CHECKPOINT_BYTES
            ):
                return
        except OSError:
            return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
