"""Conversation and message reads, always scoped to an organization.

Every read of message bodies goes through here, so encrypting bodies at rest stays a local
change. Callers that show a transcript record the read in the audit log."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, TypedDict

from django.db.models import (
    BooleanField,
    Case,
    Count,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.utils import timezone

from openline.contacts.models import Contact
from openline.core.models import Membership
from openline.messaging import sql
from openline.messaging.models import (
    Call,
    CallStatus,
    Channel,
    Conversation,
    ConversationNote,
    ConversationRead,
    ConversationStatus,
    Direction,
    InboundEvent,
    Message,
    MessageStatus,
)

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

# The thread shows the latest messages only; a long transcript must not make the
# console's poll (or the page) unbounded.
THREAD_LIMIT = 200


def conversation_list(
    *, organization_id: int, status: str | None = None, number: str | None = None
) -> QuerySet[Conversation]:
    """Newest activity first."""
    conversations = Conversation.objects.filter(organization_id=organization_id).exclude(
        channel=Channel.ALERT  # staff alert texts and confirmation codes: read by nobody
    )
    if status:
        conversations = conversations.filter(status=status)
    if number:
        conversations = conversations.filter(number__e164=number)
    return conversations.select_related("contact", "number").order_by("-last_message_at", "-id")


def conversation_get(*, organization_id: int, conversation_id: int) -> Conversation:
    """Raises Conversation.DoesNotExist, also for another organization's conversation."""
    return Conversation.objects.exclude(channel=Channel.ALERT).get(
        organization_id=organization_id, pk=conversation_id
    )


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


def contact_conversations(
    *, organization_id: int, contact_id: int, membership: Membership | None = None
) -> QuerySet[Conversation]:
    """A person's conversations, newest first: those ``membership`` may open when given,
    never the staff-alert records."""
    conversations = Conversation.objects.filter(
        organization_id=organization_id, contact_id=contact_id
    ).exclude(channel=Channel.ALERT)
    if membership is not None:
        conversations = conversations.filter(readable_by(membership))
    return conversations.select_related("number").order_by("-last_message_at", "-id")


# --- the console's queue views ---------------------------------------------------------

QUEUE_VIEWS = ("waiting", "mine", "all", "closed")


@dataclass(frozen=True, slots=True)
class QueueFilter:
    view: str = "waiting"
    number_id: int | None = None
    query: str = ""
    unread_only: bool = False


def not_held(now: datetime | None = None) -> Q:
    """Conversations in the queue: not held for a pre-conversation survey, or held past
    the hold's end (a survey never keeps a person from the queue longer than that)."""
    return Q(held_until__isnull=True) | Q(held_until__lte=now or timezone.now())


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
    if view == "waiting":
        conversations = conversations.filter(not_held())
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


class _Unread(TypedDict):
    read_at: datetime | None
    marked_unread: bool | None
    unread: bool


def _with_unread(
    conversations: QuerySet[Conversation], user_id: int
) -> QuerySet[WithAnnotations[Conversation, _Unread]]:
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
    return sql.message_search_conversation_ids(
        organization_id=organization_id,
        words=words,
        statuses=scope.statuses,
        holder_id=scope.holder_id,
        limit=SEARCH_MESSAGES,
    )


