"""The sandbox carrier reports again when its first report was lost (the worker died while
reporting): asked for the status of a text it still holds as queued, it queues the report
again, so reconciliation settles the text instead of leaving it "sending" for ever."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from openline.messaging.models import MessageStatus
from openline.messaging.services.outbound import message_send
from openline.messaging.services.reconcile import messages_reconcile
from openline.runtime.worker import run_ready_tasks


def test_a_lost_carrier_report_is_made_again_when_reconciliation_asks(
    org: Any, sandbox_number: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        message = message_send(organization_id=org.pk, to="+12025550177", body="Hello")
    with django_capture_on_commit_callbacks(execute=True):
        run_ready_tasks(limit=1)  # the dispatch: the carrier takes it
    message.refresh_from_db()
    assert message.status == MessageStatus.SENDING and message.provider_message_id
    lost = DBTaskResult.objects.ready().get(task_path__endswith="carrier_deliver")
    lost.claim("a-worker-that-died")  # left RUNNING for ever
    with django_capture_on_commit_callbacks(execute=True):
        messages_reconcile(now=timezone.now() + timedelta(days=1))
    with django_capture_on_commit_callbacks(execute=True):
        run_ready_tasks(include_deferred=True)
    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED


def test_a_text_whose_dispatch_died_with_its_worker_is_dispatched_again(
    org: Any, sandbox_number: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """The queue never runs a task again once a worker claimed it: a dispatch left RUNNING
    by a killed worker must not hold its text back for ever."""
    with django_capture_on_commit_callbacks(execute=True):
        message = message_send(organization_id=org.pk, to="+12025550178", body="Hello")
    DBTaskResult.objects.ready().get(task_path__endswith="dispatch_message").claim("dead")
    with django_capture_on_commit_callbacks(execute=True):
        assert messages_reconcile(now=timezone.now()) == 0  # a live worker may hold it
        assert messages_reconcile(now=timezone.now() + timedelta(days=1)) == 1
    with django_capture_on_commit_callbacks(execute=True):
        run_ready_tasks(include_deferred=True)
    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED
