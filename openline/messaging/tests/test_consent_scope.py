"""Consent nobody but the person can forge or undo: the phone simulator keeps its own
ledger scope, and an opt-out the person made is undone only by the person."""

from __future__ import annotations

from typing import Any

import pytest

from openline.contacts.models import ConsentEvent, ConsentSource
from openline.contacts.selectors import consent_state
from openline.contacts.services.consent import ConsentError, consent_record_opt_in
from openline.messaging.models import Message, MessageKind
from openline.messaging.services.outbound import SendRefused, message_send, record_provider_opt_out
from openline.providers.services import number_add

PERSON = "+12025550111"


@pytest.fixture
def real_number(org: Any) -> Any:
    """A number on a real provider (never dispatched here: nothing leaves the machine)."""
    return number_add(
        organization=org,
        provider="twilio",
        e164="+13125550100",
        config={"account_sid": "AC" + "0" * 32, "auth_token": "t" * 32},
        name="Crisis line",
    )


def _automated(number: Any) -> Message:
    return message_send(
        organization_id=number.organization_id,
        to=PERSON,
        body="Your group meets tonight.",
        number_id=number.pk,
        kind=MessageKind.AUTOMATED,
    )


def test_stop_typed_into_the_simulator_does_not_opt_a_real_phone_out(
    real_number: Any, sandbox_number: Any, text_in: Any
) -> None:
    text_in(sandbox_number, PERSON, "STOP")

    event = ConsentEvent.objects.get(kind="opt_out")
    assert event.simulated
    assert not consent_state(organization_id=real_number.organization_id, phone=PERSON).opted_out
    assert _automated(real_number).status == "queued"  # the real number still reaches them
    with pytest.raises(SendRefused):  # while the simulator keeps its own opt-out
        _automated(sandbox_number)


def test_start_typed_into_the_simulator_does_not_opt_a_real_phone_back_in(
    real_number: Any, sandbox_number: Any, text_in: Any
) -> None:
    text_in(real_number, PERSON, "STOP")  # the person, on the real number
    text_in(sandbox_number, PERSON, "START")  # someone at the simulator

    assert consent_state(organization_id=real_number.organization_id, phone=PERSON).opted_out
    with pytest.raises(SendRefused) as refused:
        _automated(real_number)
    assert refused.value.code == "opted_out"


def test_a_real_opt_out_holds_in_the_simulator_too(
    real_number: Any, sandbox_number: Any, text_in: Any
) -> None:
    text_in(real_number, PERSON, "STOP")

    with pytest.raises(SendRefused):
        _automated(sandbox_number)


def test_an_organization_with_only_simulated_numbers_sees_its_simulator_ledger(
    sandbox_number: Any, text_in: Any
) -> None:
    text_in(sandbox_number, PERSON, "STOP")

    assert consent_state(organization_id=sandbox_number.organization_id, phone=PERSON).opted_out


# --- only the person undoes their opt-out ------------------------------------------------


def _staff_opt_in(org_id: int, actor_id: int) -> ConsentEvent:
    return consent_record_opt_in(
        organization_id=org_id,
        phone=PERSON,
        source=ConsentSource.STAFF,
        evidence="they said so on the phone",
        actor_id=actor_id,
    )


def test_an_opt_out_request_staff_confirmed_is_the_persons_to_undo(
    sandbox_number: Any, text_in: Any, alice: Any, bob: Any
) -> None:
    from openline.messaging.services.conversation_consent import conversation_review_consent

    message = text_in(sandbox_number, PERSON, "please stop texting me")
    conversation_review_consent(
        conversation=message.conversation, actor_id=bob.pk, decision="opt_out"
    )

    state = consent_state(organization_id=sandbox_number.organization_id, phone=PERSON)
    assert state.opted_out_by_person
    with pytest.raises(ConsentError) as refused:
        _staff_opt_in(sandbox_number.organization_id, alice.pk)
    assert refused.value.code == "opted_out_by_person"
    text_in(sandbox_number, PERSON, "START")  # the person can
    state = consent_state(organization_id=sandbox_number.organization_id, phone=PERSON)
    assert state.status == "opted_in"


def test_a_carrier_reported_opt_out_is_the_persons_to_undo(
    sandbox_number: Any, pipeline: Any, alice: Any
) -> None:
    sent = pipeline.run(lambda: _automated(sandbox_number))
    record_provider_opt_out(message=sent, error_code="21610")

    with pytest.raises(ConsentError) as refused:
        _staff_opt_in(sandbox_number.organization_id, alice.pk)
    assert refused.value.code == "opted_out_by_person"


def test_a_simulator_opt_out_is_not_overridden_by_staff_either(
    real_number: Any, sandbox_number: Any, text_in: Any, alice: Any
) -> None:
    text_in(sandbox_number, PERSON, "STOP")

    with pytest.raises(ConsentError):
        _staff_opt_in(sandbox_number.organization_id, alice.pk)


def test_dismissing_an_opt_out_request_needs_a_supervisor_and_a_reason(
    sandbox_number: Any, text_in: Any, alice: Any, bob: Any
) -> None:
    from openline.core.models import AuditEvent
    from openline.messaging.services.conversation_consent import conversation_review_consent

    message = text_in(sandbox_number, PERSON, "stop texting me")
    conversation = message.conversation

    with pytest.raises(ConsentError) as refused:
        conversation_review_consent(
            conversation=conversation, actor_id=bob.pk, decision="not_opt_out", reason="nah"
        )
    assert refused.value.code == "forbidden"
    with pytest.raises(ConsentError) as refused:
        conversation_review_consent(
            conversation=conversation, actor_id=alice.pk, decision="not_opt_out", reason="  "
        )
    assert refused.value.code == "reason_required"
    conversation.refresh_from_db()
    assert conversation.needs_consent_review  # nothing changed
    assert not ConsentEvent.objects.filter(kind="request_dismissed").exists()

    assert conversation_review_consent(
        conversation=conversation,
        actor_id=alice.pk,
        decision="not_opt_out",
        reason="They meant a friend who keeps texting them",
    )
    dismissed = ConsentEvent.objects.get(kind="request_dismissed")
    assert dismissed.evidence == "They meant a friend who keeps texting them"
    assert AuditEvent.objects.filter(
        action="consent.request_dismissed", actor=alice, object_id=str(dismissed.pk)
    ).exists()
