"""Answers to questions OpenLine asked by text: an app that sends a question (a reminder's
"Reply C to confirm, X to cancel") records that it awaits an answer (``answer_await``), and
registers a reader for its purpose at start-up (``answer_reader_set``). Inbound processing
stores the reply like any text (it reaches the queue) and, after commit, hands it to the
reader, which acts on a clear answer and may close the conversation it opened; anything
else stays in the queue for a person.

Keywords keep their meaning: STOP always opts out. Only CANCEL is read in context: while an
answer is awaited it answers the question (contacts.keywords.keyword_in_context)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from openline.messaging.models import AwaitedAnswer, Message

logger = logging.getLogger(__name__)

# purpose -> reader(message, awaited) -> True when the text was a clear answer it acted on.
Reader = Callable[[Message, AwaitedAnswer], bool]
_readers: dict[str, Reader] = {}


def answer_reader_set(purpose: str, reader: Reader) -> None:
    _readers[purpose] = reader


def answer_await(
    *, organization_id: int, contact_id: int, number_id: int, purpose: str, ref_id: int,
    until: datetime,
) -> None:  # fmt: skip
    """From now until ``until`` the person's texts to ``number_id`` answer ``ref_id``: the
    newest question replaces an older one on the same number."""
    AwaitedAnswer.objects.update_or_create(
        contact_id=contact_id,
        number_id=number_id,
        defaults={
            "organization_id": organization_id,
            "purpose": purpose,
            "ref_id": ref_id,
            "asked_at": timezone.now(),
            "until": until,
        },
    )


def answer_awaited(*, contact_id: int, number_id: int, at: datetime) -> AwaitedAnswer | None:
    return AwaitedAnswer.objects.filter(
        contact_id=contact_id, number_id=number_id, until__gt=at
    ).first()


def answers_read(*, message_id: int) -> bool:
    """The task run after a text from someone whose answer was awaited: its reader decides.
    Returns whether it was a clear answer."""
    message = (
        Message.objects.select_related("conversation__contact", "conversation__number")
        .filter(pk=message_id)
        .first()
    )
    if message is None:
        return False
    conversation = message.conversation
    with transaction.atomic():
        awaited = (
            AwaitedAnswer.objects.select_for_update()
            .filter(
                contact_id=conversation.contact_id,
                number_id=conversation.number_id,
                until__gt=message.created_at,
                asked_at__lte=message.created_at,
            )
            .first()
        )
        if awaited is None:
            return False
        reader = _readers.get(awaited.purpose)
        if reader is None:
            logger.warning("no reader for answers about %s", awaited.purpose)
            return False
        return reader(message, awaited)
