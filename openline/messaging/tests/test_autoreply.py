"""Texts that arrive while an inbox is offline are marked, and auto-responses (offline,
first-contact greeting, "all counselors are busy") go out through the one send service:
once per text, once per period for the offline answer, never to an opted-out number, never
for keywords or web chat. Time is the test's ``clock``."""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from openline.availability.models import AutoReply, AutoReplyKind
from openline.availability.responses import opening_phrase
from openline.availability.services import inbox_responses_set
from openline.availability.tests.support import sign_up, utc
from openline.contacts.selectors import consent_state
from openline.messaging.models import (
    Conversation,
    ConversationStatus,
    Direction,
    InboundEvent,
    Message,
    MessageKind,
)
from openline.messaging.services.autoreply import auto_replies_send

PERSON = "+13125550100"
OTHER = "+13125550101"
THIRD = "+13125550102"
# Saturday 8 March 2025, 10:00 in New York (EST). Clocks go forward on Sunday 9 March.
SATURDAY_10 = utc(2025, 3, 8, 15)
TUESDAY_9_EDT = utc(2025, 3, 11, 13)


@pytest.fixture
def new_york(org):
    org.timezone = "America/New_York"
    org.save()
    return org


def _responses(number, actor, **changes):
    settings = {
        "offline_enabled": True,
        "offline_text": "Thanks for your message. We're closed right now and open again "
        "{next_open}. If you are in danger call 911.",
        "offline_period_hours": 12,
        "greeting_enabled": False,
        "greeting_text": "Hi, this is {organization}. A counselor will be with you soon.",
        "busy_enabled": False,
        "busy_text": "All our counselors are busy; please stay with us.",
        "busy_threshold": 3,
    }
    return inbox_responses_set(
        organization_id=number.organization_id,
        actor_id=actor.pk,
        number_id=number.pk,
        **(settings | changes),
    )


def _answers(phone=None, kind=MessageKind.AUTOMATED):
    sent = Message.objects.filter(direction=Direction.OUTBOUND, kind=kind)
    if phone:
        sent = sent.filter(conversation__contact__phone=phone)
    return list(sent.order_by("pk").values_list("body", flat=True))


@pytest.fixture
def tuesday_shift(new_york, make_shift, bob, clock):
    """09:00–17:00 New York every day; only Tuesday 11 March is staffed."""
    clock.set(SATURDAY_10)
    shift = make_shift(day=date(2025, 3, 8), rrule="FREQ=DAILY")
    sign_up(shift, bob, TUESDAY_9_EDT)
    return shift


# --- marking ---------------------------------------------------------------------------


def test_texts_while_offline_are_marked_and_so_is_the_conversation_they_open(
    tuesday_shift, sandbox_number, text_in, clock
):
    offline = text_in(sandbox_number, PERSON, "is anyone there?")
    assert offline.received_offline and offline.conversation.opened_offline
    clock.set(TUESDAY_9_EDT + timedelta(hours=1))  # on shift now
    online = text_in(sandbox_number, PERSON, "hello again")
    assert online.conversation_id == offline.conversation_id
    assert not online.received_offline
    fresh = text_in(sandbox_number, OTHER, "hi")
    assert not fresh.received_offline and not fresh.conversation.opened_offline


def test_keywords_are_answered_the_same_offline_and_help_waits_for_follow_up(
    tuesday_shift, sandbox_number, alice, text_in
):
    _responses(sandbox_number, alice)
    stop = text_in(sandbox_number, PERSON, "STOP")
    assert consent_state(organization_id=sandbox_number.organization_id, phone=PERSON).opted_out
    assert not stop.received_offline and not stop.conversation.opened_offline
    assert stop.conversation.status == ConversationStatus.CLOSED  # nobody queued for a STOP
    assert len(_answers(PERSON, MessageKind.CONSENT)) == 1  # the one opt-out confirmation
    from openline.contacts.services.consent import help_text

    help_ = text_in(sandbox_number, OTHER, "HELP")
    # Issue 13: a bare HELP reaches a person, so offline it is kept for follow-up.
    assert help_.received_offline and help_.conversation.opened_offline
    assert help_.conversation.status == ConversationStatus.WAITING
    assert _answers(OTHER) == [help_text(help_.conversation.organization)]
    assert not AutoReply.objects.exists()  # STOP and HELP got their own answers only


