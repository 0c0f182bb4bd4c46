"""Task entry points: thin wrappers over services."""

from __future__ import annotations

from django_tasks import task


@task(queue_name="dispatch")
def dispatch_message(message_id: int) -> None:
    from openline.messaging.services.dispatch import message_dispatch

    message_dispatch(message_id=message_id)
