"""The task workers used inside `openline run` (threads) and by `openline worker`.

They run django-tasks-db tasks and wake as soon as a task is enqueued in this process
(task_enqueued signal) instead of waiting for the next poll. ``task_workers`` gives the
dispatch queue (texts handed to their carrier, each at its sender's rate) a thread of its
own: a broadcast runner's turn or any other long task never holds a text back from its
rate slot, and a slot a text sleeps for holds up no other kind of work (bench/README.md,
"make bench-broadcast")."""

from __future__ import annotations

import logging
import threading

from django.db import OperationalError, close_old_connections
from django_tasks.signals import task_enqueued
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult
from django_tasks_db.utils import exclusive_transaction, is_locked_database_exception

from openline.runtime import bridge

logger = logging.getLogger(__name__)

# The queue of message_dispatch (messaging.tasks): it gets its own thread.
DISPATCH_QUEUE = "dispatch"


class _Wake:
    """Set by every enqueue in this process (and by the web process, through the bridge);
    each task thread waits on an event of its own, so every one of them wakes."""

    def __init__(self) -> None:
        self._events: list[threading.Event] = []
        self._lock = threading.Lock()

    def event(self) -> threading.Event:
        event = threading.Event()
        with self._lock:
            self._events.append(event)
        return event

    def forget(self, event: threading.Event) -> None:
        with self._lock:
            self._events.remove(event)

    def set(self) -> None:
        with self._lock:
            events = list(self._events)
        for event in events:
            event.set()


_wake = _Wake()


def _on_enqueued(**kwargs: object) -> None:
    _wake.set()
    bridge.wake(bridge.WAKE_TASK)


task_enqueued.connect(_on_enqueued, dispatch_uid="openline-worker-wake")


def _make_worker(
    worker_id: str, *, queues: tuple[str, ...] = ("*",), exclude: tuple[str, ...] = ()
) -> Worker:
    return Worker(
        queue_names=list(queues),
        interval=0,
        batch=False,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id=worker_id,
        excluded_queue_names=list(exclude),
    )


def run_one(worker: Worker, *, include_deferred: bool = False) -> bool:
    """Claim and run one ready task. False if none was ready. ``include_deferred`` also
    runs tasks whose run_after lies in the future (tests of retries and backoff)."""
    if include_deferred:
        tasks = DBTaskResult.objects.filter(status="READY").order_by("run_after", "enqueued_at")
    else:
        tasks = DBTaskResult.objects.ready()
    tasks = tasks.filter(backend_name="default")
    if not worker.process_all_queues:
        tasks = tasks.filter(queue_name__in=worker.queue_names)
    if worker.excluded_queue_names:
        tasks = tasks.exclude(queue_name__in=worker.excluded_queue_names)
    try:
        with exclusive_transaction(tasks.db):
            result = tasks.get_locked()
            if result is not None:
                result.claim(worker.worker_id)
    except OperationalError as exc:
        if is_locked_database_exception(exc):
            return False
        raise
    if result is None:
        return False
    worker.run_task(result)
    return True


def run_ready_tasks(limit: int = 1000, *, include_deferred: bool = False) -> int:
    """Run every task that is ready now (tests and management use this)."""
    worker = _make_worker("inline")
    count = 0
    while count < limit and run_one(worker, include_deferred=include_deferred):
        count += 1
    return count


class TaskWorker(threading.Thread):
    """One task thread: every queue, or only ``queues``, or all but ``exclude``."""

    POLL_SECONDS = 0.5

    def __init__(
        self,
        name: str = "openline-tasks",
        *,
        queues: tuple[str, ...] = ("*",),
        exclude: tuple[str, ...] = (),
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.stopping = threading.Event()
        self.worker = _make_worker(name, queues=queues, exclude=exclude)
        self._wake = _wake.event()

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                try:
                    while not self.stopping.is_set() and run_one(self.worker):
                        pass
                except Exception:
                    logger.exception("task worker loop error")
                finally:
                    close_old_connections()
                self._wake.wait(self.POLL_SECONDS)
                self._wake.clear()
        finally:
            _wake.forget(self._wake)

    def stop(self) -> None:
        self.stopping.set()
        self._wake.set()


def task_workers() -> list[TaskWorker]:
    """The task threads of a worker: one for the dispatch queue, one for every other."""
    return [
        TaskWorker("openline-dispatch", queues=(DISPATCH_QUEUE,)),
        TaskWorker("openline-tasks", exclude=(DISPATCH_QUEUE,)),
    ]
