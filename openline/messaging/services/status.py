"""Delivery status callbacks: idempotent, forward-only."""

from __future__ import annotations

from django.db import transaction

from openline.messaging.models import Message, MessageStatus
from openline.messaging.services.outbound import message_set_status, record_provider_opt_out
from openline.providers.base import StatusUpdate
from openline.providers.models import Number


@transaction.atomic
def message_status_apply(*, number: Number, updates: list[StatusUpdate]) -> int:
    """Apply provider status updates for messages sent from ``number``. Unknown ids,
    duplicates and stale statuses are ignored. Returns how many messages changed."""
    changed = 0
    for update in updates:
        if update.status not in MessageStatus.values:
            continue
        message = (
            Message.objects.select_for_update()
            .select_related("conversation")
            .filter(
                organization_id=number.organization_id,
                provider_message_id=update.provider_message_id,
                conversation__number=number,
            )
            .first()
        )
        if message is None:
            continue
        if message_set_status(
            message=message,
            status=update.status,
            error_code=update.error_code,
            error_message=f"provider error {update.error_code}" if update.error_code else "",
        ):
            changed += 1
            if update.opted_out:
                record_provider_opt_out(message=message, error_code=update.error_code)
    return changed
