from __future__ import annotations

import pytest

from openline.contacts.models import ConsentEvent, ConsentSource, Contact
from openline.contacts.selectors import consent_state
from openline.contacts.services.consent import (
    ConsentError,
    consent_dismiss_request,
    consent_record_opt_out,
)
from openline.messaging.models import Message, MessageKind, MessageStatus
from openline.messaging.services.conversation_consent import consent_opt_in_with_welcome
from openline.messaging.services.outbound import SendRefused, message_send

PERSON = "+12025550111"


def _send(org, **kwargs):
    return message_send(organization_id=org.pk, to=PERSON, body="Reminder: group at 6pm", **kwargs)


def test_send_to_opted_out_number_is_refused_with_code(sandbox_number):
    org = sandbox_number.organization
    consent_record_opt_out(organization_id=org.pk, phone=PERSON, source=ConsentSource.STAFF)

    with pytest.raises(SendRefused) as refused:
        _send(org)

    assert refused.value.code == "opted_out"
    assert Message.objects.count() == 0


def test_landline_is_not_textable(sandbox_number):
    org = sandbox_number.organization
    Contact.objects.create(organization=org, phone=PERSON, number_type="landline")

    with pytest.raises(SendRefused) as refused:
        _send(org)

    assert refused.value.code == "not_textable"


def test_staff_opt_in_records_evidence_and_sends_welcome(sandbox_number, alice, pipeline):
    org = sandbox_number.organization
    welcome = pipeline.run(
        lambda: consent_opt_in_with_welcome(
            organization_id=org.pk,
            phone=PERSON,
            source=ConsentSource.STAFF,
            evidence="Signed intake form 2026-11-02",
            actor_id=alice.pk,
        )
    )

    event = ConsentEvent.objects.get(kind="opt_in")
    assert event.evidence == "Signed intake form 2026-11-02" and event.actor == alice
    welcome.refresh_from_db()
    assert welcome.status == MessageStatus.DELIVERED and "STOP" in welcome.body


def test_staff_opt_in_requires_evidence(sandbox_number):
    with pytest.raises(ConsentError):
        consent_opt_in_with_welcome(
            organization_id=sandbox_number.organization_id,
            phone=PERSON,
            source="staff",
            evidence="  ",
        )


def test_nobody_can_opt_in_a_person_who_texted_stop(sandbox_number, text_in, alice):
    text_in(sandbox_number, PERSON, "STOP")

    with pytest.raises(ConsentError, match="only they can opt back in"):
        consent_opt_in_with_welcome(
            organization_id=sandbox_number.organization_id,
            phone=PERSON,
            source="staff",
            evidence="verbal consent on the phone",
            actor_id=alice.pk,
        )
    assert consent_state(organization_id=sandbox_number.organization_id, phone=PERSON).opted_out


def test_staff_can_reverse_a_staff_recorded_opt_out_with_evidence(sandbox_number, alice):
    org_id = sandbox_number.organization_id
    consent_record_opt_out(organization_id=org_id, phone=PERSON, source="staff", actor_id=alice.pk)

    consent_opt_in_with_welcome(
        organization_id=org_id,
        phone=PERSON,
        source="staff",
        evidence="form signed",
        actor_id=alice.pk,
    )

    assert consent_state(organization_id=org_id, phone=PERSON).status == "opted_in"


def test_pending_request_blocks_automated_but_not_personal_replies(
    sandbox_number, text_in, alice, bob
):
    message = text_in(sandbox_number, PERSON, "please stop texting me")
    org = sandbox_number.organization

    with pytest.raises(SendRefused) as refused:
        _send(org, kind=MessageKind.AUTOMATED)
    assert refused.value.code == "opt_out_pending"
    reply = message_send(
        organization_id=org.pk,
        conversation=message.conversation,
        body="Understood. Would you like us to stop texting you? Reply STOP to confirm.",
        sender_id=bob.pk,
    )
    assert reply.status == MessageStatus.QUEUED

    consent_dismiss_request(
        organization_id=org.pk, phone=PERSON, actor_id=alice.pk, reason="they meant someone else"
    )
    assert _send(org, kind=MessageKind.AUTOMATED).status == MessageStatus.QUEUED


