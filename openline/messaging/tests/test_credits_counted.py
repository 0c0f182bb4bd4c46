"""Every text counts against the organization's credits, and none waits for them: a reply,
an alert and an automatic answer are debited when queued (what is missing is owed, paid
first from the next credits), refunded when they fail before the carrier took them; a
broadcast's texts are paid by its own reservation, not twice. Through the real adapter and
the fake Twilio."""

from __future__ import annotations

from typing import Any

import pytest

from openline.billing.models import CreditEntry, CreditKind
from openline.billing.services import credit_balance, credit_ledger_balance, credits_add
from openline.contacts.models import ConsentSource
from openline.contacts.services.consent import consent_record_opt_out
from openline.messaging.models import Message, MessageKind, MessageStatus
from openline.messaging.services.outbound import message_send
from openline.providers.twilio.tests.fake import FakeTwilio
from openline.providers.twilio.tests.support import SEEKER


def _send(
    org: Any, body: str = "We're here.", kind: str = MessageKind.PERSONAL, to: str = SEEKER
) -> Message:
    return message_send(organization_id=org.pk, to=to, body=body, kind=kind)


def _entries(org: Any) -> list[tuple[str, int, str]]:
    rows = CreditEntry.objects.filter(organization=org).order_by("pk")
    return [(e.kind, e.credits, e.purpose) for e in rows]


@pytest.mark.django_db
def test_replies_alerts_and_automatic_answers_are_debited_by_segment_and_purpose(
    org: Any, alice: Any, number: Any, fake: FakeTwilio, pipeline: Any
) -> None:
    credits_add(
        organization_id=org.pk, credits=10, note="inv", actor_id=alice.pk, kind=CreditKind.PURCHASE
    )
    pipeline.run(lambda: _send(org, "x" * 200))  # two segments
    pipeline.run(
        lambda: _send(org, "Conversation waiting", kind=MessageKind.ALERT, to="+12025550177")
    )
    pipeline.run(lambda: _send(org, "We are closed now.", kind=MessageKind.AUTOMATED))
    assert _entries(org)[1:] == [
        ("debit", 2, "sms"),
        ("debit", 1, "alert"),
        ("debit", 1, "auto_reply"),
    ]
    assert credit_balance(organization_id=org.pk).available == 6
    assert len(fake.send_requests()) == 3


@pytest.mark.django_db
def test_with_no_credits_a_reply_still_goes_and_the_next_credits_pay_what_is_owed(
    org: Any, alice: Any, number: Any, fake: FakeTwilio, pipeline: Any
) -> None:
    message = pipeline.run(lambda: _send(org, "Are you safe right now?"))
    message.refresh_from_db()
    assert message.status == MessageStatus.SENDING and len(fake.send_requests()) == 1
    pipeline.run(lambda: _send(org, "x" * 200))
    balance = credit_balance(organization_id=org.pk)
    assert (balance.available, balance.owed) == (0, 3)
    assert balance == credit_ledger_balance(organization_id=org.pk)
    credits_add(
        organization_id=org.pk, credits=10, note="inv", actor_id=alice.pk, kind=CreditKind.PURCHASE
    )
    balance = credit_balance(organization_id=org.pk)
    assert (balance.available, balance.owed) == (7, 0)
    assert balance == credit_ledger_balance(organization_id=org.pk)


@pytest.mark.django_db
def test_a_text_that_fails_before_the_carrier_took_it_is_refunded_once(
    org: Any,
    alice: Any,
    number: Any,
    fake: FakeTwilio,
    pipeline: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    credits_add(
        organization_id=org.pk, credits=5, note="inv", actor_id=alice.pk, kind=CreditKind.PURCHASE
    )
    fake.fail_next("invalid_to")  # Twilio refuses it: never taken
    rejected = pipeline.run(lambda: _send(org), include_deferred=True)
    with django_capture_on_commit_callbacks(execute=True):
        held = _send(org)  # queued; consent changes before it goes
    consent_record_opt_out(
        organization_id=org.pk, phone=SEEKER, source=ConsentSource.STAFF, text="asked by phone"
    )
    pipeline.run(include_deferred=True)
    for message in (rejected, held):
        message.refresh_from_db()
        assert message.status == MessageStatus.FAILED and not message.provider_message_id
    assert _entries(org)[1:] == [
        ("debit", 1, "sms"),
        ("refund", 1, "sms"),
        ("debit", 1, "sms"),
        ("refund", 1, "sms"),
    ]
    assert credit_balance(organization_id=org.pk).available == 5
    # The carrier took this one, then reported it failed: it was paid for.
    taken = pipeline.run(lambda: _send(org, to="+12025550188"))
    taken.refresh_from_db()
    from openline.messaging.services.outbound import message_set_status

    message_set_status(message=taken, status=MessageStatus.FAILED, error_code="30008")
    assert credit_balance(organization_id=org.pk).available == 4
