from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from openline.messaging.models import Message, MessageStatus
from openline.messaging.services.outbound import message_send
from openline.messaging.services.reconcile import messages_reconcile
from openline.providers.sandbox.models import SandboxMessage

PERSON = "+12025550111"


def _stuck(org, **fields):
    message = message_send(organization_id=org.pk, to=PERSON, body="Group is at 6pm")
    Message.objects.filter(pk=message.pk).update(
        status=MessageStatus.SENDING,
        status_changed_at=timezone.now() - timedelta(minutes=10),
        **fields,
    )
    return message


def test_send_interrupted_before_the_provider_answered_is_failed_not_resent(sandbox_number):
    message = _stuck(sandbox_number.organization)

    assert messages_reconcile() == 1

    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED
    assert message.error_code == "outcome_unknown"
    assert not SandboxMessage.objects.exists()  # nothing was sent again


def test_stuck_message_with_provider_id_takes_the_providers_status(sandbox_number):
    org = sandbox_number.organization
    message = _stuck(org, provider_message_id="SB-known")
    SandboxMessage.objects.create(
        organization=org,
        number=sandbox_number,
        to=PERSON,
        body="x",
        provider_message_id="SB-known",
        status="delivered",
    )

    assert messages_reconcile() == 1

    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED


def test_recent_sending_messages_are_left_alone(sandbox_number):
    message = message_send(organization_id=sandbox_number.organization_id, to=PERSON, body="hi")
    Message.objects.filter(pk=message.pk).update(
        status=MessageStatus.SENDING, status_changed_at=timezone.now()
    )

    assert messages_reconcile() == 0
