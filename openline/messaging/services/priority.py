"""A conversation's priority and why: the queue serves higher priorities first, and each
row says what raised it (a risk phrase, chat triage, a survey answer).

Priority only goes up here: a later, milder signal never lowers what an earlier one set,
and a raised priority ends a survey hold at once, so the person reaches the queue now."""

from __future__ import annotations

from openline.core.realtime import publish_on_commit
from openline.messaging.events import conversation_event
from openline.messaging.models import Conversation, ConversationStatus, Priority

MAX_REASON = 200


def conversation_raise_priority(*, conversation: Conversation, priority: int, reason: str) -> bool:
    """Raise the priority of an open conversation to ``priority`` (if lower) with its
    reason, and release a survey hold. Returns whether anything changed. Call inside a
    transaction; the queue hears of it after commit."""
    if priority <= Priority.NORMAL:
        return False
    reason = reason.strip()[:MAX_REASON]
    open_ = Conversation.objects.filter(pk=conversation.pk).exclude(
        status=ConversationStatus.CLOSED
    )
    raised = open_.filter(priority__lt=priority).update(
        priority=priority, priority_reason=reason, held_until=None
    )
    released = 0 if raised else open_.filter(held_until__isnull=False).update(held_until=None)
    if not (raised or released):
        return False
    was_held = conversation.held_until is not None
    conversation.refresh_from_db(fields=["priority", "priority_reason", "held_until", "status"])
    kind = "conversation.released" if was_held else "conversation.priority"
    publish_on_commit(
        organization_id=conversation.organization_id, event=conversation_event(conversation, kind)
    )
    return True


def conversation_release(*, conversation_id: int, organization_id: int) -> bool:
    """End a survey hold: the conversation joins the queue now. Returns whether it was held."""
    released = Conversation.objects.filter(pk=conversation_id, held_until__isnull=False).update(
        held_until=None
    )
    if released:
        conversation = Conversation.objects.get(pk=conversation_id)
        publish_on_commit(
            organization_id=organization_id,
            event=conversation_event(conversation, "conversation.released"),
        )
    return bool(released)


def conversation_set_risk_level(*, conversation: Conversation, risk_level: int | None) -> None:
    """Record the latest risk assessment's result on the conversation (shown in its pane,
    its row and on the contact). Call inside a transaction."""
    Conversation.objects.filter(pk=conversation.pk).update(risk_level=risk_level)
    conversation.risk_level = risk_level
    publish_on_commit(
        organization_id=conversation.organization_id,
        event=conversation_event(conversation, "conversation.risk"),
    )
