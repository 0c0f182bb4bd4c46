"""Dispatch: hand a queued message to its provider, once, at the sender's allowed rate."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from openline.messaging.models import Message, MessageStatus
from openline.messaging.ratelimit import limiter
from openline.messaging.services.outbound import (
    enqueue_dispatch,
    message_set_status,
    publish_message_event,
    record_provider_opt_out,
    send_refusal,
)
from openline.providers.base import ProviderError
from openline.providers.models import Number
from openline.providers.registry import get_provider

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
# Waits shorter than this are slept in the worker; longer ones go back to the queue.
MAX_INLINE_WAIT = 1.0


def retry_delay(attempt: int) -> float:
    """Exponential backoff: 2, 4, 8, 16, 32 seconds (capped at 5 minutes)."""
    return float(min(300, 2**attempt))


def status_url(number: Number) -> str:
    return f"{settings.PUBLIC_URL}/hooks/{number.provider}/{number.webhook_key}/status"


def _claim(message_id: int) -> tuple[Message, float] | None:
    """Lock the message, re-check consent and reserve throughput. Returns the message
    (now SENDING) and how long to wait, or None when there is nothing to send now."""
    message = (
        Message.objects.select_for_update()
        .select_related("conversation__contact", "conversation__number")
        .filter(pk=message_id, status=MessageStatus.QUEUED)
        .first()
    )
    if message is None:
        return None
    contact = message.conversation.contact
    # The last gate before the carrier: consent may have changed since it was queued.
    refusal = send_refusal(
        contact=contact, kind=message.kind, consent_event_id=message.consent_event_id
    )
    if refusal is not None:
        message_set_status(
            message=message,
            status=MessageStatus.FAILED,
            error_code=refusal.code,
            error_message=refusal.reason,
        )
        return None
    number = message.conversation.number
    booked, delay = limiter().reserve(
        f"number:{number.pk}",
        units=message.segments,
        per_second=number.segments_per_second,
        max_wait=MAX_INLINE_WAIT,
    )
    if not booked:
        # Come back shortly before the slot frees; nothing is held meanwhile.
        retry_in = max(delay - MAX_INLINE_WAIT / 2, 0.05)
        transaction.on_commit(lambda: enqueue_dispatch(message_id, retry_in))
        return None
    message.status = MessageStatus.SENDING
    message.attempts += 1
    message.status_changed_at = timezone.now()
    message.save(update_fields=["status", "attempts", "status_changed_at"])
    publish_message_event(message, "message.status")
    return message, delay


def message_dispatch(*, message_id: int) -> None:
    with transaction.atomic():
        claimed = _claim(message_id)
    if claimed is None:
        return
    message, delay = claimed
    if delay > 0:
        time.sleep(delay)
    number = message.conversation.number
    provider = get_provider(number.provider)
    try:
        result = provider.send(
            number,
            to=message.conversation.contact.phone,
            body=message.body,
            status_url=status_url(number),
            idempotency_key=f"openline-{message.pk}",
        )
    except ProviderError as exc:
        _handle_send_error(message, exc)
        return
    with transaction.atomic():
        message.provider_message_id = result.provider_message_id
        message.sent_at = timezone.now()
        message.error_code = message.error_message = ""  # an earlier attempt's transient error
        message.save(
            update_fields=["provider_message_id", "sent_at", "error_code", "error_message"]
        )
        message_set_status(message=message, status=result.status)


def _handle_send_error(message: Message, exc: ProviderError) -> None:
    # No message content in logs: ids and codes only.
    logger.warning(
        "send failed message=%s attempt=%s code=%s permanent=%s",
        message.pk,
        message.attempts,
        exc.code,
        exc.permanent,
    )
    with transaction.atomic():
        if exc.opted_out:
            message_set_status(
                message=message,
                status=MessageStatus.FAILED,
                error_code=exc.code,
                error_message=str(exc),
            )
            record_provider_opt_out(message=message, error_code=exc.code)
        elif exc.permanent or message.attempts >= MAX_ATTEMPTS:
            message_set_status(
                message=message,
                status=MessageStatus.FAILED,
                error_code=exc.code or "error",
                error_message=str(exc),
            )
        else:
            # Back to the queue: the one place a status may step backwards.
            Message.objects.filter(pk=message.pk).update(
                status=MessageStatus.QUEUED,
                error_code=exc.code[:20],
                error_message=str(exc)[:300],
            )
            delay = exc.retry_after or retry_delay(message.attempts)
            message_id = message.pk
            transaction.on_commit(lambda: enqueue_dispatch(message_id, delay))
