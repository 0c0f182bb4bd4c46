"""The survey before a text conversation: an inbox with a pre_survey form holds each new
conversation out of the queue (at most its use's ``hold_minutes``) while the texter
answers its questions one text at a time. Whatever happens, the person reaches the queue:
when the survey is complete (its answers' severity raising the priority), when they send
the skip word, STOP or a risk phrase, when a counselor takes the conversation, or when the
hold runs out (surveys.expiry)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from openline.contacts.keywords import KeywordKind
from openline.forms.models import FormResponse, ResponseStatus
from openline.forms.responses import FormNotReady, response_answer_add
from openline.forms.schema import AnswerError, severity
from openline.forms.selectors import form_use_for, form_uses_for
from openline.forms.sms import answer_read, is_word, refusal_text
from openline.forms.surveys.common import (
    MAX_TRIES,
    POST,
    PRE,
    THANKS,
    State,
    ask,
    failed_tries,
    finish,
    keyword_kind,
    next_question,
    send,
    skip_word,
    survey_begin,
)
from openline.messaging.answers import answer_await
from openline.messaging.models import (
    AwaitedAnswer,
    Channel,
    Conversation,
    ConversationStatus,
    Message,
)
from openline.messaging.services.outbound import SendRefused
from openline.messaging.services.priority import conversation_raise_priority, conversation_release

INTRO = "Before we connect you, a few questions. Reply {skip} to go straight to a counselor."


def hold_minutes(number_ids: Sequence[int]) -> dict[int, int]:
    """messaging.hooks: inboxes with a pre-conversation survey hold new text conversations."""
    uses = form_uses_for(number_ids=number_ids, purpose=PRE)
    return {number_id: use.hold_minutes for number_id, use in uses.items()}


def on_held(conversation_ids: list[int]) -> None:
    """messaging.hooks, after commit: start each held conversation's survey in a task."""
    from openline.forms.tasks import pre_surveys_start

    pre_surveys_start.enqueue(conversation_ids)


def held(conversation: Conversation, now: datetime | None = None) -> bool:
    """Still held for its survey: open, nobody has it, and the hold has not run out."""
    return (
        conversation.held_until is not None
        and conversation.held_until > (now or timezone.now())
        and conversation.status == ConversationStatus.WAITING
        and conversation.assigned_to_id is None
    )


def release(conversation: Conversation) -> None:
    conversation_release(
        conversation_id=conversation.pk, organization_id=conversation.organization_id
    )


@transaction.atomic
def pre_survey_start(*, conversation_id: int) -> FormResponse | None:
    """Start a held conversation's survey: the intro and the first question in one text,
    its answer awaited until the hold ends. Anything in the way releases it to the queue."""
    conversation = (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("contact", "number", "organization")
        .filter(pk=conversation_id, channel=Channel.SMS)
        .first()
    )
    if conversation is None or not held(conversation):
        return None
    if FormResponse.objects.filter(conversation=conversation, purpose=PRE).exists():
        return None  # started already (a task run twice)
    if _answering_post_survey(conversation):
        release(conversation)  # the text answers the follow-up survey (surveys.post)
        return None
    use = form_use_for(number_id=conversation.number_id, purpose=PRE)
    if use is None:
        release(conversation)
        return None
    try:
        with transaction.atomic():
            response, state, first = survey_begin(use=use, purpose=PRE, conversation=conversation)
            if first is None:  # every question answered before (standard questions)
                _complete(state, conversation, thank=False)
                return response
            lead = INTRO.format(skip=skip_word(conversation))
            ask(state, first, conversation=conversation, lead=lead)
            _await(response, conversation)
    except (SendRefused, FormNotReady):
        release(conversation)  # opted out, or no questions: a person sees the text now
        return None
    return response


def _answering_post_survey(conversation: Conversation) -> bool:
    return AwaitedAnswer.objects.filter(
        contact_id=conversation.contact_id,
        number_id=conversation.number_id,
        purpose=POST,
        until__gt=timezone.now(),
    ).exists()


def _await(response: FormResponse, conversation: Conversation) -> None:
    assert conversation.held_until is not None
    answer_await(
        organization_id=conversation.organization_id,
        contact_id=conversation.contact_id,
        number_id=conversation.number_id,
        purpose=PRE,
        ref_id=response.pk,
        until=conversation.held_until,
    )


def pre_answer_read(message: Message, awaited: AwaitedAnswer) -> bool:
    """messaging.answers reader: one text answering the current question. True when it
    was read as an answer (or the skip word)."""
    response = (
        FormResponse.objects.select_for_update()
        .select_related("version")
        .filter(
            pk=awaited.ref_id,
            organization_id=message.organization_id,
            purpose=PRE,
            status=ResponseStatus.IN_PROGRESS,
            conversation_id=message.conversation_id,
        )
        .first()
    )
    if response is None:
        return False
    conversation = (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("contact", "number", "organization")
        .get(pk=message.conversation_id)
    )
    if not held(conversation):
        # A risk phrase, a counselor or the clock released it: stop asking; the answers
        # given so far stay.
        finish(response, ResponseStatus.EXPIRED)
        release(conversation)
        return False
    keyword = keyword_kind(message, conversation)
    if keyword == KeywordKind.OPT_OUT or conversation.needs_consent_review:
        finish(response, ResponseStatus.EXPIRED)  # STOP: no more questions; a person sees it
        release(conversation)
        return False
    if keyword is not None:
        return False  # HELP/START were answered by inbound; the question stands
    if is_word(message.body, skip_word(conversation)):
        finish(response, ResponseStatus.SKIPPED)
        release(conversation)
        _send_quietly(conversation, THANKS)
        return True
    state = State.of(response)
    field_ = state.current()
    if field_ is None:
        _complete(state, conversation)
        return False
    try:
        items = answer_read(field_, message.body)
    except AnswerError:
        if failed_tries(message, awaited) + 1 < MAX_TRIES:
            _send_or_release(state, conversation, refusal_text(field_))
            return False
        lead = f"Sorry, we'll skip “{field_.label}”."
    else:
        response_answer_add(response=response, key=field_.key, items=items)
        state.answers[field_.key] = items
        lead = ""
    following = next_question(state, after=field_.key)
    if following is None:
        if lead:
            _send_quietly(conversation, lead)
        _complete(state, conversation)
        return not lead
    try:
        ask(state, following, conversation=conversation, lead=lead)
    except SendRefused:
        finish(response, ResponseStatus.EXPIRED)
        release(conversation)
        return False
    _await(response, conversation)
    return not lead


def _complete(state: State, conversation: Conversation, *, thank: bool = True) -> None:
    """Complete: the most severe answer raises the priority (with the question and answer
    as the reason), the conversation joins the queue, and the texter is thanked."""
    finish(state.response, ResponseStatus.COMPLETE)
    level = severity(state.answers)
    if level > 0:
        key, answer = next(
            (key, a) for key, items in state.answers.items() for a in items if a.severity == level
        )
        question = state.schema.field(key)
        label = question.label if question else key
        conversation_raise_priority(
            conversation=conversation,
            priority=level,
            reason=f"Survey: {label}: {answer.label or answer.value}",
        )
    release(conversation)
    if thank:
        _send_quietly(conversation, THANKS)


def _send_or_release(state: State, conversation: Conversation, body: str) -> None:
    try:
        send(conversation, body)
    except SendRefused:
        finish(state.response, ResponseStatus.EXPIRED)
        release(conversation)


def _send_quietly(conversation: Conversation, body: str) -> None:
    with contextlib.suppress(SendRefused):  # opted out meanwhile: nothing more to say
        send(conversation, body)
