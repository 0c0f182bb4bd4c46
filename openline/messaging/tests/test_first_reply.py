"""A conversation remembers when its first personal reply was written (reports read the
time to first reply from the conversation row): automated texts do not count, later
replies do not move it, and the migration fills it in for conversations already there."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django.apps import apps

from openline.messaging.models import Conversation, MessageKind
from openline.messaging.services.outbound import message_send


def test_the_first_personal_reply_is_recorded_once(
    text_in: Any, sandbox_number: Any, alice: Any
) -> None:
    conversation = text_in(sandbox_number, "+15555550161", "hello?").conversation
    org_id = conversation.organization_id
    message_send(
        organization_id=org_id, conversation=conversation, body="auto", kind=MessageKind.AUTOMATED
    )
    conversation.refresh_from_db()
    assert conversation.first_reply_at is None
    first = message_send(
        organization_id=org_id, conversation=conversation, body="hi", sender_id=alice.pk
    )
    message_send(
        organization_id=org_id, conversation=conversation, body="again", sender_id=alice.pk
    )
    conversation.refresh_from_db()
    assert conversation.first_reply_at == first.created_at
    assert conversation.last_message_at > first.created_at


def test_the_migration_fills_in_earlier_conversations(
    text_in: Any, sandbox_number: Any, alice: Any
) -> None:
    conversation = text_in(sandbox_number, "+15555550162", "hello?").conversation
    quiet = text_in(sandbox_number, "+15555550163", "anyone?").conversation
    reply = message_send(
        organization_id=conversation.organization_id,
        conversation=conversation,
        body="hi",
        sender_id=alice.pk,
    )
    Conversation.objects.update(first_reply_at=None)
    migration = import_module("openline.messaging.migrations.0013_conversation_first_reply_at")
    migration.first_replies(apps, None)
    assert Conversation.objects.get(pk=conversation.pk).first_reply_at == reply.created_at
    assert Conversation.objects.get(pk=quiet.pk).first_reply_at is None