# --- the offline answer ------------------------------------------------------------------


def test_offline_answer_names_the_next_opening_in_new_york_time(
    tuesday_shift, sandbox_number, alice, text_in
):
    _responses(sandbox_number, alice)
    message = text_in(sandbox_number, PERSON, "I need to talk")
    # Tuesday 13:00 UTC is 09:00 in New York after the clocks went forward on Sunday.
    assert _answers(PERSON) == [
        "Thanks for your message. We're closed right now and open again Tuesday at 9:00 AM. "
        "If you are in danger call 911."
    ]
    reply = AutoReply.objects.get()
    assert (reply.kind, reply.trigger_id, reply.refused) == ("offline", message.pk, "")
    assert reply.message.conversation_id == message.conversation_id
    assert reply.message.kind == MessageKind.AUTOMATED
    assert message.conversation.status == ConversationStatus.WAITING  # still to follow up


def test_offline_answer_without_a_known_opening_says_as_soon_as_we_can(
    new_york, sandbox_number, alice, text_in, clock
):
    _responses(sandbox_number, alice)
    text_in(sandbox_number, PERSON, "hello")
    assert "open again as soon as we can." in _answers(PERSON)[0]


def test_one_offline_answer_per_person_per_period(
    tuesday_shift, sandbox_number, alice, text_in, clock
):
    _responses(sandbox_number, alice, offline_period_hours=12)
    text_in(sandbox_number, PERSON, "one")
    text_in(sandbox_number, PERSON, "two")
    clock.set(SATURDAY_10 + timedelta(hours=11, minutes=59))
    text_in(sandbox_number, PERSON, "three")
    text_in(sandbox_number, OTHER, "someone else")  # their own period
    assert len(_answers(PERSON)) == 1 and len(_answers(OTHER)) == 1
    clock.set(SATURDAY_10 + timedelta(hours=12, minutes=1))
    text_in(sandbox_number, PERSON, "four")
    assert len(_answers(PERSON)) == 2
    assert "tomorrow" not in _answers(PERSON)[1]  # Saturday 22:01: Tuesday is days away
    assert "Tuesday at 9:00 AM" in _answers(PERSON)[1]


def test_offline_answer_never_reaches_an_opted_out_number(
    tuesday_shift, sandbox_number, alice, text_in, pipeline
):
    _responses(sandbox_number, alice)
    text_in(sandbox_number, PERSON, "STOP")
    text_in(sandbox_number, PERSON, "actually, are you there?")
    assert _answers(PERSON) == []  # nothing automated, only the opt-out confirmation
    outbound = Message.objects.filter(direction=Direction.OUTBOUND)
    assert list(outbound.values_list("kind", flat=True)) == [MessageKind.CONSENT]
    refused = AutoReply.objects.get()
    assert refused.message is None and "opted out" in refused.refused
    # And nothing went to the carrier but the confirmation.
    from openline.providers.sandbox.models import SandboxMessage

    delivered = SandboxMessage.objects.filter(to=PERSON).values_list("body", flat=True)
    assert len(delivered) == 1 and "unsubscribed" in delivered[0]


def test_a_free_text_opt_out_request_gets_no_offline_answer(
    tuesday_shift, sandbox_number, alice, text_in
):
    _responses(sandbox_number, alice)
    text_in(sandbox_number, PERSON, "please stop texting me")
    assert _answers(PERSON) == []
    assert "asked not to be texted" in AutoReply.objects.get().refused


