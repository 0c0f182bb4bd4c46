"""Every text from a person reaches a person: keywords, replies to texts the system sent,
and "yes" in the middle of a conversation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from openline.contacts.models import ConsentEvent, ConsentKind, ConsentSource
from openline.contacts.selectors import consent_state
from openline.contacts.services.consent import consent_record
from openline.core.models import Membership
from openline.messaging import selectors
from openline.messaging.models import (
    Conversation,
    ConversationNote,
    ConversationStatus,
    Direction,
    InboundEvent,
    Message,
    MessageKind,
)
from openline.messaging.selectors import QueueFilter
from openline.messaging.services.conversation_consent import consent_opt_in_with_welcome
from openline.messaging.services.outbound import message_send
from openline.messaging.services.queue_guard import conversations_requeue_unseen

PERSON = "+12025550111"


def _replies(conversation: Conversation) -> list[Message]:
    return list(conversation.messages.filter(direction=Direction.OUTBOUND))


# --- keywords as a first text ------------------------------------------------------------


@pytest.mark.parametrize("body", ["Help", "INFO", "start", "UNSTOP", "ayuda"])
def test_a_first_text_that_is_only_a_keyword_waits_in_the_queue_after_its_answer(
    sandbox_number: Any, text_in: Any, published: list[dict[str, Any]], bob: Any, body: str
) -> None:
    message = text_in(sandbox_number, PERSON, body)

    conversation = Conversation.objects.get(pk=message.conversation_id)
    assert conversation.status == ConversationStatus.WAITING
    assert conversation.assigned_to_id is None
    assert len(_replies(conversation)) == 1  # the help text or the welcome, in the same place
    counselor = Membership.objects.get(user=bob)
    waiting = selectors.queue_conversations(membership=counselor, filters=QueueFilter())
    assert conversation in waiting
    assert any(
        e["type"] == "conversation.created" and e["conversation_id"] == conversation.pk
        for e in published
    )


def test_a_first_text_of_stop_opts_out_and_stays_out_of_the_queue(
    sandbox_number: Any, text_in: Any
) -> None:
    message = text_in(sandbox_number, PERSON, "STOP")

    conversation = Conversation.objects.get(pk=message.conversation_id)
    assert conversation.status == ConversationStatus.CLOSED
    assert [m.kind for m in _replies(conversation)] == [MessageKind.CONSENT]


def test_stop_inside_a_waiting_conversation_leaves_it_waiting_for_a_person(
    sandbox_number: Any, text_in: Any
) -> None:
    first = text_in(sandbox_number, PERSON, "I don't know who else to talk to")
    stop = text_in(sandbox_number, PERSON, "STOP")

    assert stop.conversation_id == first.conversation_id
    assert Conversation.objects.get(pk=first.conversation_id).status == "waiting"


def test_help_while_the_inbox_is_offline_is_kept_for_follow_up(
    sandbox_number: Any, text_in: Any
) -> None:
    message = text_in(sandbox_number, PERSON, "HELP")  # no shift: the inbox is offline

    assert message.received_offline
    assert message.conversation.opened_offline
    assert message.conversation.status == ConversationStatus.WAITING


# --- replies to texts the system sent ---------------------------------------------------


def test_an_api_text_leaves_no_active_conversation_without_a_holder(
    sandbox_number: Any, pipeline: Any
) -> None:
    sent = pipeline.run(
        lambda: message_send(
            organization_id=sandbox_number.organization_id,
            to=PERSON,
            body="Your appointment is tomorrow at 10.",
            kind=MessageKind.AUTOMATED,
        )
    )

    conversation = Conversation.objects.get(pk=sent.conversation_id)
    assert conversation.status == ConversationStatus.CLOSED
    assert conversation.assigned_to_id is None


def test_the_reply_to_a_system_text_waits_in_the_queue_with_that_text_as_history(
    sandbox_number: Any, pipeline: Any, text_in: Any, alice: Any
) -> None:
    org_id = sandbox_number.organization_id
    first = pipeline.run(
        lambda: message_send(
            organization_id=org_id,
            to=PERSON,
            body="Reminder: group at 7.",
            kind="automated",
        )
    )
    second = pipeline.run(
        lambda: message_send(
            organization_id=org_id, to=PERSON, body="Group moved to 7:30.", kind="automated"
        )
    )
    reply = text_in(sandbox_number, PERSON, "can I bring a friend?")

    assert second.conversation_id == first.conversation_id  # system texts kept together
    conversation = Conversation.objects.get(pk=reply.conversation_id)
    assert conversation.pk != first.conversation_id
    assert conversation.status == ConversationStatus.WAITING
    earlier = [m.body for m in selectors.earlier_messages(conversation=conversation)]
    assert earlier == ["Reminder: group at 7.", "Group moved to 7:30."]


def test_the_reply_to_a_staff_opt_in_welcome_waits_in_the_queue(
    sandbox_number: Any, pipeline: Any, text_in: Any, alice: Any
) -> None:
    welcome = pipeline.run(
        lambda: consent_opt_in_with_welcome(
            organization_id=sandbox_number.organization_id,
            phone=PERSON,
            source=ConsentSource.STAFF,
            evidence="Signed the intake form",
            actor_id=alice.pk,
        )
    )
    reply = text_in(sandbox_number, PERSON, "thanks, who is this?")

    assert welcome.conversation.status == ConversationStatus.CLOSED
    assert reply.conversation.status == ConversationStatus.WAITING


def test_a_text_a_counselor_starts_is_held_by_them(
    sandbox_number: Any, pipeline: Any, text_in: Any, bob: Any
) -> None:
    sent = pipeline.run(
        lambda: message_send(
            organization_id=sandbox_number.organization_id,
            to=PERSON,
            body="Hi, it's Bob from Riverside, following up.",
            sender_id=bob.pk,
        )
    )
    reply = text_in(sandbox_number, PERSON, "hi Bob")

    assert reply.conversation_id == sent.conversation_id
    assert reply.conversation.assigned_to_id == bob.pk


# --- YES is an ordinary word; START welcomes only when something changes -------------------


def test_yes_in_a_conversation_is_conversation_text(sandbox_number: Any, text_in: Any) -> None:
    text_in(sandbox_number, PERSON, "hi")
    answer = text_in(sandbox_number, PERSON, "yes")

    assert not ConsentEvent.objects.filter(phone=PERSON).exists()
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exists()  # no welcome
    assert answer.conversation.status == ConversationStatus.WAITING


def test_a_first_text_of_yes_is_a_person_reaching_out(sandbox_number: Any, text_in: Any) -> None:
    message = text_in(sandbox_number, PERSON, "Yes")

    assert message.conversation.status == ConversationStatus.WAITING
    assert not ConsentEvent.objects.exists()
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exists()


def test_yes_from_an_opted_out_person_opts_back_in_with_a_welcome(
    sandbox_number: Any, text_in: Any
) -> None:
    text_in(sandbox_number, PERSON, "STOP")
    text_in(sandbox_number, PERSON, "YES")

    state = consent_state(organization_id=sandbox_number.organization_id, phone=PERSON)
    assert state.status == "opted_in"
    assert Message.objects.filter(kind=MessageKind.AUTOMATED).count() == 1  # the welcome


def test_yes_answers_a_pending_opt_in_confirmation(sandbox_number: Any, text_in: Any) -> None:
    consent_record(
        organization_id=sandbox_number.organization_id,
        phone=PERSON,
        kind=ConsentKind.OPT_IN_REQUEST,
        source=ConsentSource.STAFF,
        text="Reply YES to get reminders from Riverside.",
    )
    text_in(sandbox_number, PERSON, "yes")

    state = consent_state(organization_id=sandbox_number.organization_id, phone=PERSON)
    assert state.status == "opted_in"
    assert not state.opt_in_pending


def test_yes_never_opts_in_on_a_toll_free_number(sandbox_number: Any, text_in: Any) -> None:
    sandbox_number.kind = "toll_free"
    sandbox_number.save()
    text_in(sandbox_number, PERSON, "STOP")
    text_in(sandbox_number, PERSON, "yes")

    assert consent_state(organization_id=sandbox_number.organization_id, phone=PERSON).opted_out


@pytest.mark.parametrize("stop", ["STOP", "CANCEL"])  # CANCEL: no reminder awaits an answer
def test_stop_then_yes_in_one_batch_opts_back_in(
    sandbox_number: Any, pipeline: Any, stop: str
) -> None:
    for i, body in enumerate([stop, "YES"]):
        InboundEvent.objects.create(
            organization_id=sandbox_number.organization_id,
            number=sandbox_number,
            provider="sandbox",
            provider_message_id=f"batch-{i}",
            from_number=PERSON,
            body=body,
            received_at=timezone.now(),
        )
    pipeline.run()

    state = consent_state(organization_id=sandbox_number.organization_id, phone=PERSON)
    assert state.status == "opted_in"
    kinds = list(ConsentEvent.objects.order_by("id").values_list("kind", flat=True))
    assert kinds == ["opt_out", "opt_in"]


def test_start_when_already_subscribed_sends_no_second_welcome(
    sandbox_number: Any, text_in: Any
) -> None:
    text_in(sandbox_number, PERSON, "START")  # a first contact: welcomed
    text_in(sandbox_number, PERSON, "START")  # nothing changed: nothing said

    assert Message.objects.filter(kind=MessageKind.AUTOMATED).count() == 1
    assert ConsentEvent.objects.filter(kind="opt_in").count() == 2  # both recorded


# --- the safety net -------------------------------------------------------------------------


def test_an_active_conversation_nobody_holds_goes_back_to_the_queue(
    sandbox_number: Any, text_in: Any, pipeline: Any, published: list[dict[str, Any]]
) -> None:
    message = text_in(sandbox_number, PERSON, "hello?")
    Conversation.objects.filter(pk=message.conversation_id).update(status="active")  # a bug

    assert pipeline.run(conversations_requeue_unseen) == 1

    conversation = Conversation.objects.get(pk=message.conversation_id)
    assert conversation.status == ConversationStatus.WAITING
    note = ConversationNote.objects.get(conversation=conversation)
    assert "safety check" in note.body
    assert any(e["type"] == "conversation.assigned" for e in published)
    assert conversations_requeue_unseen() == 0  # once


def test_a_conversation_held_by_someone_no_longer_a_member_goes_back_to_the_queue(
    sandbox_number: Any, text_in: Any, bob: Any
) -> None:
    message = text_in(sandbox_number, PERSON, "hello?")
    Conversation.objects.filter(pk=message.conversation_id).update(
        status="active", assigned_to=bob, assigned_at=timezone.now() - timedelta(minutes=5)
    )
    text_in(sandbox_number, PERSON, "are you still there?")
    Membership.objects.filter(user=bob).delete()

    assert conversations_requeue_unseen() == 1
    conversation = Conversation.objects.get(pk=message.conversation_id)
    assert (conversation.status, conversation.assigned_to_id) == ("waiting", None)


def test_a_conversation_held_by_an_active_member_is_left_alone(
    sandbox_number: Any, text_in: Any, bob: Any
) -> None:
    message = text_in(sandbox_number, PERSON, "hello?")
    Conversation.objects.filter(pk=message.conversation_id).update(
        status="active", assigned_to=bob, assigned_at=timezone.now() - timedelta(minutes=5)
    )
    text_in(sandbox_number, PERSON, "still there?")

    assert conversations_requeue_unseen() == 0


def test_a_text_stranded_in_a_closed_conversation_is_reopened(
    sandbox_number: Any, text_in: Any
) -> None:
    message = text_in(sandbox_number, PERSON, "hello?")
    closed_at = timezone.now() - timedelta(minutes=1)
    Conversation.objects.filter(pk=message.conversation_id).update(
        status="closed", closed_at=closed_at, handled_automatically=True
    )
    Message.objects.filter(pk=message.pk).update(created_at=timezone.now())  # a bug put it here

    assert conversations_requeue_unseen() == 1
    reopened = Conversation.objects.get(pk=message.conversation_id)
    assert reopened.status == "waiting"
    assert not reopened.handled_automatically  # open again: not an automatic close any more


def test_a_lone_stop_in_a_closed_conversation_stays_closed(
    sandbox_number: Any, text_in: Any
) -> None:
    text_in(sandbox_number, PERSON, "hi")
    conversation = Conversation.objects.get()
    Conversation.objects.filter(pk=conversation.pk).update(
        status="closed", closed_at=timezone.now() - timedelta(minutes=1)
    )
    text_in(sandbox_number, PERSON, "STOP")  # joins the closed conversation, by design

    assert conversations_requeue_unseen() == 0
