"""Task entry points: thin wrappers over services."""

from __future__ import annotations

from django_tasks import task


@task(queue_name="dispatch")
def dispatch_message(message_id: int) -> None:
    from openline.messaging.services.dispatch import message_dispatch

    message_dispatch(message_id=message_id)


@task()
def send_auto_replies(message_ids: list[int], opened_ids: list[int]) -> None:
    from openline.messaging.services.autoreply import auto_replies_send

    auto_replies_send(message_ids=message_ids, opened_ids=opened_ids)


@task(queue_name="dispatch")
def dispatch_call(call_id: int) -> None:
    from openline.messaging.services.calls import call_dispatch

    call_dispatch(call_id=call_id)


@task()
def read_answer(message_id: int) -> None:
    from openline.messaging.answers import answers_read

    answers_read(message_id=message_id)
