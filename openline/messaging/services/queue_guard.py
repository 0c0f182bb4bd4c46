"""The safety net behind "every text reaches a person".

A conversation is either waiting or held by an active member. Every path is built to keep
it so; this check, run by the scheduler, finds any conversation where a text from the
person sits unseen anyway (a bug, a member removed while holding conversations, a path
nobody thought of) and puts it back in the queue, with a note and a log line."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from openline.contacts.keywords import KeywordKind, match_keyword
from openline.core.models import Membership
from openline.core.realtime import publish_on_commit
from openline.messaging.events import conversation_event
from openline.messaging.models import (
    Channel,
    Conversation,
    ConversationNote,
    ConversationStatus,
    Direction,
    Message,
    NoteKind,
)

logger = logging.getLogger(__name__)

# Closed conversations are looked at while their last text is this recent: a text that
# lands in one is found on the next run, and a scheduler that was down for a while still
# catches up.
CLOSED_WINDOW = timedelta(days=1)


def conversations_requeue_unseen(*, now: datetime | None = None) -> int:
    """Put back in the queue each conversation with an unread text from the person that
    is neither waiting nor held by an active member. Returns how many moved."""
    now = now or timezone.now()
    moved = 0
    for conversation in _unheld_with_unread_text():
        moved += _requeue(conversation, "nobody active held it", now)
    for conversation in _closed_with_unread_text(now):
        moved += _requeue(conversation, "a text arrived after it was closed", now)
    return moved


def _unheld_with_unread_text() -> list[Conversation]:
    """Active conversations whose holder is nobody or no longer an active member, with a
    text from the person since it was assigned."""
    held = Membership.objects.filter(
        organization_id=OuterRef("organization_id"),
        user_id=OuterRef("assigned_to_id"),
        user__is_active=True,
        is_active=True,
    )
    unread = Message.objects.filter(
        conversation_id=OuterRef("pk"), direction=Direction.INBOUND
    ).filter(Q(created_at__gt=OuterRef("assigned_at")) | Q(conversation__assigned_at__isnull=True))
    return list(
        Conversation.objects.filter(status=ConversationStatus.ACTIVE)
        .exclude(Exists(held))
        .filter(Exists(unread))
    )


def _closed_with_unread_text(now: datetime) -> list[Conversation]:
    """Closed conversations with a text from the person after closing that nobody has
    read since, other than an opt-out keyword (STOP from someone with no open
    conversation is meant to stay out of the queue)."""
    later = Message.objects.filter(
        conversation_id=OuterRef("pk"),
        direction=Direction.INBOUND,
        created_at__gt=OuterRef("closed_at"),
    )
    candidates = (
        Conversation.objects.filter(
            status=ConversationStatus.CLOSED,
            last_message_at__gte=now - CLOSED_WINDOW,
            last_message_at__gt=F("closed_at"),
        )
        .exclude(channel=Channel.ALERT)
        .filter(Exists(later))
    )
    found = []
    for conversation in candidates:
        latest = (
            Message.objects.filter(conversation=conversation, direction=Direction.INBOUND)
            .order_by("-created_at", "-id")
            .first()
        )
        if latest is None or _opts_out(latest.body) or _read_since(conversation, latest):
            continue
        found.append(conversation)
    return found


def _opts_out(body: str) -> bool:
    match = match_keyword(body)
    return match is not None and match.kind == KeywordKind.OPT_OUT


def _read_since(conversation: Conversation, message: Message) -> bool:
    return conversation.reads.filter(read_at__gte=message.created_at).exists()


def _requeue(conversation: Conversation, why: str, now: datetime) -> int:
    previous = conversation.assigned_to_id
    try:
        with transaction.atomic():
            moved = Conversation.objects.filter(
                pk=conversation.pk, status=conversation.status, assigned_to_id=previous
            ).update(
                status=ConversationStatus.WAITING,
                assigned_to=None,
                assigned_at=now,
                closed_at=None,
                handled_automatically=False,
            )
            if not moved:
                return 0  # someone acted on it meanwhile
            ConversationNote.objects.create(
                organization_id=conversation.organization_id,
                conversation_id=conversation.pk,
                kind=NoteKind.EVENT,
                body=f"Returned to the queue by the safety check: {why}.",
                created_at=now,
            )
            conversation.refresh_from_db()
            event = conversation_event(conversation, "conversation.assigned")
            event["previous_assigned_to_id"] = previous
            publish_on_commit(organization_id=conversation.organization_id, event=event)
    except IntegrityError:
        # The person already has another open conversation here: their texts reach
        # people there. Said in the log for someone to look at.
        logger.warning("conversation %s has an unseen text but cannot reopen", conversation.pk)
        return 0
    logger.warning("returned conversation %s to the queue: %s", conversation.pk, why)
    return 1