def test_held_conversation_gets_no_offline_answer(
    tuesday_shift, sandbox_number, alice, bob, text_in, clock
):
    """A counselor still talking with someone after their shift ended: no machine."""
    from openline.core.models import Membership
    from openline.messaging.services.assignment import conversation_assume

    clock.set(TUESDAY_9_EDT + timedelta(hours=7))
    first = text_in(sandbox_number, PERSON, "hi")
    conversation_assume(
        membership=Membership.objects.get(user=bob), conversation=first.conversation
    )
    _responses(sandbox_number, alice)
    clock.set(TUESDAY_9_EDT + timedelta(hours=8, minutes=5))  # the shift is over
    later = text_in(sandbox_number, PERSON, "still there?")
    assert later.received_offline  # it did arrive while offline (the report counts it)
    assert _answers(PERSON) == []


def test_nothing_is_sent_while_responses_are_off(tuesday_shift, sandbox_number, text_in):
    text_in(sandbox_number, PERSON, "hello")
    assert _answers() == [] and not AutoReply.objects.exists()


def test_a_replayed_step_sends_nothing_twice(
    tuesday_shift, sandbox_number, alice, text_in, pipeline
):
    from openline.messaging.services.inbound import inbound_process

    _responses(sandbox_number, alice, offline_period_hours=1)
    message = text_in(sandbox_number, PERSON, "hello")
    assert inbound_process(event_id=message.inbound_event_id) is None  # already processed
    again = pipeline.run(
        lambda: auto_replies_send(message_ids=[message.pk], opened_ids=[message.pk])
    )
    assert again == []
    InboundEvent.objects.filter(pk=message.inbound_event_id).update(processed_at=None)
    pipeline.run()  # processing replayed: the message exists, nothing is queued again
    assert Message.objects.filter(direction=Direction.INBOUND).count() == 1
    assert len(_answers(PERSON)) == 1 and AutoReply.objects.count() == 1


def test_a_backlog_worked_off_after_opening_gets_no_closed_answer(
    tuesday_shift, sandbox_number, alice, text_in, clock
):
    _responses(sandbox_number, alice)
    message = text_in(sandbox_number, PERSON, "hello")
    AutoReply.objects.all().delete()
    Message.objects.filter(direction=Direction.OUTBOUND).delete()
    clock.set(TUESDAY_9_EDT + timedelta(minutes=1))
    assert auto_replies_send(message_ids=[message.pk], opened_ids=[message.pk]) == []


# --- greeting and busy -------------------------------------------------------------------


@pytest.fixture
def on_now(new_york, make_shift, bob, clock):
    """Online: a staffed shift covers Monday 3 March, 09:00–17:00 New York."""
    shift = make_shift(day=date(2025, 3, 3), start=time(9), places=5)
    sign_up(shift, bob, utc(2025, 3, 3, 14))
    clock.set(utc(2025, 3, 3, 15))
    return shift


def test_greeting_goes_once_to_a_first_contact(on_now, sandbox_number, alice, bob, text_in):
    from openline.core.models import Membership
    from openline.messaging.services.assignment import conversation_close

    _responses(sandbox_number, alice, greeting_enabled=True)
    first = text_in(sandbox_number, PERSON, "hi")
    text_in(sandbox_number, PERSON, "are you there?")  # same conversation: no second one
    assert _answers(PERSON) == [
        "Hi, this is Riverside Crisis Line. A counselor will be with you soon."
    ]
    assert not first.received_offline
    conversation_close(
        membership=Membership.objects.get(user=alice), conversation=first.conversation
    )
    second = text_in(sandbox_number, PERSON, "me again")
    assert second.conversation_id != first.conversation_id
    assert len(_answers(PERSON)) == 1  # not a first contact any more
    text_in(sandbox_number, OTHER, "hello")
    assert len(_answers(OTHER)) == 1
    assert AutoReply.objects.filter(kind=AutoReplyKind.GREETING).count() == 2


