"""A risk phrase in a chat visitor's message raises the conversation's priority with the
phrase as the reason, as an inbound text's does, in the message's own transaction."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction

from openline.chat import services
from openline.chat.tests.conftest import ORIGIN
from openline.messaging.models import Conversation, Message, Priority, RiskPhrase

pytestmark = pytest.mark.django_db


def _conversation(chat: services.StartedChat) -> Conversation:
    return Conversation.objects.get(pk=chat.session.conversation_id)


def test_a_risk_phrase_in_a_chat_message_raises_the_priority_with_the_reason(
    widget: Any, django_capture_on_commit_callbacks: Any
) -> None:
    chat = services.chat_start(widget=widget, origin=ORIGIN, name="Sam")
    services.visitor_message(
        session=chat.session, body="hello, is anyone there", client_id="client-00001"
    )
    calm = _conversation(chat)
    assert (calm.priority, calm.priority_reason) == (Priority.NORMAL, "")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.visitor_message(
            session=chat.session, body="I took PILLS and want to die", client_id="client-00002"
        )
    raised = _conversation(chat)
    assert raised.priority == Priority.URGENT
    assert raised.priority_reason == "Risk phrase: “want to die”"
    assert len(callbacks) >= 2  # the message event and the priority event, after commit
    # A milder phrase later never lowers it, nor changes the reason.
    services.visitor_message(session=chat.session, body="pills", client_id="client-00003")
    assert _conversation(chat).priority_reason == "Risk phrase: “want to die”"
    # A resend of the same message is a no-op.
    services.visitor_message(session=chat.session, body="pills", client_id="client-00003")
    assert Message.objects.filter(conversation_id=chat.session.conversation_id).count() == 3


def test_the_organizations_own_phrases_are_used(widget: Any, org: Any, other_org: Any) -> None:
    RiskPhrase.objects.create(organization=org, phrase="no way out", priority=Priority.HIGH)
    RiskPhrase.objects.create(organization=other_org, phrase="hello", priority=Priority.URGENT)
    chat = services.chat_start(widget=widget, origin=ORIGIN)
    # Another organization's phrase, and the suggested list (replaced by ours), match nothing.
    services.visitor_message(
        session=chat.session, body="hello, I want to die", client_id="client-00001"
    )
    assert _conversation(chat).priority == Priority.NORMAL
    services.visitor_message(
        session=chat.session, body="There is NO way out", client_id="client-00002"
    )
    raised = _conversation(chat)
    assert (raised.priority, raised.priority_reason) == (
        Priority.HIGH,
        "Risk phrase: “no way out”",
    )


def test_the_raise_is_rolled_back_with_the_message(widget: Any) -> None:
    chat = services.chat_start(widget=widget, origin=ORIGIN)
    with pytest.raises(RuntimeError), transaction.atomic():
        services.visitor_message(session=chat.session, body="suicide", client_id="client-00001")
        raise RuntimeError("the request failed after the message")
    assert _conversation(chat).priority == Priority.NORMAL
    assert not Message.objects.exists()


def test_a_triage_priority_above_the_phrase_keeps_its_reason(widget: Any, alice: Any) -> None:
    from openline.chat.questions import question_create

    question = question_create(
        widget=widget,
        actor_id=alice.pk,
        kind="choice",
        prompt="What is it about?",
        options_text="Money\nThinking about suicide | urgent",
    )
    chat = services.chat_start(
        widget=widget, origin=ORIGIN, answers={str(question.pk): "Thinking about suicide"}
    )
    services.visitor_message(session=chat.session, body="cutting", client_id="client-00001")
    conversation = _conversation(chat)
    assert (conversation.priority, conversation.priority_reason) == (
        Priority.URGENT,
        "Chat triage: What is it about?: Thinking about suicide",
    )
