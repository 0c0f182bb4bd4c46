"""The one send service. Every outbound text (console, API, auto-response, alert, broadcast)
goes through ``message_send``; ``message_dispatch`` re-checks consent at the last moment."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from openline.billing.models import CreditPurpose
from openline.billing.services import (
    CreditError,
    credits_debit_message,
    credits_for_sms,
    credits_refund_message,
)
from openline.contacts.models import Contact
from openline.contacts.phones import InvalidPhoneNumber, normalize_phone
from openline.contacts.services.consent import (
    Refusal,
    consent_record_provider_opt_out,
    consent_refusal,
)
from openline.contacts.services.contacts import contact_get_or_create
from openline.core.realtime import publish_on_commit, publish_to_visitor_on_commit
from openline.messaging.events import conversation_event, publish_message_event, visitor_view
from openline.messaging.models import (
    STATUS_RANK,
    Channel,
    Conversation,
    ConversationStatus,
    Direction,
    Message,
    MessageKind,
    MessageStatus,
)
from openline.messaging.segments import count_segments
from openline.providers.models import Number

logger = logging.getLogger(__name__)


class SendRefused(ValueError):
    """The message may not be sent. ``code`` is stable for API clients."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# Kinds an unreviewed opt-out request holds back (contacts decides; messaging names kinds).
AUTOMATED_KINDS = frozenset({MessageKind.AUTOMATED, MessageKind.BULK, MessageKind.ALERT})


def send_refusal(
    *,
    contact: Contact,
    kind: str = MessageKind.PERSONAL,
    consent_event_id: int | None = None,
    number: Number | None = None,
) -> Refusal | None:
    """Why a message of ``kind`` may not go to ``contact`` (from ``number``: consent through
    a simulated number is kept apart) now, or None if it may: ``consent_refusal`` decides.

    The opt-out confirmation (kind CONSENT) is the one message allowed after an opt-out,
    and only for the latest opt-out event."""
    return consent_refusal(
        contact=contact,
        automated=kind in AUTOMATED_KINDS,
        confirming_event_id=consent_event_id if kind == MessageKind.CONSENT else None,
        simulated=None if number is None else number.simulated,  # None: the org's own view
    )


def reply_refusal(conversation: Conversation) -> Refusal | None:
    """Why a reply into ``conversation`` may not go now: for texts the person's consent,
    for web chat whether the visitor's chat is still open."""
    if conversation.channel != Channel.CHAT:
        return send_refusal(contact=conversation.contact, number=conversation.number)
    # The visitor's session, through its reverse relation: messaging does not import chat.
    ended = not Conversation.objects.filter(
        pk=conversation.pk, chat_session__isnull=False, chat_session__ended_at__isnull=True
    ).exists()
    if ended or conversation.status == ConversationStatus.CLOSED:
        return Refusal("chat_ended", "the visitor's chat has ended; there is nobody to reply to")
    return None


def _validate_body(body: str) -> str:
    if not body or not body.strip():
        raise SendRefused("invalid_body", "message body is empty")
    if len(body) > settings.OPENLINE_MAX_BODY_CHARS:
        raise SendRefused(
            "invalid_body",
            f"message body is {len(body)} characters; the limit is "
            f"{settings.OPENLINE_MAX_BODY_CHARS}",
        )
    return body


def _pick_number(
    *,
    organization_id: int,
    from_number: str | None,
    number_id: int | None,
    conversation: Conversation | None,
) -> Number:
    numbers = Number.objects.filter(organization_id=organization_id, is_active=True)
    if number_id is not None:
        number = numbers.filter(pk=number_id).first()
        if number is None:
            raise SendRefused("invalid_from", "that number is not one of this organization's")
        return number
    if from_number:
        try:
            e164 = normalize_phone(from_number)
        except InvalidPhoneNumber as exc:
            raise SendRefused("invalid_from", str(exc)) from exc
        number = numbers.filter(e164=e164).first()
        if number is None:
            raise SendRefused("invalid_from", f"{e164} is not one of this organization's numbers")
        return number
    if conversation is not None:
        return conversation.number
    number = numbers.order_by("id").first()
    if number is None:
        raise SendRefused("no_number", "this organization has no active number to send from")
    return number


