"""Auto-responses to texts: the offline answer, the first-contact greeting and "all
counselors are busy".

Processing enqueues the texts that may call for one after its commit (never keyword
texts, never web chat); this runs as a task. Each answer goes through the one send
service as an automated message, so an opted-out number never receives it (the refusal
is recorded instead). At most one answer per text, in this order: offline (while the
inbox is offline), busy (a new conversation when the queue is long), greeting (a new
person's first conversation in this inbox). An AutoReply row per answer, written in the
same transaction as its text, makes a replayed task a no-op; the person's row lock makes
"one offline answer per period" hold when two of their texts are answered at once."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from openline.availability.models import AutoReply, AutoReplyKind, InboxResponses
from openline.availability.responses import (
    opening_phrase,
    period_start,
    response_text,
)
from openline.availability.selectors import inboxes_online, next_opening
from openline.contacts.models import Contact
from openline.messaging.models import (
    Channel,
    Conversation,
    ConversationStatus,
    Direction,
    Message,
    MessageKind,
)
from openline.messaging.services.outbound import SendRefused, message_send

logger = logging.getLogger(__name__)


def auto_replies_send(
    *, message_ids: list[int], opened_ids: list[int], now: datetime | None = None
) -> list[AutoReply]:
    """Answer the inbound texts ``message_ids`` that call for an answer; ``opened_ids`` are
    those that opened a new conversation. Safe to run again for the same texts."""
    now = now or timezone.now()
    messages = list(
        Message.objects.filter(pk__in=message_ids, direction=Direction.INBOUND)
        .select_related("conversation__organization")
        .order_by("pk")
    )
    numbers = sorted({m.conversation.number_id for m in messages})
    if not numbers:
        return []
    settings = {r.number_id: r for r in InboxResponses.objects.filter(number_id__in=numbers)}
    online = inboxes_online(numbers, now)
    opened = set(opened_ids)
    replies = []
    for message in messages:
        responses = settings.get(message.conversation.number_id)
        if responses is None:
            continue
        number_online = online[message.conversation.number_id]
        kind = _due(message, responses, online=number_online, opened=message.pk in opened)
        try:  # one failing answer does not hold up the others
            reply = _answer(message, responses, kind, now) if kind else None
        except Exception:
            logger.exception("auto-response to message %s failed", message.pk)
            continue
        if reply is not None:
            replies.append(reply)
    return replies


def _due(message: Message, responses: InboxResponses, *, online: bool, opened: bool) -> str | None:
    """Which answer, if any, this text calls for now."""
    conversation = message.conversation
    # Someone holds it (a counselor still talking past the end of a shift): no machine.
    if conversation.channel != Channel.SMS or conversation.status != ConversationStatus.WAITING:
        return None
    if message.received_offline:
        # Still closed: a backlog worked off after the inbox opened gets no "we're closed".
        return AutoReplyKind.OFFLINE if responses.offline_on and not online else None
    if not opened or not online:
        return None
    if responses.busy_on and _waiting(conversation) >= responses.busy_threshold:
        return AutoReplyKind.BUSY
    if responses.greeting_on and _first_contact(conversation):
        return AutoReplyKind.GREETING
    return None


def _waiting(conversation: Conversation) -> int:
    return Conversation.objects.filter(
        number_id=conversation.number_id, status=ConversationStatus.WAITING
    ).count()


def _first_contact(conversation: Conversation) -> bool:
    earlier = Conversation.objects.filter(
        contact_id=conversation.contact_id, number_id=conversation.number_id, pk__lt=conversation.pk
    ).exclude(channel=Channel.ALERT)
    return not earlier.exists()


def _answered_lately(conversation: Conversation, responses: InboxResponses, now: datetime) -> bool:
    return AutoReply.objects.filter(
        contact_id=conversation.contact_id,
        number_id=conversation.number_id,
        kind=AutoReplyKind.OFFLINE,
        message__isnull=False,
        created_at__gt=period_start(responses, now),
    ).exists()


def _body(conversation: Conversation, responses: InboxResponses, kind: str, now: datetime) -> str:
    organization = conversation.organization
    if kind == AutoReplyKind.OFFLINE:
        opens = next_opening(conversation.number_id, now)
        phrase = opening_phrase(opens, tz=organization.timezone, now=now)
        return response_text(
            responses.offline_text, organization_name=organization.name, next_open=phrase
        )
    template = responses.busy_text if kind == AutoReplyKind.BUSY else responses.greeting_text
    return response_text(template, organization_name=organization.name)


def _answer(
    message: Message, responses: InboxResponses, kind: str, now: datetime
) -> AutoReply | None:
    """One answer: its record and its text together, or neither."""
    conversation = message.conversation
    with transaction.atomic():
        # One person's answers one at a time, so the period check below holds.
        Contact.objects.select_for_update().filter(pk=conversation.contact_id).first()
        if kind == AutoReplyKind.OFFLINE and _answered_lately(conversation, responses, now):
            return None
        try:
            with transaction.atomic():
                reply = AutoReply.objects.create(
                    organization_id=conversation.organization_id,
                    number_id=conversation.number_id,
                    contact_id=conversation.contact_id,
                    conversation=conversation,
                    trigger=message,
                    kind=kind,
                    created_at=now,
                )
        except IntegrityError:  # answered already (a replay, another worker)
            return None
        try:
            with transaction.atomic():
                reply.message = message_send(
                    organization_id=conversation.organization_id,
                    conversation=conversation,
                    body=_body(conversation, responses, kind, now),
                    kind=MessageKind.AUTOMATED,
                )
        except SendRefused as exc:  # opted out, not textable: recorded, never sent
            reply.refused = str(exc)[:200]
            logger.info("auto-response %s to message %s refused: %s", kind, message.pk, exc.code)
        reply.save(update_fields=["message", "refused"])
    return reply
