from __future__ import annotations

import pytest
from django.utils import timezone

from openline.contacts.models import ConsentEvent, Contact
from openline.contacts.selectors import consent_state
from openline.messaging.models import (
    Conversation,
    ConversationStatus,
    InboundEvent,
    Message,
    MessageKind,
    MessageStatus,
)
from openline.messaging.services.inbound import inbound_process

PERSON = "+12025550111"


def test_text_from_unknown_number_creates_contact_and_waiting_conversation(
    sandbox_number, text_in, published
):
    message = text_in(sandbox_number, PERSON, "Hi, is anyone there?")

    conversation = message.conversation
    assert conversation.status == ConversationStatus.WAITING
    assert conversation.contact.phone == PERSON
    assert conversation.contact.label == "+1 202-555-0111"
    assert message.status == MessageStatus.RECEIVED
    types = [event["type"] for event in published]
    assert "conversation.created" in types and "message.created" in types


def test_known_contact_keeps_name_and_conversation_continues(sandbox_number, text_in):
    Contact.objects.create(organization=sandbox_number.organization, phone=PERSON, name="Dana")
    first = text_in(sandbox_number, PERSON, "hello")
    second = text_in(sandbox_number, PERSON, "are you there")

    assert first.conversation_id == second.conversation_id
    assert second.conversation.contact.label == "Dana"


def test_processing_twice_stores_one_message(sandbox_number, pipeline):
    event = InboundEvent.objects.create(
        organization=sandbox_number.organization,
        number=sandbox_number,
        provider="sandbox",
        provider_message_id="dup-00000001",
        from_number=PERSON,
        body="hi",
        received_at=timezone.now(),
    )
    inbound_process(event_id=event.pk)
    InboundEvent.objects.filter(pk=event.pk).update(processed_at=None)  # a crash replay
    inbound_process(event_id=event.pk)

    assert Message.objects.filter(inbound_event=event).count() == 1


def test_text_after_close_opens_new_waiting_conversation(sandbox_number, text_in):
    first = text_in(sandbox_number, PERSON, "hello")
    Conversation.objects.filter(pk=first.conversation_id).update(status=ConversationStatus.CLOSED)

    second = text_in(sandbox_number, PERSON, "me again")

    assert second.conversation_id != first.conversation_id
    assert second.conversation.status == ConversationStatus.WAITING


def test_stop_reply_opts_out_and_confirms_once(sandbox_number, text_in):
    text_in(sandbox_number, PERSON, "hello")
    text_in(sandbox_number, PERSON, "STOP")
    text_in(sandbox_number, PERSON, " stop. ")

    org_id = sandbox_number.organization_id
    assert consent_state(organization_id=org_id, phone=PERSON).opted_out
    confirmations = Message.objects.filter(kind=MessageKind.CONSENT)
    assert confirmations.count() == 1
    assert confirmations.get().status == MessageStatus.DELIVERED
    assert ConsentEvent.objects.filter(kind="opt_out", phone=PERSON).count() == 2


def test_help_alone_is_answered_and_waits_for_a_person(sandbox_number, text_in):
    # Issue 13 reversed this: a person who texts "Help" to a crisis line must reach someone.
    message = text_in(sandbox_number, PERSON, "HELP")

    assert message.conversation.status == ConversationStatus.WAITING
    reply = Message.objects.get(direction="out")
    assert "Reply STOP" in reply.body


def test_start_after_stop_opts_back_in_with_welcome(sandbox_number, text_in):
    text_in(sandbox_number, PERSON, "STOP")
    text_in(sandbox_number, PERSON, "Start")

    state = consent_state(organization_id=sandbox_number.organization_id, phone=PERSON)
    assert state.status == "opted_in"
    welcome = Message.objects.filter(direction="out", kind=MessageKind.AUTOMATED).get()
    assert sandbox_number.organization.name in welcome.body
    assert "STOP" in welcome.body


def test_help_from_opted_out_number_is_recorded_not_answered(sandbox_number, text_in):
    text_in(sandbox_number, PERSON, "STOP")
    text_in(sandbox_number, PERSON, "HELP")

    assert ConsentEvent.objects.filter(kind="help").count() == 1
    assert Message.objects.filter(direction="out").count() == 1  # only the confirmation


@pytest.mark.parametrize(
    "body",
    ["I can't stop crying", "stop by tomorrow?", "I want to end it all", "cancel my appointment"],
)
def test_ordinary_words_never_opt_out(sandbox_number, text_in, body):
    message = text_in(sandbox_number, PERSON, body)

    state = consent_state(organization_id=sandbox_number.organization_id, phone=PERSON)
    assert state.status == "unknown" and state.pending_request is None
    assert not message.conversation.needs_consent_review
    assert message.conversation.status == ConversationStatus.WAITING


@pytest.mark.parametrize("body", ["please stop texting me", "unsubscribe me"])
def test_free_text_opt_out_flags_and_stops_automated_messages(sandbox_number, text_in, body):
    message = text_in(sandbox_number, PERSON, body)

    conversation = Conversation.objects.get(pk=message.conversation_id)
    state = consent_state(organization_id=sandbox_number.organization_id, phone=PERSON)
    assert conversation.needs_consent_review
    assert state.status != "opted_out"  # a person confirms it
    assert not state.automated_allowed
    assert ConsentEvent.objects.get(kind="opt_out_request").text == body


def test_database_allows_one_open_conversation_per_person_and_inbox(sandbox_number, text_in):
    from django.db import IntegrityError, transaction

    first = text_in(sandbox_number, PERSON, "hello").conversation
    with pytest.raises(IntegrityError), transaction.atomic():
        Conversation.objects.create(
            organization=first.organization,
            number=sandbox_number,
            contact=first.contact,
            status=ConversationStatus.ACTIVE,
            last_message_at=timezone.now(),
        )
    Conversation.objects.filter(pk=first.pk).update(status=ConversationStatus.CLOSED)
    assert text_in(sandbox_number, PERSON, "again").conversation_id != first.pk


def test_conversation_closed_while_a_batch_was_planned_gets_a_new_one(
    sandbox_number, text_in, monkeypatch
):
    from openline.messaging.services import inbound

    first = text_in(sandbox_number, PERSON, "hello").conversation
    original_plan = inbound._plan

    def plan_then_close(prepared, inboxes):
        plan = original_plan(prepared, inboxes)
        assert plan is not None  # the plain-text fast path was taken
        Conversation.objects.filter(pk=first.pk).update(status=ConversationStatus.CLOSED)
        return plan

    monkeypatch.setattr(inbound, "_plan", plan_then_close)
    later = text_in(sandbox_number, PERSON, "are you still there?")

    assert later.conversation_id != first.pk
    assert later.conversation.status == ConversationStatus.WAITING
