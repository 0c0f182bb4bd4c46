from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from django.utils import timezone
from django_tasks import task

from openline.providers.base import StatusUpdate, WebhookRequest
from openline.providers.models import Number
from openline.providers.registry import get_provider, status_receive
from openline.providers.sandbox.models import SandboxMessage
from openline.providers.sandbox.provider import UNDELIVERABLE_SUFFIX, phone_token
from openline.providers.services import number_webhook_urls

MAX_WAITS = 20


# Not on the dispatch queue: a real carrier's reports come in through the status webhook,
# and take none of the dispatch thread's time (runtime.worker).
@task()
def carrier_deliver(provider_message_id: str, waited: int = 0) -> None:
    """The simulated carrier reports sent, then delivered (or undelivered), as a real
    carrier's status callbacks: the fields it would post to the number's status URL, checked
    and read by the sandbox adapter as the status webhook does (verify, parse_status), then
    applied by the same status service (the registry's status receiver). Only the HTTP hop is
    left out: the carrier lives in this process."""
    sandbox = SandboxMessage.objects.select_related("number").get(
        provider_message_id=provider_message_id
    )
    final = "undelivered" if sandbox.to.endswith(UNDELIVERABLE_SUFFIX) else "delivered"
    updates = _status_reports(sandbox.number, provider_message_id, final=final)
    if not status_receive(number=sandbox.number, updates=updates):  # both in one transaction
        # Dispatch stores the id right after send() returns; wait for it briefly.
        if waited < MAX_WAITS:
            later = timezone.now() + timedelta(milliseconds=100)
            carrier_deliver.using(run_after=later).enqueue(provider_message_id, waited + 1)
        return
    SandboxMessage.objects.filter(pk=sandbox.pk).update(status=final)


def _status_reports(number: Number, provider_message_id: str, *, final: str) -> list[StatusUpdate]:
    """The two callbacks, as the sandbox adapter reads them from the status webhook."""
    provider = get_provider(number.provider)
    error = "30006" if final == "undelivered" else ""
    updates: list[StatusUpdate] = []
    for status, code in (("sent", ""), (final, error)):
        fields = {"MessageId": provider_message_id, "Status": status}
        if code:
            fields["ErrorCode"] = code
        callback = WebhookRequest(
            url=number_webhook_urls(number)["status_url"],
            params={name: [value] for name, value in fields.items()},
            headers={"x-sandbox-token": phone_token(number)},
            raw_body=urlencode(fields).encode(),
        )
        provider.verify(number, callback)
        updates += provider.parse_status(callback)
    return updates
