"""The task worker used inside `openline run` (a thread) and by `openline worker`.

It runs django-tasks-db tasks and wakes as soon as a task is enqueued in this process
(task_enqueued signal) instead of waiting for the next poll."""

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

_wake = threading.Event()


def _on_enqueued(**kwargs: object) -> None:
    _wake.set()
    bridge.wake(bridge.WAKE_TASK)


task_enqueued.connect(_on_enqueued, dispatch_uid="openline-worker-wake")


def _make_worker(worker_id: str) -> Worker:
    return Worker(
        queue_names=["*"],
        interval=0,
        batch=False,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id=worker_id,
        excluded_queue_names=[],
    )


def run_one(worker: Worker, *, include_deferred: bool = False) -> bool:
    """Claim and run one ready task. False if none was ready. ``include_deferred`` also
    runs tasks whose run_after lies in the future (tests of retries and backoff)."""
    if include_deferred:
        tasks = DBTaskResult.objects.filter(status="READY").order_by("run_after", "enqueued_at")
    else:
        tasks = DBTaskResult.objects.ready()
    tasks = tasks.filter(backend_name="default")
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
    POLL_SECONDS = 0.5

    def __init__(self, name: str = "openline-tasks") -> None:
        super().__init__(name=name, daemon=True)
        self.stopping = threading.Event()
        self.worker = _make_worker(name)

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                while not self.stopping.is_set() and run_one(self.worker):
                    pass
            except Exception:
                logger.exception("task worker loop error")
            finally:
                close_old_connections()
            _wake.wait(self.POLL_SECONDS)
            _wake.clear()

    def stop(self) -> None:
        self.stopping.set()
        _wake.set()