def _open_conversation(
    *, contact: Contact, number: Number, sender_id: int | None = None
) -> Conversation:
    """Where a text to this person on this inbox goes: their open conversation; else a new
    active one held by the staff member who starts it; else (a text the system sends: API,
    welcome, reminder...) a closed one, so that the person's reply opens a new waiting
    conversation with these texts as its history. A conversation is always either
    waiting or held by someone: never active with nobody to see the reply."""
    open_ones = Conversation.objects.filter(contact=contact, number=number).exclude(
        status=ConversationStatus.CLOSED
    )
    conversation = open_ones.first()
    if conversation is not None:
        return conversation
    if sender_id is None:
        return _system_conversation(contact=contact, number=number)
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(
                organization_id=contact.organization_id,
                number=number,
                contact=contact,
                status=ConversationStatus.ACTIVE,
                last_message_at=timezone.now(),
                assigned_to_id=sender_id,
                assigned_at=timezone.now(),
            )
    except IntegrityError:  # the person's text opened one a moment ago
        return open_ones.get()
    publish_on_commit(
        organization_id=contact.organization_id,
        event=conversation_event(conversation, "conversation.created"),
    )
    return conversation


def _system_conversation(*, contact: Contact, number: Number) -> Conversation:
    """A closed conversation that holds only texts the system sent this person (no reply
    from them, nobody assigned): the latest such one, or a new one."""
    latest = (
        Conversation.objects.filter(contact=contact, number=number, channel=Channel.SMS)
        .order_by("-pk")
        .first()
    )
    if (
        latest is not None
        and latest.status == ConversationStatus.CLOSED
        and latest.assigned_to_id is None
        and not latest.messages.filter(direction=Direction.INBOUND).exists()
    ):
        return latest
    now = timezone.now()
    conversation = Conversation.objects.create(
        organization_id=contact.organization_id,
        number=number,
        contact=contact,
        status=ConversationStatus.CLOSED,
        last_message_at=now,
        closed_at=now,
    )
    publish_on_commit(
        organization_id=contact.organization_id,
        event=conversation_event(conversation, "conversation.created"),
    )
    return conversation


def _alert_conversation(*, contact: Contact, number: Number) -> Conversation:
    """Where alerts to a staff phone from this inbox are kept: one closed conversation of
    channel "alert", outside the queue (a reply from that phone opens a normal one)."""
    conversation = (
        Conversation.objects.filter(contact=contact, number=number, channel=Channel.ALERT)
        .order_by("-pk")
        .first()
    )
    if conversation is None:
        now = timezone.now()
        conversation = Conversation.objects.create(
            organization_id=contact.organization_id,
            number=number,
            contact=contact,
            channel=Channel.ALERT,
            status=ConversationStatus.CLOSED,
            last_message_at=now,
            closed_at=now,
        )
    return conversation


@transaction.atomic
def message_send(
    *,
    organization_id: int,
    body: str,
    to: str | None = None,
    conversation: Conversation | None = None,
    from_number: str | None = None,
    number_id: int | None = None,
    sender_id: int | None = None,
    kind: str = MessageKind.PERSONAL,
    consent_event_id: int | None = None,
) -> Message:
    """Queue a text to ``to`` (any format) or into ``conversation``, from ``number_id`` or
    ``from_number`` (E.164) or the conversation's number or the organization's first;
    raise SendRefused if it may not be sent. Dispatch happens after commit."""
    body = _validate_body(body)
    if conversation is not None and conversation.channel == Channel.CHAT:
        return _chat_send(conversation=conversation, body=body, sender_id=sender_id)
    if conversation is not None:
        contact = conversation.contact
    else:
        try:
            phone = normalize_phone(to or "")
        except InvalidPhoneNumber as exc:
            raise SendRefused("invalid_phone", str(exc)) from exc
        contact, _ = contact_get_or_create(organization_id=organization_id, phone=phone)
    number = _pick_number(
        organization_id=organization_id,
        from_number=from_number,
        number_id=number_id,
        conversation=conversation,
    )
    refusal = send_refusal(
        contact=contact, kind=kind, consent_event_id=consent_event_id, number=number
    )
    if refusal is not None:
        raise SendRefused(refusal.code, refusal.reason)
    if kind == MessageKind.ALERT:
        conversation = _alert_conversation(contact=contact, number=number)
    elif conversation is None or conversation.number_id != number.pk:
        conversation = _open_conversation(contact=contact, number=number, sender_id=sender_id)
    info = count_segments(body)
    now = timezone.now()
    message = Message.objects.create(
        organization_id=organization_id,
        conversation=conversation,
        direction=Direction.OUTBOUND,
        kind=kind,
        body=body,
        segments=info.segments,
        encoding=info.encoding,
        status=MessageStatus.QUEUED,
        sender_id=sender_id,
        consent_event_id=consent_event_id,
        created_at=now,
        status_changed_at=now,
    )
    conversation_touch_sent(conversation_id=conversation.pk, at=now, kind=kind)
    _debit(message, contact.phone)
    publish_message_event(message, "message.created")
    message_id, priority = message.pk, dispatch_priority(kind)
    transaction.on_commit(lambda: enqueue_dispatch(message_id, priority=priority))
    return message


