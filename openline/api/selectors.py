"""Conversation reads for the API, always scoped to an organization.

These belong in ``openline/messaging/selectors.py`` (with the console's inbox queries); they
live here until that module exists, so the API does not reach into another app's files."""

from __future__ import annotations

from django.db.models import QuerySet

from openline.messaging.models import Conversation, Message


def conversation_list(
    *, organization_id: int, status: str | None = None, number: str | None = None
) -> QuerySet[Conversation]:
    """Newest activity first."""
    conversations = Conversation.objects.filter(organization_id=organization_id)
    if status:
        conversations = conversations.filter(status=status)
    if number:
        conversations = conversations.filter(number__e164=number)
    return conversations.select_related("contact", "number").order_by("-last_message_at", "-id")


def conversation_get(*, organization_id: int, conversation_id: int) -> Conversation:
    """Raises Conversation.DoesNotExist, also for another organization's conversation."""
    return Conversation.objects.get(organization_id=organization_id, pk=conversation_id)


def conversation_messages(*, conversation: Conversation) -> QuerySet[Message]:
    """The transcript, oldest first. Callers record the read in the audit log."""
    return Message.objects.filter(
        organization_id=conversation.organization_id, conversation=conversation
    ).order_by("created_at", "id")
