"""Task entry points: thin wrappers over services."""

from __future__ import annotations

from django_tasks import task


@task()
def send_auto_replies(message_ids: list[int], opened_ids: list[int]) -> None:
    from openline.availability.services.autoreply import auto_replies_send

    auto_replies_send(message_ids=message_ids, opened_ids=opened_ids)
