"""Conversation and message reads, always scoped to an organization.

Every read of message bodies goes through here, so encrypting bodies at rest stays a local
change. Callers that show a transcript record the read in the audit log."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    Count,
    F,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)

from openline.contacts.models import Contact
from openline.core.models import Membership
from openline.messaging.models import (
    Channel,
    Conversation,
    ConversationNote,
    ConversationRead,
    ConversationStatus,
    Message,
)

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
    """Changes whenever a message or note is added or a message changes status: the live
    thread's change token."""
    agg = Message.objects.filter(conversation_id=conversation.pk).aggregate(
        count=Count("id"), last_id=Max("id"), changed=Max("status_changed_at")
    )
    notes = ConversationNote.objects.filter(conversation_id=conversation.pk).aggregate(
        last=Max("id")
    )
    changed = agg["changed"].isoformat() if agg["changed"] else ""
    raw = f"{agg['count']}:{agg['last_id']}:{changed}:{notes['last']}"
    return hashlib.blake2b(raw.encode(), digest_size=8).hexdigest()


def contact_conversations(*, organization_id: int, contact_id: int) -> QuerySet[Conversation]:
    return (
        Conversation.objects.filter(organization_id=organization_id, contact_id=contact_id)
        .select_related("number")
        .order_by("-last_message_at", "-id")
    )


# --- the console's queue views ---------------------------------------------------------

QUEUE_VIEWS = ("waiting", "mine", "all", "closed")


@dataclass(frozen=True, slots=True)
class QueueFilter:
    view: str = "waiting"
    number_id: int | None = None
    query: str = ""
    unread_only: bool = False


def queue_conversations(*, membership: Membership, filters: QueueFilter) -> QuerySet[Conversation]:
    """One of the console's views for this member, each row annotated with ``unread`` (for
    this user) and the last message's body and direction. Counselors get no "all" view and
    see only the closed conversations they held."""
    org_id = membership.organization_id
    view = filters.view if filters.view in QUEUE_VIEWS else "waiting"
    if view == "all" and not membership.can_manage:
        view = "waiting"
    scope = _view_scope(view, membership)
    conversations = Conversation.objects.filter(
        organization_id=org_id, status__in=scope.statuses
    ).exclude(channel=Channel.ALERT)
    if scope.holder_id is not None:
        conversations = conversations.filter(assigned_to_id=scope.holder_id)
    # The queue is served by priority (from pre-chat triage), then oldest first; the other
    # views show the latest activity first.
    order = ("-priority", "created_at", "id") if view == "waiting" else ("-last_message_at", "-id")
    conversations = conversations.order_by(*order)
    if filters.number_id:
        conversations = conversations.filter(number_id=filters.number_id)
    if filters.query.strip():
        conversations = conversations.filter(_search_q(org_id, filters.query, scope))
    conversations = _with_unread(conversations, membership.user_id)
    if filters.unread_only:
        conversations = conversations.filter(unread=True)
    latest = Message.objects.filter(conversation_id=OuterRef("pk")).order_by("-created_at", "-id")
    return conversations.select_related("contact", "assigned_to").annotate(
        last_body=Subquery(latest.values("body")[:1]),
        last_direction=Subquery(latest.values("direction")[:1]),
    )


