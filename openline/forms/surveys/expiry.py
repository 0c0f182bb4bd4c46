"""The periodic sweep (runtime.scheduler): a survey hold that ran out releases its
conversation to the queue (consoles hear "conversation.released"), its survey is marked
not finished and its answers are no longer awaited; so are follow-up surveys nobody
finished within their day, and pre-conversation surveys whose conversation was released
another way (a risk phrase, a counselor) before the texter's next answer."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from openline.forms.models import FormResponse, ResponseStatus
from openline.forms.surveys.common import POST, PRE, finish
from openline.forms.surveys.post import POST_SURVEY_HOURS
from openline.messaging.models import Conversation, ConversationStatus
from openline.messaging.services.priority import conversation_release

BATCH = 200


def surveys_expire() -> int:
    """Release held conversations whose hold ran out and end the surveys nobody will
    finish. Returns how many responses it ended."""
    now = timezone.now()
    ran_out = list(
        Conversation.objects.filter(held_until__lte=now)
        .exclude(status=ConversationStatus.CLOSED)
        .values_list("pk", "organization_id")[:BATCH]
    )
    for conversation_id, organization_id in ran_out:
        with transaction.atomic():
            conversation_release(conversation_id=conversation_id, organization_id=organization_id)
    ended = 0
    stale = FormResponse.objects.filter(status=ResponseStatus.IN_PROGRESS, channel="sms")
    pre = stale.filter(purpose=PRE).exclude(
        conversation__held_until__gt=now,
        conversation__status=ConversationStatus.WAITING,
        conversation__assigned_to__isnull=True,
    )
    post = stale.filter(purpose=POST, created_at__lte=now - timedelta(hours=POST_SURVEY_HOURS))
    for query in (pre, post):
        for response in query[:BATCH]:
            with transaction.atomic():
                locked = (
                    FormResponse.objects.select_for_update()
                    .filter(pk=response.pk, status=ResponseStatus.IN_PROGRESS)
                    .first()
                )
                if locked is not None:
                    finish(locked, ResponseStatus.EXPIRED)
                    ended += 1
    return ended
