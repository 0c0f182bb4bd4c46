from __future__ import annotations

from urllib.parse import urlencode

from django.utils import timezone
from django_tasks import task

from openline.providers.base import WebhookRequest
from openline.providers.sandbox.models import SandboxMessage
from openline.providers.sandbox.provider import UNDELIVERABLE_SUFFIX, phone_token

MAX_WAITS = 20


@task(queue_name="dispatch")
def carrier_deliver(provider_message_id: str, waited: int = 0) -> None:
    """The simulated carrier reports sent, then delivered (or undelivered), as a real
    carrier's status callbacks: the fields it would post to the number's status URL, checked
    and read by the sandbox adapter as the status webhook does (verify, parse_status), then
    applied by the same status service. Only the HTTP hop is left out: the carrier lives in
    this process."""
    from openline.messaging.models import Message
    from openline.messaging.services.dispatch import status_url
    from openline.messaging.services.status import message_status_apply
    from openline.providers.registry import get_provider

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
    number = sandbox.number
    provider = get_provider(number.provider)
    updates = []
    for status, code in (("sent", ""), (final, error)):
        fields = {"MessageId": provider_message_id, "Status": status}
        if code:
            fields["ErrorCode"] = code
        callback = WebhookRequest(
            url=status_url(number),
            params={name: [value] for name, value in fields.items()},
            headers={"x-sandbox-token": phone_token(number)},
            raw_body=urlencode(fields).encode(),
        )
        provider.verify(number, callback)
        updates += provider.parse_status(callback)
    message_status_apply(number=number, updates=updates)  # both in one transaction
    SandboxMessage.objects.filter(pk=sandbox.pk).update(status=final)