def queue_counts(*, membership: Membership) -> dict[str, int]:
    """Badges for the Waiting and Mine tabs."""
    base = Conversation.objects.filter(organization_id=membership.organization_id)
    return {
        "waiting": base.filter(not_held(), status=ConversationStatus.WAITING).count(),
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


def readable_by(membership: Membership) -> Q:
    """The conversations ``membership`` may open, as a filter: conversation_access's read
    rule (supervisors and admins every one; others the waiting queue, what they hold or
    held, and closed ones nobody held). A test checks the two agree."""
    staff_alerts = Q(channel=Channel.ALERT)  # alert texts and confirmation codes: nobody
    if membership.can_manage:
        return ~staff_alerts
    nobodys = Q(
        assigned_to__isnull=True,
        status__in=(ConversationStatus.WAITING, ConversationStatus.CLOSED),
    )
    return (nobodys | Q(assigned_to_id=membership.user_id)) & ~staff_alerts


def _earlier(conversation: Conversation) -> QuerySet[Conversation]:
    """This person's conversations on the same inbox before this one."""
    return Conversation.objects.filter(
        organization_id=conversation.organization_id,
        contact_id=conversation.contact_id,
        number_id=conversation.number_id,
        pk__lt=conversation.pk,
    )


def earlier_messages(*, conversation: Conversation, limit: int = 50) -> list[Message]:
    """The latest messages of this person's earlier conversations on the same inbox, oldest
    first, whoever may open them: shown to people only through ``earlier_history``."""
    recent = (
        Message.objects.filter(conversation__in=_earlier(conversation))
        .select_related("sender")
        .order_by("-created_at", "-id")[:limit]
    )
    return list(reversed(recent))


@dataclass(frozen=True, slots=True)
class EarlierHistory:
    """What a new conversation shows of the earlier ones: the latest messages of those the
    member may open, which of them those messages come from (each a transcript read), and
    how many others there are (said, never shown)."""

    messages: list[Message]
    conversation_ids: list[int]
    hidden: int


def earlier_history(
    *, conversation: Conversation, membership: Membership, limit: int = 50
) -> EarlierHistory:
    """A reopened conversation's history, by the same rule as opening each earlier one."""
    earlier = _earlier(conversation).annotate(
        readable=Case(
            When(readable_by(membership), then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        )
    )
    flags = dict(earlier.values_list("pk", "readable"))
    readable = [pk for pk, ok in flags.items() if ok]
    messages: list[Message] = []
    if readable:
        recent = (
            Message.objects.filter(conversation_id__in=readable)
            .select_related("sender")
            .order_by("-created_at", "-id")[:limit]
        )
        messages = list(reversed(recent))
    shown = list(dict.fromkeys(m.conversation_id for m in messages))
    return EarlierHistory(messages, shown, hidden=len(flags) - len(readable))


def transfer_targets(*, organization_id: int, exclude_user_id: int | None) -> list[Membership]:
    """Active members a conversation can be handed to (everyone but its holder), by name."""
    members = Membership.objects.filter(
        organization_id=organization_id, is_active=True
    ).select_related("user")
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


# --- parked inbound events (messaging.services.parked) -------------------------------------

PARKED_LIST_LIMIT = 200


@dataclass(frozen=True, slots=True)
class ParkedSummary:
    count: int
    oldest_received_at: datetime | None


@dataclass(frozen=True, slots=True)
class ParkedEvent:
    """A parked inbound event as admins see it: never its text, and only the phone's last
    four digits (enough to tell two apart, not to identify a person)."""

    id: int
    received_at: datetime
    inbox: str
    phone_ending: str
    attempts: int


def inbound_parked(*, organization_id: int | None) -> QuerySet[InboundEvent]:
    """Inbound events processing gave up on (MAX_ATTEMPTS failures). ``None`` means every
    organization: for operators (/healthz, the CLI, automatic retries), never for members."""
    from openline.messaging.services.inbound import MAX_ATTEMPTS

    events = InboundEvent.objects.filter(processed_at__isnull=True, attempts__gte=MAX_ATTEMPTS)
    if organization_id is not None:
        events = events.filter(organization_id=organization_id)
    return events


def inbound_parked_summary(*, organization_id: int | None) -> ParkedSummary:
    """How many are parked and when the oldest arrived, in one query (served by the
    pending-events index: only unprocessed rows are looked at)."""
    found = inbound_parked(organization_id=organization_id).aggregate(
        count=Count("id"), oldest=Min("received_at")
    )
    return ParkedSummary(count=found["count"], oldest_received_at=found["oldest"])


def inbound_parked_list(
    *, organization_id: int, limit: int = PARKED_LIST_LIMIT
) -> list[ParkedEvent]:
    """The organization's parked events, oldest first, without their text."""
    rows = (
        inbound_parked(organization_id=organization_id)
        .order_by("id")
        .values_list("id", "received_at", "number__name", "number__e164", "from_number", "attempts")
    )[:limit]
    return [
        ParkedEvent(pk, received_at, name or e164, phone[-4:], attempts)
        for pk, received_at, name, e164, phone, attempts in rows
    ]


def messages_waiting_to_send(*, organization_id: int, number_ids: list[int]) -> int:
    """Outbound texts from these numbers that the send service queued and dispatch has not
    handed to the carrier yet: the queue the numbers' rate limits drain. Read through
    message_unsettled_idx (``sql.messages_unsettled``), so it costs the same however many
    texts were ever sent."""
    return Message.objects.filter(
        sql.messages_unsettled(),
        organization_id=organization_id,
        direction=Direction.OUTBOUND,
        status=MessageStatus.QUEUED,
        conversation__number_id__in=number_ids,
    ).count()


def calls_waiting_to_place(*, organization_id: int, number_ids: list[int]) -> int:
    """Calls from these numbers that the call service queued and dispatch has not placed
    yet (ringing and answered calls are the provider's, not a queue here)."""
    return Call.objects.filter(
        organization_id=organization_id, number_id__in=number_ids, status=CallStatus.QUEUED
    ).count()
