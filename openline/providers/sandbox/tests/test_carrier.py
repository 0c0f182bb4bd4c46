"""The sandbox's simulated carrier: after a send it reports sent, then delivered (or
undelivered), through the sandbox adapter and the status service, as a real carrier's status
callbacks would, waiting briefly for dispatch to store the provider's id."""

from __future__ import annotations

from typing import Any

import pytest
from django_tasks_db.models import DBTaskResult

from openline.messaging.models import MessageStatus
from openline.messaging.services.dispatch import status_url
from openline.messaging.services.outbound import message_send
from openline.providers.registry import get_provider
from openline.providers.sandbox.models import SandboxMessage
from openline.providers.sandbox.provider import phone_token
from openline.providers.sandbox.tasks import MAX_WAITS, carrier_deliver
from openline.providers.services import number_webhook_urls
from openline.providers.twilio.tests.support import asgi_request

SEEKER = "+12025550111"


@pytest.mark.django_db(transaction=True)
def test_reply_to_an_undeliverable_simulated_phone_ends_undelivered(
    org: Any, sandbox_number: Any, pipeline: Any
) -> None:
    message = pipeline.run(
        lambda: message_send(organization_id=org.pk, to="+12025550999", body="Reminder")
    )
    message.refresh_from_db()
    assert message.status == MessageStatus.UNDELIVERED
    assert message.error_code == "30006"


@pytest.mark.django_db(transaction=True)
def test_the_simulated_carrier_reports_through_the_sandbox_status_callback(
    org: Any, sandbox_number: Any, pipeline: Any, monkeypatch: Any
) -> None:
    """The carrier's reports are status callbacks the sandbox adapter checks and reads, as
    the status webhook does; the same callbacks posted over HTTP move a message forward only
    and are refused without the number's token."""
    from openline.providers.sandbox.provider import SandboxProvider

    read: list[str] = []
    parse = SandboxProvider.parse_status

    def reading(self: Any, request: Any) -> Any:
        read.append(request.params["Status"][0])
        return parse(self, request)

    monkeypatch.setattr(SandboxProvider, "parse_status", reading)
    message = pipeline.run(
        lambda: message_send(organization_id=org.pk, to=SEEKER, body="Your visit is at 3")
    )
    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED
    assert read == ["sent", "delivered"]

    def callback(status: str, token: str | None = None) -> Any:
        return asgi_request(
            "POST",
            f"/hooks/sandbox/{sandbox_number.webhook_key}/status",
            data={"MessageId": message.provider_message_id, "Status": status},
            headers={"X-Sandbox-Token": phone_token(sandbox_number) if token is None else token},
        )

    assert callback("failed", token="forged:token").status_code == 403
    assert callback("sent").status_code == 200  # late and out of order: ignored
    assert callback("bogus").status_code == 400
    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED


def _retries(provider_message_id: str) -> list[int]:
    """The ``waited`` counts of the carrier's re-enqueued reports for this message."""
    return [
        args_kwargs["args"][1]
        for args_kwargs in DBTaskResult.objects.values_list("args_kwargs", flat=True)
        if args_kwargs["args"][:1] == [provider_message_id] and len(args_kwargs["args"]) > 1
    ]


@pytest.mark.django_db
def test_the_carrier_waits_for_dispatch_to_store_the_id_and_then_gives_up(
    sandbox_number: Any,
) -> None:
    """No message carries the id yet (dispatch stores it right after send() returns): the
    carrier reports again shortly, at most MAX_WAITS times, and delivers nothing meanwhile."""
    sent = get_provider("sandbox").send(
        sandbox_number, to=SEEKER, body="hi", status_url="", idempotency_key="openline-wait"
    )
    carrier_deliver.call(sent.provider_message_id)
    assert _retries(sent.provider_message_id) == [1]
    carrier_deliver.call(sent.provider_message_id, MAX_WAITS)
    assert _retries(sent.provider_message_id) == [1]
    assert SandboxMessage.objects.get().status == "queued"


@pytest.mark.django_db(transaction=True)
def test_the_carrier_delivers_to_the_phone_a_message_whose_status_is_already_final(
    org: Any, sandbox_number: Any, pipeline: Any
) -> None:
    """Known but unchanged (a late second report) is not "not stored yet": no waiting."""
    message = pipeline.run(lambda: message_send(organization_id=org.pk, to=SEEKER, body="Hi"))
    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED
    SandboxMessage.objects.update(status="sending")
    carrier_deliver.call(message.provider_message_id)
    assert SandboxMessage.objects.get().status == "delivered"
    assert _retries(message.provider_message_id) == []


@pytest.mark.django_db
def test_the_carrier_reports_to_the_status_url_dispatch_gives_the_provider(
    sandbox_number: Any,
) -> None:
    assert number_webhook_urls(sandbox_number)["status_url"] == status_url(sandbox_number)
