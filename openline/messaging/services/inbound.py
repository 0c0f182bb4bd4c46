"""Inbound processing: acknowledged InboundEvents become messages in conversations.

Idempotent: processing an event twice (a crash between steps, two workers) stores one
message."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from openline.contacts.keywords import looks_like_opt_out_request, match_keyword
from openline.contacts.models import ConsentKind, ConsentSource, Contact
from openline.contacts.services import consent_record, contact_get_or_create
from openline.core.realtime import publish_on_commit
from openline.messaging.models import (
    Conversation,
    ConversationStatus,
    Direction,
    InboundEvent,
    Message,
    MessageStatus,
)
from openline.messaging.segments import count_segments
from openline.messaging.services.consent import apply_keyword

logger = logging.getLogger(__name__)


def _conversation_for(
    *, contact: Contact, event: InboundEvent, keyword_only: bool
) -> tuple[Conversation, bool]:
    """The open conversation, or a new waiting one. A bare keyword (STOP, HELP...) does not
    put anyone in the queue: it joins the latest conversation, or starts a closed one."""
    conversations = Conversation.objects.filter(contact=contact, number_id=event.number_id)
    open_one = conversations.exclude(status=ConversationStatus.CLOSED).order_by("-id").first()
    if open_one is not None:
        return open_one, False
    if keyword_only:
        latest = conversations.order_by("-id").first()
        if latest is not None:
            return latest, False
    conversation = Conversation.objects.create(
        organization_id=event.organization_id,
        number_id=event.number_id,
        contact=contact,
        status=ConversationStatus.CLOSED if keyword_only else ConversationStatus.WAITING,
        last_message_at=event.received_at,
        closed_at=event.received_at if keyword_only else None,
    )
    return conversation, True


def inbound_process(*, event_id: int) -> Message | None:
    with transaction.atomic():
        event = (
            InboundEvent.objects.select_for_update()
            .filter(pk=event_id, processed_at__isnull=True)
            .first()
        )
        if event is None:
            return None
        return _process(event)


def _process(event: InboundEvent) -> Message:
    existing = Message.objects.filter(inbound_event=event).first()
    if existing is not None:
        _mark_processed(event)
        return existing
    contact, _ = contact_get_or_create(organization_id=event.organization_id, phone=event.from_number)
    keyword = match_keyword(event.body)
    conversation, created = _conversation_for(
        contact=contact, event=event, keyword_only=keyword is not None
    )
    info = count_segments(event.body)
    message = Message.objects.create(
        organization_id=event.organization_id,
        conversation=conversation,
        direction=Direction.INBOUND,
        body=event.body,
        segments=info.segments,
        encoding=info.encoding,
        status=MessageStatus.RECEIVED,
        provider_message_id=event.provider_message_id,
        inbound_event=event,
        created_at=event.received_at,
    )
    conversation.last_message_at = event.received_at
    conversation.save(update_fields=["last_message_at"])
    _mark_processed(event)
    org_id = event.organization_id
    if created:
        publish_on_commit(
            organization_id=org_id,
            event={"type": "conversation.created", "conversation_id": conversation.pk},
        )
    publish_on_commit(
        organization_id=org_id,
        event={
            "type": "message.created",
            "message_id": message.pk,
            "conversation_id": conversation.pk,
            "status": message.status,
        },
    )
    if keyword is not None:
        apply_keyword(conversation=conversation, match=keyword, text=event.body)
    elif looks_like_opt_out_request(event.body):
        _flag_opt_out_request(conversation, event)
    return message


def _flag_opt_out_request(conversation: Conversation, event: InboundEvent) -> None:
    consent_record(
        organization_id=event.organization_id,
        phone=conversation.contact.phone,
        kind=ConsentKind.OPT_OUT_REQUEST,
        source=ConsentSource.MESSAGE,
        text=event.body,
        number_id=event.number_id,
    )
    conversation.needs_consent_review = True
    conversation.save(update_fields=["needs_consent_review"])


def _mark_processed(event: InboundEvent) -> None:
    InboundEvent.objects.filter(pk=event.pk).update(processed_at=timezone.now())


def inbound_pending_ids(limit: int = 200) -> list[int]:
    return list(
        InboundEvent.objects.filter(processed_at__isnull=True)
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )


def inbound_process_pending(limit: int = 200) -> int:
    """Process what is waiting, oldest first. Returns how many events were handled."""
    handled = 0
    for event_id in inbound_pending_ids(limit):
        try:
            inbound_process(event_id=event_id)
        except Exception:
            logger.exception("processing inbound event %s failed", event_id)
            continue
        handled += 1
    return handled
