"""The worker's task threads: the dispatch queue has a thread of its own, so a text goes
out at its rate however long another task (a broadcast runner's turn) takes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import wait_for
from openline.runtime.worker import DISPATCH_QUEUE, TaskWorker, task_workers


@pytest.fixture
def workers() -> Iterator[list[TaskWorker]]:
    threads = task_workers()
    for thread in threads:
        thread.start()
    yield threads
    for thread in threads:
        thread.stop()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)


@pytest.mark.django_db(transaction=True)
def test_a_text_goes_out_while_a_runner_turn_holds_the_other_task_thread(
    org: Any, alice: Any, sandbox_number: Any, monkeypatch: pytest.MonkeyPatch, workers: Any
) -> None:
    from openline.campaigns import services as campaigns
    from openline.campaigns.tasks import run_broadcast
    from openline.contacts.models import ConsentSource
    from openline.contacts.services.consent import consent_record_opt_in
    from openline.messaging.models import Message
    from openline.messaging.services.outbound import message_send
    from openline.providers.sandbox.models import SandboxMessage

    turn_started, turn_may_end, turn_ended = threading.Event(), threading.Event(), threading.Event()

    def busy_turn(**kwargs: Any) -> None:
        turn_started.set()
        turn_may_end.wait(30)
        turn_ended.set()

    monkeypatch.setattr(campaigns, "broadcast_run", busy_turn)
    consent_record_opt_in(
        organization_id=org.pk,
        phone="+12125550101",
        source=ConsentSource.STAFF,
        evidence="signed up at the front desk",
        actor_id=alice.pk,
    )
    try:
        run_broadcast.enqueue(1, None)
        wait_for(turn_started.is_set, 10, "the runner's turn to start")
        message = message_send(organization_id=org.pk, body="Your ride is here", to="+12125550101")
        sent = Message.objects.filter(pk=message.pk).exclude(provider_message_id="")
        wait_for(sent.exists, 10, "the carrier to take the text")
        assert not turn_ended.is_set()  # the turn held the other thread all along
        assert SandboxMessage.objects.filter(to="+12125550101").count() == 1
    finally:
        turn_may_end.set()


def test_the_dispatch_thread_takes_only_dispatch_tasks_and_the_other_all_the_rest() -> None:
    dispatch, rest = task_workers()
    assert (dispatch.worker.queue_names, dispatch.worker.excluded_queue_names) == (
        [DISPATCH_QUEUE],
        [],
    )
    assert rest.worker.process_all_queues
    assert rest.worker.excluded_queue_names == [DISPATCH_QUEUE]
