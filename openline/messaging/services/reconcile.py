"""Messages whose outcome is unknown after a crash (claimed as SENDING, no answer stored)
are asked about, never blindly sent again."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from openline.messaging.models import Message, MessageStatus
from openline.messaging.services.outbound import message_set_status
from openline.providers.registry import get_provider

STUCK_AFTER = timedelta(minutes=5)


def messages_reconcile(*, now: timezone.datetime | None = None) -> int:
    """Settle messages stuck in SENDING. Returns how many changed."""
    cutoff = (now or timezone.now()) - STUCK_AFTER
    stuck = Message.objects.filter(
        status=MessageStatus.SENDING, status_changed_at__lt=cutoff
    ).select_related("conversation__number")[:500]
    changed = 0
    for message in stuck:
        number = message.conversation.number
        status = None
        if message.provider_message_id:
            status = get_provider(number.provider).fetch_status(number, message.provider_message_id)
        with transaction.atomic():
            if status is not None:
                changed += message_set_status(message=message, status=status)
            elif not message.provider_message_id:
                # Sent or not, we cannot tell: a person decides, nothing is resent.
                changed += message_set_status(
                    message=message,
                    status=MessageStatus.FAILED,
                    error_code="outcome_unknown",
                    error_message="the send was interrupted; check with the provider before "
                    "sending again",
                )
    return changed