def test_busy_answer_when_the_queue_reaches_the_threshold(on_now, sandbox_number, alice, text_in):
    _responses(sandbox_number, alice, busy_enabled=True, busy_threshold=2, greeting_enabled=True)
    text_in(sandbox_number, PERSON, "one waiting")
    text_in(sandbox_number, OTHER, "two waiting")
    text_in(sandbox_number, OTHER, "still waiting")  # one busy answer per conversation
    text_in(sandbox_number, THIRD, "three waiting")
    busy = "All our counselors are busy; please stay with us."
    assert _answers(PERSON) == [
        "Hi, this is Riverside Crisis Line. A counselor will be with you soon."
    ]
    assert _answers(OTHER) == [busy]  # one answer per text: busy wins over the greeting
    assert _answers(THIRD) == [busy]
    assert Conversation.objects.filter(status=ConversationStatus.WAITING).count() == 3


def test_online_text_gets_no_offline_answer(on_now, sandbox_number, alice, text_in):
    _responses(sandbox_number, alice)
    text_in(sandbox_number, PERSON, "hello")
    assert _answers() == []


def test_web_chat_gets_no_auto_response(on_now, sandbox_number, alice):
    from openline.chat.services import chat_start, visitor_message, widget_create

    _responses(sandbox_number, alice, greeting_enabled=True, busy_enabled=True, busy_threshold=1)
    widget = widget_create(
        organization_id=sandbox_number.organization_id, actor_id=alice.pk,
        number_id=sandbox_number.pk, display_name="Chat", allowed_origins=["https://a.example"],
    )  # fmt: skip
    started = chat_start(widget=widget, origin="https://a.example")
    message, _ = visitor_message(session=started.session, body="hi", client_id="abcdefgh1")
    assert auto_replies_send(message_ids=[message.pk], opened_ids=[message.pk]) == []


# --- costs ---------------------------------------------------------------------------------


def test_processing_costs_the_same_queries_however_many_texts_in_a_batch(
    tuesday_shift, sandbox_number, alice, org, text_in, django_capture_on_commit_callbacks
):
    """The online state and the inboxes' settings are read once per batch."""
    from django.utils import timezone

    from openline.messaging.services.inbound import inbound_process_pending
    from openline.providers.services import number_add

    youth = number_add(organization=org, provider="sandbox", e164="+12025550111", name="Youth")
    phones = [f"+1312555{n:04d}" for n in range(200, 240)]
    for phone in phones:  # known people with open conversations in both inboxes
        text_in(sandbox_number, phone, "first")
        text_in(youth, phone, "first")
    _responses(sandbox_number, alice)

    def batch(size: int, tag: str) -> int:
        for n, phone in enumerate(phones[:size]):
            InboundEvent.objects.create(
                organization_id=org.pk, number=sandbox_number if n % 2 else youth,
                provider="sandbox", provider_message_id=f"{tag}{n}", from_number=phone,
                body="more", received_at=timezone.now(),
            )  # fmt: skip
        with (
            CaptureQueriesContext(connection) as queries,
            django_capture_on_commit_callbacks(execute=False),
        ):
            assert inbound_process_pending() == size
        return len(queries)

    few, many = batch(4, "a"), batch(40, "b")
    assert few == many
    marked = Message.objects.filter(received_offline=True, body="more")
    assert marked.count() == 44


def test_opening_phrases():
    now = utc(2025, 3, 8, 15)  # Saturday 10:00 in New York
    zone = "America/New_York"
    assert opening_phrase(None, tz=zone, now=now) == "as soon as we can"
    assert opening_phrase(utc(2025, 3, 8, 22), tz=zone, now=now) == "today at 5:00 PM"
    assert opening_phrase(utc(2025, 3, 9, 13), tz=zone, now=now) == "tomorrow at 9:00 AM"
    assert opening_phrase(TUESDAY_9_EDT, tz=zone, now=now) == "Tuesday at 9:00 AM"
    assert opening_phrase(utc(2025, 3, 18, 13, 30), tz=zone, now=now) == (
        "Tuesday, March 18 at 9:30 AM"
    )
    # Near midnight the day is the organization's, not UTC's.
    late = utc(2025, 3, 9, 4, 30)  # Saturday 23:30 in New York
    assert opening_phrase(utc(2025, 3, 9, 13), tz=zone, now=late) == "tomorrow at 9:00 AM"
