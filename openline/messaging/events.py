"""What the screens receive: the events consoles get about conversations and messages, and
a message as the visitor's chat widget shows it.

Console events carry ids and states only; the visitor's view carries the text, and goes
to that visitor only. Services build events here and publish them through
``core.realtime`` after commit; nothing here writes to the database."""

from __future__ import annotations

from openline.core.realtime import publish_on_commit
from openline.messaging.models import Conversation, Direction, Message


def conversation_event(conversation: Conversation, event_type: str) -> dict[str, object]:
    return {
        "type": event_type,
        "conversation_id": conversation.pk,
        "status": conversation.status,
        "assigned_to_id": conversation.assigned_to_id,
    }


def publish_message_event(message: Message, event_type: str) -> None:
    publish_on_commit(
        organization_id=message.organization_id, event=message_event(message, event_type)
    )


def message_event(message: Message, event_type: str) -> dict[str, object]:
    """Ids and states only. The holder lets each console filter what it may see."""
    conversation = message.conversation
    return message_event_values(
        event_type,
        message_id=message.pk,
        conversation_id=message.conversation_id,
        direction=message.direction,
        status=message.status,
        conversation_status=conversation.status,
        assigned_to_id=conversation.assigned_to_id,
    )


def message_event_values(
    event_type: str,
    *,
    message_id: int | None,
    conversation_id: int,
    direction: str,
    status: str,
    conversation_status: str,
    assigned_to_id: int | None,
) -> dict[str, object]:
    """``message_event`` from plain values (inbound processing stores rows, not models)."""
    return {
        "type": event_type,
        "message_id": message_id,
        "conversation_id": conversation_id,
        "direction": direction,
        "status": status,
        "conversation_status": conversation_status,
        "assigned_to_id": assigned_to_id,
    }


def visitor_view(message: Message) -> dict[str, object]:
    """A message as the visitor's widget shows it (their chat's content, to them only)."""
    mine = message.direction == Direction.INBOUND
    client_id = message.provider_message_id.rsplit(":", 1)[-1] if mine else ""
    return {
        "type": "message",
        "id": message.pk,
        "from": "visitor" if mine else "counselor",
        "body": message.body,
        "client_id": client_id,
        "at": message.created_at.isoformat(),
    }
