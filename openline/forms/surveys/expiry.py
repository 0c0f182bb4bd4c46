"""The periodic sweep (runtime.scheduler): a survey hold that ran out releases its
conversation to the queue (consoles hear "conversation.released"), its survey is marked
not finished and its answers are no longer awaited; so are follow-up surveys nobody
finished within their day, and pre-conversation surveys whose conversation was released
another way (a risk phrase, a counselor) before the texter's next answer.

It reads only small sets: held conversations (``held_until`` set) and the answers awaited
(messaging's AwaitedAnswer rows), never the table of every response."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from openline.forms.models import FormResponse, ResponseStatus
from openline.forms.surveys.common import POST, PRE, finish
from openline.forms.surveys.pre import held
from openline.messaging.models import AwaitedAnswer, Conversation, ConversationStatus
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
    stale = set(
        FormResponse.objects.filter(
            conversation_id__in=[pk for pk, _ in ran_out],
            purpose=PRE,
            status=ResponseStatus.IN_PROGRESS,
        ).values_list("pk", flat=True)
    )
    awaited = AwaitedAnswer.objects.filter(purpose__in=(PRE, POST))
    stale |= set(awaited.filter(until__lte=now).values_list("ref_id", flat=True)[:BATCH])
    for response in FormResponse.objects.filter(
        pk__in=list(awaited.filter(purpose=PRE).values_list("ref_id", flat=True)[:BATCH]),
        status=ResponseStatus.IN_PROGRESS,
    ).select_related("conversation"):
        if response.conversation is None or not held(response.conversation, now):
            stale.add(response.pk)  # released by a risk phrase or taken by a counselor
    ended = 0
    for response_id in sorted(stale):
        with transaction.atomic():
            locked = (
                FormResponse.objects.select_for_update()
                .filter(pk=response_id, status=ResponseStatus.IN_PROGRESS)
                .first()
            )
            if locked is not None:
                finish(locked, ResponseStatus.EXPIRED)
                ended += 1
    return ended
