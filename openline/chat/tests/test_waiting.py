"""A waiting visitor's place in line, the estimated wait (or "unknown"), and chats closed
as abandoned when the visitor leaves before anyone answers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from openline.chat import services
from openline.chat.models import ChatSession
from openline.chat.tests.conftest import ORIGIN
from openline.messaging.models import Conversation, ConversationNote, ConversationStatus

pytestmark = pytest.mark.django_db


def _chat(widget: Any) -> ChatSession:
    return services.chat_start(widget=widget, origin=ORIGIN).session


def test_place_in_line_counts_everyone_waiting_before_in_the_same_inbox(
    widget: Any, bob: Any
) -> None:
    first, second, third = (_chat(widget) for _ in range(3))
    places = [services.queue_place(s.conversation_id) for s in (first, second, third)]
    assert [p["position"] for p in places] == [1, 2, 3]
    assert all(p["waiting"] and p["estimate_seconds"] is None for p in places)  # unknown

    Conversation.objects.filter(pk=first.conversation_id).update(
        status=ConversationStatus.ACTIVE, assigned_to=bob, assigned_at=timezone.now()
    )
    assert services.queue_place(first.conversation_id) == {
        "type": "queue", "waiting": False, "position": 0, "estimate_seconds": None,
    }  # fmt: skip
    assert services.queue_place(third.conversation_id)["position"] == 2


def test_estimate_comes_from_recent_time_to_assume_and_who_is_answering(
    widget: Any, bob: Any, dora: Any
) -> None:
    now = timezone.now()
    for minutes, who in ((1, bob), (2, bob), (3, dora)):  # median 2 min, two people
        session = _chat(widget)
        Conversation.objects.filter(pk=session.conversation_id).update(
            status=ConversationStatus.ACTIVE,
            assigned_to=who,
            created_at=now - timedelta(minutes=10 + minutes),
            assigned_at=now - timedelta(minutes=10),
        )
    waiting = [_chat(widget) for _ in range(2)]
    assert services.queue_place(waiting[0].conversation_id)["estimate_seconds"] == 60
    assert services.queue_place(waiting[1].conversation_id)["estimate_seconds"] == 120


def test_visitors_gone_too_long_are_closed_as_abandoned_and_counted(
    widget: Any, bob: Any, sue: Any, client: Client, settings: Any
) -> None:
    settings.OPENLINE_CHAT_ABANDON_MINUTES = 10
    gone, here, answered = (_chat(widget) for _ in range(3))
    old = timezone.now() - timedelta(minutes=11)
    ChatSession.objects.filter(pk__in=[gone.pk, answered.pk]).update(last_seen_at=old)
    Conversation.objects.filter(pk=answered.conversation_id).update(
        status=ConversationStatus.ACTIVE, assigned_to=bob
    )
    assert services.chats_close_abandoned() == 1
    gone.refresh_from_db()
    assert gone.abandoned and gone.ended_at is not None
    assert gone.conversation.status == ConversationStatus.CLOSED
    assert not gone.conversation.handled_automatically  # abandoned, in reports too
    assert ConversationNote.objects.get(conversation_id=gone.conversation_id).body == (
        "The visitor left before anyone answered."
    )
    for session in (here, answered):
        session.refresh_from_db()
        assert session.ended_at is None and not session.abandoned
    assert services.chats_close_abandoned() == 0

    client.login(username="sue@example.org", password="supervisor-pass-123")
    page = client.get("/chat-settings/").content.decode()
    assert "last 7 days: <strong>1</strong>" in page
