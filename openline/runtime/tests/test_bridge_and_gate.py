"""The pieces that let `openline run` use two processes: the socket link between the web
process and its worker child, and the SQLite write gate shared across processes."""

from __future__ import annotations

import json
import mmap
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from openline.core import realtime
from openline.runtime import bridge
from openline.runtime import gate as dbgate


@pytest.fixture
def link() -> Any:
    web, worker = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    inbound, task, closed = threading.Event(), threading.Event(), threading.Event()
    page = bridge._busy_page()
    assert page is not None
    bridge.attach_to_parent(
        os.dup(worker.fileno()),
        {bridge.WAKE_INBOUND: inbound, bridge.WAKE_TASK: task},
        on_close=closed.set,
        busy_fd=os.dup(page),
    )
    worker.close()
    try:
        yield {"web": web, "inbound": inbound, "task": task, "closed": closed, "page": page}
    finally:
        os.close(page)
        bridge._busy = None
        realtime.forward_to(None)
        if bridge._parent is not None:
            bridge._parent.shutdown(socket.SHUT_RDWR)
            bridge._parent.close()
        bridge._parent = None
        web.close()


def test_wake_ups_reach_the_worker_and_events_reach_the_web_process(link: Any) -> None:
    web = link["web"]
    child = bridge.WorkerChild()
    child._sock = web  # the web process's end, as _spawn leaves it
    child.wake(bridge.WAKE_TASK)
    assert link["task"].wait(2) and not link["inbound"].is_set()
    child.wake(bridge.WAKE_INBOUND)
    assert link["inbound"].wait(2)

    # In the worker, a committed event goes over the link instead of to a channel layer.
    event = {"organization_id": 7, "type": "message.created", "conversation_id": 3}
    realtime._send([("org-7", {"type": "openline.event", "event": event})])
    received = json.loads(web.recv(bridge.MAX_MESSAGE))
    assert received == [["org-7", {"type": "openline.event", "event": event}]]

    # The events of one commit travel in one message, split only where one would be too big.
    body = "x" * (bridge.MAX_MESSAGE // 3)
    many = [("org-7", {"type": "openline.event", "event": {"n": n, "b": body}}) for n in range(4)]
    realtime._send(many[:2])
    assert [e["event"]["n"] for _, e in json.loads(web.recv(bridge.MAX_MESSAGE))] == [0, 1]
    realtime._send(many)
    parts = [json.loads(web.recv(bridge.MAX_MESSAGE)) for _ in range(2)]
    assert [[e["event"]["n"] for _, e in part] for part in parts] == [[0, 1], [2, 3]]

    # The web process hands what it reads to its own fan-out.
    captured: list[dict[str, Any]] = []
    realtime._capture = captured
    reader = threading.Thread(target=child._read_events, args=(web,))
    try:
        reader.start()
        event = {"organization_id": 7, "type": "message.status", "message_id": 9}
        realtime._send([("org-7", {"type": "openline.event", "event": event})])
        deadline = time.monotonic() + 2
        while not captured and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        realtime._capture = None
        bridge._parent.shutdown(socket.SHUT_RDWR)  # the worker end goes: the reader returns
        reader.join(2)
    assert captured == [{"organization_id": 7, "type": "message.status", "message_id": 9}]
    assert not reader.is_alive()


def test_no_wake_up_is_sent_for_work_the_worker_is_already_working_through(link: Any) -> None:
    child = bridge.WorkerChild()
    child._sock = link["web"]
    child._busy = mmap.mmap(link["page"], bridge._BUSY_SIZE)  # the web process's view

    bridge.set_busy(bridge.WAKE_INBOUND, True)  # in the worker
    child.wake(bridge.WAKE_INBOUND)
    child.wake(bridge.WAKE_TASK)  # another kind still goes
    assert link["task"].wait(2)
    assert not link["inbound"].wait(0.2)

    bridge.set_busy(bridge.WAKE_INBOUND, False)
    child.wake(bridge.WAKE_INBOUND)
    assert link["inbound"].wait(2)


def test_the_worker_stops_when_the_web_process_goes_away(link: Any) -> None:
    link["web"].close()
    assert link["closed"].wait(2)


def test_a_wake_up_to_a_full_or_closed_link_is_dropped_not_raised() -> None:
    web, worker = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    child = bridge.WorkerChild()
    child._sock = web
    for _ in range(10_000):  # far more than the socket buffer holds
        child.wake(bridge.WAKE_INBOUND)
    worker.close()
    child.wake(bridge.WAKE_INBOUND)
    web.close()
    child.wake(bridge.WAKE_INBOUND)


def test_the_process_lock_excludes_another_process_and_shares_its_flags(tmp_path: Path) -> None:
    path = tmp_path / "db-gate"
    ours = dbgate._ProcessLock(str(path))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            f"fd = os.open({str(path)!r}, os.O_RDWR)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "time.sleep(0.5)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        ours.acquire()
        waited = time.monotonic() - started
        ours.release()
    finally:
        holder.wait(5)
    assert waited >= 0.3  # blocked until the other process let go

    theirs = dbgate._ProcessLock(str(path))  # another process's view of the same memory
    assert not theirs.busy()
    ours.set_urgent(True)
    assert theirs.urgent() and theirs.busy()
    ours.set_urgent(False)
    ours.set_in_flight(dbgate.BUSY_IN_FLIGHT)
    assert theirs.busy() and not theirs.urgent()
    ours.set_in_flight(0)
    assert not theirs.busy()


@pytest.mark.django_db(transaction=True)  # a test's own transaction would hold the gate
def test_background_writers_wait_while_the_intake_writer_waits_for_the_lock() -> None:
    if connection.vendor != "sqlite":
        # PostgreSQL writers do not exclude each other: no shared lock, nobody waits.
        assert dbgate.write_gate._shared() is None
        started = time.monotonic()
        with dbgate.write_gate.background(), dbgate.write_gate.urgent():
            assert time.monotonic() - started < 0.05
        return
    shared = dbgate.write_gate._shared()
    assert shared is not None
    other = dbgate._ProcessLock(shared.path)  # the web process, as the worker sees it

    # Webhooks in flight alone: the event loop never waits for the lock, so nobody yields.
    other.set_in_flight(dbgate.BUSY_IN_FLIGHT + 10)
    try:
        started = time.monotonic()
        with dbgate.write_gate.background():
            assert time.monotonic() - started < 0.05
    finally:
        other.set_in_flight(0)

    # The intake's writer thread wants the lock: background writers let it go first.
    other.set_urgent(True)
    threading.Timer(0.05, other.set_urgent, args=(False,)).start()
    started = time.monotonic()
    with dbgate.write_gate.background():
        waited = time.monotonic() - started
    assert 0.04 <= waited < dbgate.MAX_YIELD_SECONDS

    # Never clears: the background writer is not starved.
    other.set_urgent(True)
    try:
        started = time.monotonic()
        with dbgate.write_gate.background():
            waited = time.monotonic() - started
    finally:
        other.set_urgent(False)
    assert dbgate.MAX_YIELD_SECONDS * 0.9 <= waited < dbgate.MAX_YIELD_SECONDS + 1


@pytest.mark.django_db(transaction=True)  # a test's own transaction would hold the gate
def test_the_event_loop_takes_the_write_lock_only_when_nobody_holds_it() -> None:
    gate = dbgate.write_gate
    if connection.vendor != "sqlite":
        assert not gate.shared_file() and not gate.try_now()  # it never writes inline there
        return
    shared = gate._shared()
    assert shared is not None
    assert gate.try_now()
    gate.release_now()

    other = dbgate._ProcessLock(shared.path)  # another process holding the lock file
    other.acquire()
    try:
        assert not gate.try_now()
        assert not gate._busy  # a refusal leaves nothing taken in this process
    finally:
        other.release()

    with gate.background():  # a thread of this process holds it
        assert not gate.try_now()
    assert gate.try_now()
    gate.release_now()


@pytest.mark.django_db(transaction=True)
def test_a_plain_transaction_frees_the_write_lock_at_commit_before_its_other_callbacks() -> None:
    """Domain code writes with plain ``transaction.atomic()``: the SQLite backend
    (runtime.sqlite) takes the gate at BEGIN and gives it back at COMMIT, before the
    on-commit work (publishing events) runs."""
    from django.db import transaction

    seen: list[bool] = []
    with transaction.atomic():
        transaction.on_commit(lambda: seen.append(_free_now()))
        assert not _free_now() or not dbgate.write_gate.shared_file()
    assert seen == [True]
    assert _free_now()

    # Rolled back: the callbacks never run, and the lock is given back all the same.
    with pytest.raises(RuntimeError), transaction.atomic():
        raise RuntimeError("rolled back")
    assert _free_now()


@pytest.mark.django_db(transaction=True)
def test_a_plain_transaction_waits_for_the_intake_writer() -> None:
    """A writer that does not know about the gate (any service's ``transaction.atomic()``
    in another thread) begins only after the intake writer's turn is over."""
    from django.db import connection as db
    from django.db import transaction

    if connection.vendor != "sqlite":
        return _runs_without_waiting()
    order: list[str] = []
    holding, go = threading.Event(), threading.Event()

    def intake_writer() -> None:
        try:
            with dbgate.write_gate.urgent(), transaction.atomic():
                holding.set()
                go.wait(5)
                order.append("intake")
        finally:
            db.close()

    def service() -> None:
        try:
            with transaction.atomic():
                order.append("service")
        finally:
            db.close()

    first = threading.Thread(target=intake_writer)
    first.start()
    assert holding.wait(5)
    second = threading.Thread(target=service)
    second.start()
    time.sleep(0.1)
    assert order == []  # the service's BEGIN waits at the gate
    go.set()
    first.join(5)
    second.join(5)
    assert order == ["intake", "service"]
    assert _free_now()


def _runs_without_waiting() -> None:
    """PostgreSQL: writers do not exclude each other; the gate takes nothing."""
    from django.db import transaction

    started = time.monotonic()
    with dbgate.write_gate.urgent(), transaction.atomic():
        pass
    assert time.monotonic() - started < 0.05
    assert not dbgate.write_gate.held_here()


@pytest.mark.django_db(transaction=True)
def test_a_transaction_inside_the_intake_writers_turn_does_not_queue_again() -> None:
    from django.db import transaction

    if connection.vendor != "sqlite":
        return _runs_without_waiting()
    with dbgate.write_gate.urgent():
        assert dbgate.write_gate.held_here()
        with transaction.atomic():  # would wait for itself if it queued
            pass
        assert dbgate.write_gate.held_here()  # the inner commit does not give it back
    assert not dbgate.write_gate.held_here()
    assert _free_now()


@pytest.mark.django_db(transaction=True)
def test_a_writer_that_cannot_get_its_turn_fails_like_a_locked_database(monkeypatch) -> None:
    """Held elsewhere for longer than SQLite's own busy timeout: the same error SQLite
    would raise, never a thread waiting forever."""
    from django.db import OperationalError, transaction
    from django.db import connection as db

    if connection.vendor != "sqlite":
        return _runs_without_waiting()
    monkeypatch.setattr(dbgate, "LOCK_TIMEOUT_SECONDS", 0.2)
    holding, go = threading.Event(), threading.Event()

    def holder() -> None:
        try:
            with transaction.atomic():
                holding.set()
                go.wait(5)
        finally:
            db.close()

    thread = threading.Thread(target=holder)
    thread.start()
    assert holding.wait(5)
    try:
        with pytest.raises(OperationalError, match="locked"), transaction.atomic():
            pass
    finally:
        go.set()
        thread.join(5)
    assert _free_now()


def _free_now() -> bool:
    """True if a writer could take the lock at once (always on PostgreSQL: no lock)."""
    if not dbgate.write_gate.shared_file():
        return True
    if dbgate.write_gate.try_now():
        dbgate.write_gate.release_now()
        return True
    return False


@pytest.mark.django_db(transaction=True)
def test_a_write_outside_a_transaction_waits_its_turn_at_the_gate(org: Any) -> None:
    """A lone ``update()`` (or a task enqueued after commit) is a transaction of one
    statement: on SQLite it waits at the gate while another writer holds it, instead of
    polling in SQLite's busy handler; reads do not wait."""
    from django.db import connection as db

    from openline.core.models import Organization

    if connection.vendor != "sqlite":
        return _runs_without_waiting()
    order: list[str] = []
    holding, go = threading.Event(), threading.Event()

    def writer() -> None:
        with dbgate.write_gate.background():
            holding.set()
            go.wait(5)
            order.append("writer")

    def lone_update() -> None:
        try:
            Organization.objects.filter(pk=org.pk).update(name="Riverside")
            order.append("update")
        finally:
            db.close()

    first = threading.Thread(target=writer)
    first.start()
    assert holding.wait(5)
    assert Organization.objects.filter(pk=org.pk).exists()  # a read goes on
    second = threading.Thread(target=lone_update)
    second.start()
    time.sleep(0.1)
    assert order == []  # the update waits at the gate
    go.set()
    first.join(5)
    second.join(5)
    assert order == ["writer", "update"]
    assert Organization.objects.get(pk=org.pk).name == "Riverside"
    assert _free_now()