def test_opt_out_between_queue_and_dispatch_is_honoured(
    sandbox_number, pipeline, django_capture_on_commit_callbacks
):
    org = sandbox_number.organization
    with django_capture_on_commit_callbacks() as callbacks:
        message = _send(org)  # queued; the dispatch task is enqueued at commit
    consent_record_opt_out(organization_id=org.pk, phone=PERSON, source="staff")

    pipeline.run(lambda: [callback() for callback in callbacks])

    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED and message.error_code == "opted_out"
    from openline.providers.sandbox.models import SandboxMessage

    assert not SandboxMessage.objects.exists()


def test_provider_opt_out_error_records_opt_out(sandbox_number, pipeline):
    target = "+12025550666"
    org = sandbox_number.organization
    message = pipeline.run(lambda: message_send(organization_id=org.pk, to=target, body="hi"))

    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED and message.error_code == "21610"
    state = consent_state(organization_id=org.pk, phone=target)
    assert state.opted_out and state.opted_out_by_person


@pytest.mark.parametrize("stored_type", ["voip", None])  # None: guessed from the number
def test_voip_number_is_not_textable(sandbox_number, stored_type):
    org = sandbox_number.organization
    voip = "+445612345678"  # UK 056: VoIP in the numbering plan
    if stored_type:
        Contact.objects.create(organization=org, phone=voip, number_type=stored_type)

    with pytest.raises(SendRefused) as refused:
        message_send(organization_id=org.pk, to=voip, body="Reminder: group at 6pm")

    assert refused.value.code == "not_textable"
    assert "voip number and cannot receive texts" in str(refused.value)
    assert not Message.objects.exists()


def test_pending_request_blocks_bulk_messages_until_reviewed(sandbox_number, text_in, alice):
    text_in(sandbox_number, PERSON, "please stop texting me")
    org = sandbox_number.organization
    before = Message.objects.count()

    with pytest.raises(SendRefused) as refused:
        _send(org, kind=MessageKind.BULK)
    assert refused.value.code == "opt_out_pending"
    assert Message.objects.count() == before

    consent_dismiss_request(
        organization_id=org.pk, phone=PERSON, actor_id=alice.pk, reason="they meant someone else"
    )
    assert _send(org, kind=MessageKind.BULK).status == MessageStatus.QUEUED


def test_keyword_events_record_the_number_they_came_through(sandbox_number, text_in):
    from openline.providers.services import number_add

    youth = number_add(
        organization=sandbox_number.organization,
        provider="sandbox",
        e164="+12025550143",
        name="Youth line",
        segments_per_second=1000,
    )
    text_in(youth, PERSON, "Stop.")
    text_in(youth, PERSON, "start")
    text_in(sandbox_number, PERSON, "HELP")

    events = list(ConsentEvent.objects.filter(phone=PERSON).order_by("created_at", "id"))
    assert [(e.kind, e.source, e.number_id, e.text) for e in events] == [
        ("opt_out", ConsentSource.KEYWORD, youth.pk, "Stop."),
        ("opt_in", ConsentSource.KEYWORD, youth.pk, "start"),
        ("help", ConsentSource.KEYWORD, sandbox_number.pk, "HELP"),
    ]
    assert all(e.actor_id is None and e.organization_id == youth.organization_id for e in events)


def test_default_welcome_says_who_what_to_expect_and_how_to_stop(sandbox_number, text_in):
    from openline.contacts.services.consent import welcome_text

    org = sandbox_number.organization
    text_in(sandbox_number, PERSON, "STOP")
    text_in(sandbox_number, PERSON, "START")

    welcome = Message.objects.get(direction="out", kind=MessageKind.AUTOMATED)
    assert welcome.body == welcome_text(org)
    assert welcome.status == MessageStatus.DELIVERED
    assert welcome.body.startswith(f"{org.name}: you're subscribed to texts from us.")
    assert "We reply to your messages and may send reminders." in welcome.body  # what to expect
    assert "Reply HELP for help, STOP to opt out." in welcome.body


def test_default_help_text_names_the_organization_its_contact_and_the_way_out(
    sandbox_number, text_in
):
    from openline.contacts.services.consent import help_text

    org = sandbox_number.organization
    org.contact_info = "call 312-555-0100, 9am-5pm"
    org.save()
    text_in(sandbox_number, PERSON, "help")

    answer = Message.objects.get(direction="out")
    assert answer.body == help_text(org)
    assert answer.kind == MessageKind.AUTOMATED and answer.status == MessageStatus.DELIVERED
    assert answer.body.startswith(f"{org.name}: ")
    assert "Contact: call 312-555-0100, 9am-5pm." in answer.body
    assert answer.body.endswith("Reply STOP to opt out.")