def conversation_touch_sent(*, conversation_id: int, at: datetime, kind: str) -> None:
    """A text went out in the conversation at ``at``: its latest activity, and the time of
    its first personal reply if this is it (one UPDATE either way)."""
    changes: dict[str, Any] = {"last_message_at": at}
    if kind == MessageKind.PERSONAL:
        changes["first_reply_at"] = Coalesce(F("first_reply_at"), Value(at))
    Conversation.objects.filter(pk=conversation_id).update(**changes)


# What each kind of text is counted as on the Credits page.
_CREDIT_PURPOSE = {
    MessageKind.ALERT: CreditPurpose.ALERT,
    MessageKind.AUTOMATED: CreditPurpose.AUTO_REPLY,
    MessageKind.REMINDER: CreditPurpose.REMINDER,
    MessageKind.CAMPAIGN: CreditPurpose.CAMPAIGN,
}


def _debit(message: Message, phone: str) -> None:
    """Count a text against the organization's credits. A broadcast's texts (BULK) were
    paid for by its reservation; every other text is debited now and never held back for
    credits (what is missing is owed). A country without a rate is not charged: logged,
    so the rate can be added."""
    if message.kind == MessageKind.BULK:
        return
    try:
        credits = credits_for_sms(phone=phone, segments=message.segments)
    except CreditError:
        logger.warning("no SMS credit rate for message=%s; not charged", message.pk)
        return
    credits_debit_message(
        organization_id=message.organization_id,
        message_id=message.pk,
        credits=credits,
        purpose=_CREDIT_PURPOSE.get(MessageKind(message.kind), CreditPurpose.SMS),
    )


@transaction.atomic
def _chat_send(*, conversation: Conversation, body: str, sender_id: int | None) -> Message:
    """A web-chat reply: no carrier and no phone number; it goes to the visitor's socket,
    and only while their chat is open. The widget's receipt marks it delivered."""
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    refusal = reply_refusal(conversation)
    if refusal is not None:
        raise SendRefused(refusal.code, refusal.reason)
    now = timezone.now()
    message = Message.objects.create(
        organization_id=conversation.organization_id,
        conversation=conversation,
        direction=Direction.OUTBOUND,
        kind=MessageKind.PERSONAL,
        body=body,
        segments=0,
        encoding="",
        status=MessageStatus.SENT,
        sender_id=sender_id,
        created_at=now,
        status_changed_at=now,
    )
    conversation_touch_sent(conversation_id=conversation.pk, at=now, kind=MessageKind.PERSONAL)
    publish_message_event(message, "message.created")
    publish_to_visitor_on_commit(conversation_id=conversation.pk, event=visitor_view(message))
    return message


def dispatch_priority(kind: str) -> int:
    """Broadcast texts wait behind every other text in the dispatch queue: a counselor's
    reply or an opt-out confirmation is not stuck behind thousands of bulk texts."""
    return 0 if kind == MessageKind.BULK else 10


def enqueue_dispatch(message_id: int, delay: float = 0, *, priority: int = 0) -> None:
    from openline.messaging.tasks import dispatch_message

    options: dict[str, Any] = {"queue_name": "dispatch", "priority": priority}
    if delay > 0:
        options["run_after"] = timezone.now() + timedelta(seconds=delay)
    dispatch_message.using(**options).enqueue(message_id)


def message_set_status(
    *, message: Message, status: str, error_code: str = "", error_message: str = ""
) -> bool:
    """Move ``message`` forward to ``status``; a step backwards or sideways is ignored."""
    if STATUS_RANK[MessageStatus(status)] <= STATUS_RANK[MessageStatus(message.status)]:
        return False
    message.status = status
    message.status_changed_at = timezone.now()
    fields = ["status", "status_changed_at"]
    if error_code:
        message.error_code = error_code[:20]
        message.error_message = error_message[:300]
        fields += ["error_code", "error_message"]
    message.save(update_fields=fields)
    if status == MessageStatus.FAILED and not message.provider_message_id:
        # It failed before the carrier took it: whatever it was charged comes back.
        credits_refund_message(organization_id=message.organization_id, message_id=message.pk)
    publish_message_event(message, "message.status")
    return True


def record_provider_opt_out(*, message: Message, error_code: str) -> None:
    """The carrier says the recipient opted out (e.g. Twilio 21610): the ledger agrees."""
    conversation = message.conversation
    consent_record_provider_opt_out(
        organization_id=message.organization_id,
        phone=conversation.contact.phone,
        error_code=error_code,
        number_id=conversation.number_id,
        simulated=conversation.number.simulated,
    )
