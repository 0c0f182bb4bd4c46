"""`openline run` on two cores: the web process serves HTTP and WebSockets; a worker child
process runs inbound processing, tasks and the scheduler. Background work then never
competes with acknowledgements and live updates for one interpreter.

One AF_UNIX SEQPACKET socket pair joins them (message boundaries, in order, nothing lost):

- web -> worker: one-byte wake-ups, ``i`` (inbound events were written) and ``t`` (a task
  was enqueued), so the child starts at once instead of at its next poll. A wake-up that
  finds the socket full is dropped: one already waiting does the same job. A page of
  shared memory holds a byte per kind that the child sets while it is working through
  that kind of work (and clears before it looks one last time): no wake-up is sent then.
  Under load that saves a send, and a wake-up of the child, per intake commit.
- worker -> web: real-time events as JSON, those of one commit in one message (a list of
  [group, envelope] pairs), fanned out by the web process (the in-memory channel layer
  and the console hub live there).

If the worker dies, the web process starts another one after a short pause; if the web
process goes away, the worker sees the socket close and stops."""

from __future__ import annotations

import contextlib
import json
import logging
import mmap
import os
import signal
import socket
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openline.core.realtime import Envelope

logger = logging.getLogger(__name__)

WAKE_INBOUND, WAKE_TASK = b"i", b"t"
# Where each kind's "working on it" byte sits in the shared page.
_BUSY_OFFSET = {WAKE_INBOUND: 0, WAKE_TASK: 1}
_BUSY_SIZE = 8
MAX_MESSAGE = 64 * 1024
RESTART_PAUSE_SECONDS = 1.0


class WorkerChild:
    """The web process's side: starts, watches and stops the worker child."""

    def __init__(self) -> None:
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._busy: mmap.mmap | None = None

    def start(self) -> None:
        self._spawn()
        self._thread = threading.Thread(
            target=self._supervise, name="openline-worker-link", daemon=True
        )
        self._thread.start()

    def _spawn(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setblocking(True)
        cmd = [
            sys.executable,
            "-m",
            "openline.runtime.cli",
            "worker",
            "--attached",
            str(theirs.fileno()),
        ]
        fds = [theirs.fileno()]
        busy_fd = _busy_page()
        if busy_fd is not None:  # a new child starts with a new page: all clear
            cmd += ["--busy-page", str(busy_fd)]
            fds.append(busy_fd)
            self._busy = mmap.mmap(busy_fd, _BUSY_SIZE)
        proc = subprocess.Popen(cmd, pass_fds=fds)  # noqa: S603 (our own argv)
        theirs.close()
        if busy_fd is not None:
            os.close(busy_fd)
        self._sock, self._proc = ours, proc

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            sock, proc = self._sock, self._proc
            assert sock is not None and proc is not None
            self._read_events(sock)  # returns when the child closes its end
            code = proc.wait()
            sock.close()
            if self._stopping.is_set():
                return
            logger.error("the worker process stopped (exit code %s); starting another", code)
            if self._stopping.wait(RESTART_PAUSE_SECONDS):
                return
            self._spawn()
            wake(WAKE_INBOUND)  # whatever arrived meanwhile is waiting in the database
            wake(WAKE_TASK)

    def _read_events(self, sock: socket.socket) -> None:
        from openline.core import realtime

        while True:
            try:
                data = sock.recv(MAX_MESSAGE)
            except OSError:
                return
            if not data:
                return
            try:
                realtime.fan_out([(group, envelope) for group, envelope in json.loads(data)])
            except Exception:
                logger.exception("bad event from the worker process")

    def wake(self, kind: bytes) -> None:
        busy = self._busy
        if busy is not None and busy[_BUSY_OFFSET[kind]]:
            return  # it is working on this kind and looks again before it sleeps
        sock = self._sock
        if sock is None:
            return
        # Full: a wake-up is already waiting. Closed: restarting, and it wakes on start.
        with contextlib.suppress(OSError):
            sock.send(kind, socket.MSG_DONTWAIT)

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._thread is not None:
            self._thread.join(timeout=2)


_child: WorkerChild | None = None


def start_worker_child() -> WorkerChild:
    global _child
    _child = WorkerChild()
    _child.start()
    return _child


def wake(kind: bytes) -> None:
    """Tell the worker child there is work (no-op unless this process started one)."""
    if _child is not None:
        _child.wake(kind)


def _busy_page() -> int | None:
    """A file descriptor of a fresh shared page for the busy bytes (None where the system
    has no memfd: the web process then always sends its wake-ups)."""
    if not hasattr(os, "memfd_create"):
        return None
    fd = os.memfd_create("openline-worker-busy")
    os.ftruncate(fd, _BUSY_SIZE)
    return fd


# --- the worker child's side ------------------------------------------------------------

_parent: socket.socket | None = None
_busy: mmap.mmap | None = None


def attach_to_parent(
    fd: int, on_wake: dict[bytes, Any], on_close: Any, *, busy_fd: int | None = None
) -> None:
    """Called in the worker child: wake-ups set the given events, real-time events go to
    the web process, and ``on_close`` runs when the web process goes away."""
    global _parent, _busy
    from openline.core import realtime

    _parent = socket.socket(fileno=fd)
    if busy_fd is not None:
        _busy = mmap.mmap(busy_fd, _BUSY_SIZE)
        os.close(busy_fd)
    realtime.forward_to(_send_events)

    def listen() -> None:
        assert _parent is not None
        while True:
            try:
                data = _parent.recv(MAX_MESSAGE)
            except OSError:
                data = b""
            if not data:
                on_close()
                return
            event = on_wake.get(data[:1])
            if event is not None:
                event.set()

    threading.Thread(target=listen, name="openline-parent-link", daemon=True).start()


def set_busy(kind: bytes, on: bool) -> None:
    """In the worker child: say whether it is working through ``kind`` of work, so the web
    process need not wake it. Whoever sets it off must look for work once more after:
    what was written while it was on sent no wake-up."""
    if _busy is not None:
        _busy[_BUSY_OFFSET[kind]] = 1 if on else 0


def _send_events(envelopes: list[Envelope]) -> None:
    """Forward one commit's events: one message, or as few as fit in MAX_MESSAGE each."""
    chunk: list[bytes] = []
    size = 2
    for group, envelope in envelopes:
        data = json.dumps([group, envelope], separators=(",", ":")).encode()
        if len(data) + 2 > MAX_MESSAGE:
            logger.error("real-time event not forwarded: %s", envelope["event"].get("type"))
            continue
        if chunk and size + len(data) + 1 > MAX_MESSAGE:
            _send_message(chunk)
            chunk, size = [], 2
        chunk.append(data)
        size += len(data) + 1
    if chunk:
        _send_message(chunk)


def _send_message(items: list[bytes]) -> None:
    if _parent is None:
        logger.error("real-time events not forwarded: no web process")
        return
    try:
        _parent.send(b"[" + b",".join(items) + b"]")  # whole or not at all, from any thread
    except OSError:
        logger.warning("real-time events lost: the web process is gone")