def _with_unread(conversations: QuerySet[Conversation], user_id: int) -> QuerySet[Conversation]:
    reads = ConversationRead.objects.filter(conversation_id=OuterRef("pk"), user_id=user_id)
    return conversations.annotate(
        read_at=Subquery(reads.values("read_at")[:1]),
        marked_unread=Subquery(reads.values("marked_unread")[:1]),
    ).annotate(
        unread=Case(
            When(marked_unread=True, then=Value(True)),
            When(read_at__isnull=True, then=Value(True)),
            When(read_at__lt=F("last_message_at"), then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        )
    )


# Search narrows to the best candidates first, each found through an index: contacts whose
# name or number matches, and the conversations of the most recent matching messages.
SEARCH_CONTACTS = 300
SEARCH_MESSAGES = 500


@dataclass(frozen=True, slots=True)
class _Scope:
    """Which conversations a view shows (also used to narrow message matches to it)."""

    statuses: tuple[str, ...]
    holder_id: int | None = None


def _view_scope(view: str, membership: Membership) -> _Scope:
    if view == "waiting":
        return _Scope((ConversationStatus.WAITING,))
    if view == "mine":
        return _Scope((ConversationStatus.ACTIVE,), membership.user_id)
    if view == "closed":
        holder = None if membership.can_manage else membership.user_id
        return _Scope((ConversationStatus.CLOSED,), holder)
    return _Scope((ConversationStatus.WAITING, ConversationStatus.ACTIVE))


def _search_q(organization_id: int, query: str, scope: _Scope) -> Q:
    """Contact name, phone digits, or words in any message (full-text, last word as a
    prefix so results narrow while typing)."""
    text = query.strip()[:100]
    who = Q(name__icontains=text)
    digits = re.sub(r"\D", "", text)
    if len(digits) >= 3 and len(digits) * 2 >= len(text.replace(" ", "")):
        who |= Q(phone__contains=digits)
    contact_ids = list(
        Contact.objects.filter(who, organization_id=organization_id).values_list("id", flat=True)[
            :SEARCH_CONTACTS
        ]
    )
    q = Q(contact_id__in=contact_ids)
    words = re.findall(r"\w+", text)[:8]
    if words:
        q |= Q(pk__in=_message_match(organization_id, words, scope))
    return q


def _message_match(organization_id: int, words: list[str], scope: _Scope) -> list[int]:
    """Conversations of the view's most recent messages containing all the words."""
    in_view = f"c.status IN ({', '.join(['%s'] * len(scope.statuses))})"
    view_params: list[object] = list(scope.statuses)
    if scope.holder_id is not None:
        in_view += " AND c.assigned_to_id = %s"
        view_params.append(scope.holder_id)
    if connection.vendor == "postgresql":
        terms = " & ".join(words[:-1] + [words[-1] + ":*"])
        head = (
            "SELECT m.conversation_id FROM messaging_message m"
            " JOIN messaging_conversation c ON c.id = m.conversation_id"
            " WHERE m.organization_id = %s"
            " AND to_tsvector('simple', m.body) @@ to_tsquery('simple', %s)"
        )
        order = "ORDER BY m.id DESC LIMIT %s"
        params: list[object] = [organization_id, terms, *view_params, SEARCH_MESSAGES]
    else:
        terms = " ".join(f'"{w}"' for w in words[:-1]) + f' "{words[-1]}"*'
        head = (
            "SELECT m.conversation_id FROM messaging_message_fts f"
            " JOIN messaging_message m ON m.id = f.rowid"
            " JOIN messaging_conversation c ON c.id = m.conversation_id"
            " WHERE messaging_message_fts MATCH %s AND m.organization_id = %s"
        )
        order = "ORDER BY f.rowid DESC LIMIT %s"
        params = [terms.strip(), organization_id, *view_params, SEARCH_MESSAGES]
    sql = f"{head} AND {in_view} {order}"  # noqa: S608 (in_view holds placeholders only)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list({row[0] for row in cursor.fetchall()})


def queue_counts(*, membership: Membership) -> dict[str, int]:
    """Badges for the Waiting and Mine tabs."""
    base = Conversation.objects.filter(organization_id=membership.organization_id)
    return {
        "waiting": base.filter(status=ConversationStatus.WAITING).count(),
        "mine": base.filter(
            assigned_to_id=membership.user_id, status=ConversationStatus.ACTIVE
        ).count(),
    }


def conversation_notes(*, conversation: Conversation) -> list[ConversationNote]:
    return list(
        ConversationNote.objects.filter(conversation_id=conversation.pk)
        .select_related("author")
        .order_by("created_at", "id")[:THREAD_LIMIT]
    )


def earlier_messages(*, conversation: Conversation, limit: int = 50) -> list[Message]:
    """The latest messages of this person's earlier conversations on the same inbox, oldest
    first: a reopened conversation shows its history."""
    recent = (
        Message.objects.filter(
            conversation__contact_id=conversation.contact_id,
            conversation__number_id=conversation.number_id,
            conversation_id__lt=conversation.pk,
        )
        .select_related("sender")
        .order_by("-created_at", "-id")[:limit]
    )
    return list(reversed(recent))


def transfer_targets(*, organization_id: int, exclude_user_id: int | None) -> list[Membership]:
    """Members a conversation can be handed to (everyone but its holder), by name."""
    members = Membership.objects.filter(organization_id=organization_id).select_related("user")
    if exclude_user_id:
        members = members.exclude(user_id=exclude_user_id)
    return sorted(members, key=lambda m: str(m.user).lower())


def conversation_history(*, conversation: Conversation) -> list[Message | ConversationNote]:
    """The whole transcript with internal notes, oldest first, for exports (unbounded:
    callers stream or print it and record the export in the audit log)."""
    messages = Message.objects.filter(conversation_id=conversation.pk).select_related("sender")
    notes = ConversationNote.objects.filter(conversation_id=conversation.pk).select_related(
        "author"
    )
    items: list[Message | ConversationNote] = [*messages, *notes]
    return sorted(items, key=lambda item: (item.created_at, item.pk))
