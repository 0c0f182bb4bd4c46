"""Dispatch: hand a queued message to its provider, once, at the sender's allowed rate.

Exactly once: a send is tried again (with backoff) only when the request surely did not
reach the provider. When it may have (a timeout after sending, a dropped connection, a
5xx) the message becomes UNKNOWN and reconciliation asks the provider (see reconcile.py)."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from openline.messaging.events import publish_message_event
from openline.messaging.models import Message, MessageStatus
from openline.messaging.ratelimit import limiter
from openline.messaging.services.outbound import (
    dispatch_priority,
    enqueue_dispatch,
    message_set_status,
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
        contact=contact,
        kind=message.kind,
        consent_event_id=message.consent_event_id,
        number=message.conversation.number,
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
        priority = dispatch_priority(message.kind)
        transaction.on_commit(lambda: enqueue_dispatch(message_id, retry_in, priority=priority))
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
        "send failed message=%s attempt=%s code=%s permanent=%s outcome_unknown=%s",
        message.pk,
        message.attempts,
        exc.code,
        exc.permanent,
        exc.outcome_unknown,
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
        elif exc.permanent:
            _fail(message, exc)
        elif exc.outcome_unknown:
            # Even after the last attempt: it may have gone out, so it is never just failed.
            message_mark_unknown(message=message, error_code=exc.code, error_message=str(exc))
        elif message.attempts >= MAX_ATTEMPTS:
            _fail(message, exc)
        else:  # the request surely did not arrive: trying again cannot send it twice
            message_requeue(
                message=message,
                delay=exc.retry_after or retry_delay(message.attempts),
                error_code=exc.code,
                error_message=str(exc),
            )


def _fail(message: Message, exc: ProviderError) -> None:
    message_set_status(
        message=message,
        status=MessageStatus.FAILED,
        error_code=exc.code or "error",
        error_message=str(exc),
    )


def message_mark_unknown(*, message: Message, error_code: str, error_message: str) -> None:
    """The provider may have accepted ``message`` (SENDING): mark it UNKNOWN, a sideways
    step, for reconciliation to ask the provider. Nothing is enqueued."""
    message.status = MessageStatus.UNKNOWN
    message.status_changed_at = timezone.now()
    message.error_code = error_code[:20]
    note = f"{error_message}; checking whether it went out before sending again"
    message.error_message = note[:300]
    message.save(update_fields=["status", "status_changed_at", "error_code", "error_message"])
    publish_message_event(message, "message.status")


def message_requeue(
    *, message: Message, delay: float, error_code: str = "", error_message: str = ""
) -> None:
    """Back to the queue, dispatched again after ``delay`` seconds. Call inside a
    transaction, and only when the provider surely has no copy of ``message``: the one
    place a status steps backwards."""
    now = timezone.now()
    message.status = MessageStatus.QUEUED
    message.status_changed_at = now
    message.next_attempt_at = now + timedelta(seconds=delay)
    message.error_code = error_code[:20]
    message.error_message = error_message[:300]
    message.save(
        update_fields=[
            "status",
            "status_changed_at",
            "next_attempt_at",
            "error_code",
            "error_message",
        ]
    )
    publish_message_event(message, "message.status")
    message_id, priority = message.pk, dispatch_priority(message.kind)
    transaction.on_commit(lambda: enqueue_dispatch(message_id, delay, priority=priority))
