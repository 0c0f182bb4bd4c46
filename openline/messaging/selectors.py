"""Conversation and message reads, always scoped to an organization.

Every read of message bodies goes through here, so encrypting bodies at rest stays a local
change. Callers that show a transcript record the read in the audit log."""

from __future__ import annotations

import hashlib

from django.db.models import Count, Max, OuterRef, QuerySet, Subquery

from openline.messaging.models import Conversation, Message

# The thread shows the latest messages only; a long transcript must not make the
# console's poll (or the page) unbounded.
THREAD_LIMIT = 200


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


def inbox_conversations(
    *, organization_id: int, number_id: int, status: str = ""
) -> QuerySet[Conversation]:
    """One number's conversations, newest first, each with its last message's body and
    direction annotated (two correlated subqueries, so a page is one query)."""
    latest = Message.objects.filter(conversation_id=OuterRef("pk")).order_by("-created_at", "-id")
    conversations = (
        Conversation.objects.filter(organization_id=organization_id, number_id=number_id)
        .select_related("contact")
        .annotate(
            last_body=Subquery(latest.values("body")[:1]),
            last_direction=Subquery(latest.values("direction")[:1]),
        )
        .order_by("-last_message_at", "-id")
    )
    if status:
        conversations = conversations.filter(status=status)
    return conversations


def conversation_queryset(*, organization_id: int) -> QuerySet[Conversation]:
    return Conversation.objects.filter(organization_id=organization_id).select_related(
        "contact", "number", "assigned_to"
    )


def thread_messages(*, conversation: Conversation) -> list[Message]:
    """The latest THREAD_LIMIT messages, oldest first."""
    recent = (
        Message.objects.filter(conversation_id=conversation.pk)
        .select_related("sender")
        .order_by("-created_at", "-id")[:THREAD_LIMIT]
    )
    return list(reversed(recent))


def thread_version(*, conversation: Conversation) -> str:
    """Changes whenever a message is added or changes status: the poll's change token."""
    agg = Message.objects.filter(conversation_id=conversation.pk).aggregate(
        count=Count("id"), last_id=Max("id"), changed=Max("status_changed_at")
    )
    changed = agg["changed"].isoformat() if agg["changed"] else ""
    raw = f"{agg['count']}:{agg['last_id']}:{changed}"
    return hashlib.blake2b(raw.encode(), digest_size=8).hexdigest()


def contact_conversations(*, organization_id: int, contact_id: int) -> QuerySet[Conversation]:
    return (
        Conversation.objects.filter(organization_id=organization_id, contact_id=contact_id)
        .select_related("number")
        .order_by("-last_message_at", "-id")
    )
