"""Task entry points: thin wrappers over services."""

from __future__ import annotations

from django_tasks import task


@task(queue_name="dispatch")
def dispatch_message(message_id: int) -> None:
    from openline.messaging.services.dispatch import message_dispatch

    message_dispatch(message_id=message_id)


@task(queue_name="inbound")
def process_inbound(event_id: int) -> None:
    from openline.messaging.services.inbound import inbound_process

    inbound_process(event_id=event_id)
