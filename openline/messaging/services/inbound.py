"""Inbound processing: acknowledged InboundEvents become messages in conversations.

Idempotent: processing an event twice (a crash between steps, two workers) stores one
message."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import F
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


class _Batch:
    """Contacts and open conversations for a batch of events, loaded in two queries."""

    def __init__(self, events: list[InboundEvent]) -> None:
        phones = {(e.organization_id, e.from_number) for e in events}
        self.contacts: dict[tuple[int, str], Contact] = {
            (c.organization_id, c.phone): c
            for c in Contact.objects.filter(
                organization_id__in={p[0] for p in phones}, phone__in={p[1] for p in phones}
            )
        }
        self.open: dict[tuple[int, int], Conversation] = {}
        for conversation in (
            Conversation.objects.filter(contact__in=list(self.contacts.values()))
            .exclude(status=ConversationStatus.CLOSED)
            .order_by("id")
        ):
            self.open[(conversation.contact_id, conversation.number_id)] = conversation

    def contact(self, event: InboundEvent) -> Contact:
        key = (event.organization_id, event.from_number)
        if key not in self.contacts:
            self.contacts[key], _ = contact_get_or_create(
                organization_id=event.organization_id, phone=event.from_number
            )
        return self.contacts[key]

    def conversation(
        self, *, contact: Contact, event: InboundEvent, keyword_only: bool
    ) -> tuple[Conversation, bool]:
        """The open conversation, or a new waiting one. A bare keyword (STOP, HELP...) does
        not put anyone in the queue: it joins the latest conversation, or a closed one."""
        key = (contact.pk, event.number_id)
        if key in self.open:
            return self.open[key], False
        if keyword_only:
            latest = (
                Conversation.objects.filter(contact=contact, number_id=event.number_id)
                .order_by("-id")
                .first()
            )
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
        if not keyword_only:
            self.open[key] = conversation
        return conversation, True


def inbound_process(*, event_id: int) -> Message | None:
    """Process one event (if still pending); the batch path below is the usual one."""
    with transaction.atomic():
        event = (
            InboundEvent.objects.select_for_update()
            .filter(pk=event_id, processed_at__isnull=True)
            .first()
        )
        if event is None:
            return None
        existing = Message.objects.filter(inbound_event=event).first()
        message = existing or _process(event, _Batch([event]))
        _mark_processed([event.pk])
        return message


MAX_ATTEMPTS = 5


def inbound_process_pending(limit: int = 100) -> int:
    """Process a batch of waiting events, oldest first, in one transaction (each event in
    its own savepoint). Returns how many events were handled."""
    with transaction.atomic():
        events = list(
            InboundEvent.objects.select_for_update(skip_locked=True)
            .filter(processed_at__isnull=True, attempts__lt=MAX_ATTEMPTS)
            .order_by("id")[:limit]
        )
        if not events:
            return 0
        done = set(
            Message.objects.filter(inbound_event__in=events).values_list(
                "inbound_event_id", flat=True
            )
        )
        batch = _Batch(events)
        processed, failed = [], []
        for event in events:
            if event.pk not in done:
                try:
                    with transaction.atomic():
                        _process(event, batch)
                except Exception:
                    logger.exception("processing inbound event %s failed", event.pk)
                    failed.append(event.pk)
                    batch = _Batch(events)  # the savepoint rolled back what it had cached
                    continue
            processed.append(event.pk)
        _mark_processed(processed)
        if failed:
            InboundEvent.objects.filter(pk__in=failed).update(attempts=F("attempts") + 1)
    return len(events)


def _process(event: InboundEvent, batch: _Batch) -> Message:
    contact = batch.contact(event)
    keyword = match_keyword(event.body)
    conversation, created = batch.conversation(
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
    if not created:
        conversation.last_message_at = event.received_at
        conversation.save(update_fields=["last_message_at"])
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


def _mark_processed(event_ids: list[int]) -> None:
    if event_ids:
        InboundEvent.objects.filter(pk__in=event_ids).update(processed_at=timezone.now())
