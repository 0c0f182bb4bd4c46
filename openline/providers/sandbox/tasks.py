from __future__ import annotations

from django.utils import timezone
from django_tasks import task

from openline.providers.base import StatusUpdate
from openline.providers.sandbox.models import SandboxMessage
from openline.providers.sandbox.provider import UNDELIVERABLE_SUFFIX

MAX_WAITS = 20


@task(queue_name="dispatch")
def carrier_deliver(provider_message_id: str, waited: int = 0) -> None:
    """The simulated carrier reports sent, then delivered (or undelivered), through the
    same status service a real provider's callback reaches."""
    from openline.messaging.models import Message
    from openline.messaging.services.status import message_status_apply

    sandbox = SandboxMessage.objects.select_related("number").get(
        provider_message_id=provider_message_id
    )
    if not Message.objects.filter(provider_message_id=provider_message_id).exists():
        # Dispatch stores the id right after send() returns; wait for it briefly.
        if waited < MAX_WAITS:
            carrier_deliver.using(
                run_after=timezone.now() + timezone.timedelta(milliseconds=100)
            ).enqueue(provider_message_id, waited + 1)
        return
    final = "undelivered" if sandbox.to.endswith(UNDELIVERABLE_SUFFIX) else "delivered"
    error = "30006" if final == "undelivered" else ""
    updates = [
        StatusUpdate(provider_message_id=provider_message_id, status="sent"),
        StatusUpdate(provider_message_id=provider_message_id, status=final, error_code=error),
    ]
    message_status_apply(number=sandbox.number, updates=updates)
    SandboxMessage.objects.filter(pk=sandbox.pk).update(status=final)
