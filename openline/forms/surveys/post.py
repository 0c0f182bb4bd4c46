"""The survey after a text conversation: when a member closes a conversation of an inbox
with a post_survey form, the texter gets its first question (answers awaited for
POST_SURVEY_HOURS). Each reply opens a new waiting conversation (inbound's rule: every text
reaches a person); a clear answer (a choice, yes/no, a scale, a number, a date) is recorded,
the next question sent and the conversation it opened closed again. A free-text answer is
recorded but stays in the queue (it may be a plea for help); a text that does not fit, a
risk phrase or STOP ends the survey and stays in the queue."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from openline.contacts.keywords import KeywordKind
from openline.forms.models import FormResponse, ResponseStatus
from openline.forms.responses import FormNotReady, response_answer_add
from openline.forms.schema import AnswerError, FieldKind
from openline.forms.selectors import form_use_for
from openline.forms.sms import answer_read, is_word
from openline.forms.surveys.common import (
    POST,
    State,
    ask,
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
    ConversationNote,
    ConversationStatus,
    Message,
    MessageKind,
    NoteKind,
)
from openline.messaging.risk import risk_match
from openline.messaging.services.assignment import conversation_close_unattended
from openline.messaging.services.outbound import SendRefused, send_refusal

# How long replies count as answers: a day, so "how did it go?" answered the next morning
# still counts, and a text a week later is simply a new conversation.
POST_SURVEY_HOURS = 24
INTRO = "Thank you for texting with us. A few quick questions about your conversation (reply {skip} to stop them)."  # noqa: E501
DONE = "Thank you for your answers."
HANDLED = "Answered the survey after an earlier conversation. Handled automatically."
# Answers a person need not read: one of the offered answers or a number.
CLEAR = {
    FieldKind.CHOICE,
    FieldKind.MULTI_CHOICE,
    FieldKind.CHECKLIST,
    FieldKind.TAXONOMY,
    FieldKind.YESNO,
    FieldKind.SCALE,
    FieldKind.NUMBER,
    FieldKind.DATE,
}


def on_closed(conversation_ids: list[int]) -> None:
    """messaging.hooks, after commit: start the follow-up surveys in a task (only for
    text conversations of inboxes that have one: one query, no task otherwise)."""
    from openline.forms.tasks import post_surveys_start

    surveyed = list(
        Conversation.objects.filter(
            pk__in=conversation_ids,
            channel=Channel.SMS,
            number__form_uses__purpose=POST,
            number__form_uses__by_text=True,
            assigned_at__isnull=False,
        ).values_list("pk", flat=True)
    )
    if surveyed:
        post_surveys_start.enqueue(surveyed)


def closed_by_member(conversation: Conversation) -> bool:
    """A member held it and closed it (its last note is a member's wrap-up): not one closed
    unattended (a handled reminder answer or survey reply, a visitor who left)."""
    if conversation.assigned_at is None or conversation.status != ConversationStatus.CLOSED:
        return False
    last = ConversationNote.objects.filter(conversation=conversation).order_by("-id").first()
    return last is not None and last.kind == NoteKind.WRAP_UP and last.author_id is not None


@transaction.atomic
def post_survey_start(*, conversation_id: int) -> FormResponse | None:
    """Text the first question after a member closed an SMS conversation (never to someone
    who cannot be texted, and not while they have another conversation open here)."""
    conversation = (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("contact", "number", "organization")
        .filter(pk=conversation_id, channel=Channel.SMS)
        .first()
    )
    if conversation is None or not closed_by_member(conversation):
        return None
    if FormResponse.objects.filter(conversation=conversation, purpose=POST).exists():
        return None
    use = form_use_for(number_id=conversation.number_id, purpose=POST)
    if use is None or not use.by_text:
        return None
    talking = (
        Conversation.objects.filter(contact_id=conversation.contact_id, number=conversation.number)
        .exclude(status=ConversationStatus.CLOSED)
        .exists()
    )
    refused = send_refusal(
        contact=conversation.contact, kind=MessageKind.AUTOMATED, number=conversation.number
    )
    if talking or refused is not None:
        return None
    try:
        with transaction.atomic():
            response, state, first = survey_begin(use=use, purpose=POST, conversation=conversation)
            if first is None:
                finish(response, ResponseStatus.COMPLETE)
                return response
            lead = INTRO.format(skip=skip_word(conversation))
            ask(state, first, conversation=conversation, lead=lead)
            answer_await(
                organization_id=conversation.organization_id,
                contact_id=conversation.contact_id,
                number_id=conversation.number_id,
                purpose=POST,
                ref_id=response.pk,
                until=timezone.now() + timedelta(hours=POST_SURVEY_HOURS),
            )
    except (SendRefused, FormNotReady):
        return None
    return response


def post_answer_read(message: Message, awaited: AwaitedAnswer) -> bool:
    """messaging.answers reader for a reply to the follow-up survey. True when the reply
    was a clear answer (the conversation it opened is closed again)."""
    response = (
        FormResponse.objects.select_for_update()
        .select_related("version")
        .filter(
            pk=awaited.ref_id,
            organization_id=message.organization_id,
            purpose=POST,
            status=ResponseStatus.IN_PROGRESS,
        )
        .first()
    )
    if response is None:
        return False
    conversation = (
        Conversation.objects.select_related("contact", "number", "organization")
        .filter(pk=message.conversation_id)
        .get()
    )
    keyword = keyword_kind(message, conversation)
    if keyword is not None and keyword != KeywordKind.OPT_OUT:
        return False  # HELP, START: answered by inbound; the question stands
    risky = risk_match(message.body, organization_id=message.organization_id) is not None
    if keyword == KeywordKind.OPT_OUT or risky or conversation.needs_consent_review:
        finish(response, ResponseStatus.EXPIRED)  # a person reads it; no more questions
        return False
    if is_word(message.body, skip_word(conversation)):
        finish(response, ResponseStatus.SKIPPED)
        _close_if_opened(conversation, message)
        return True
    state = State.of(response)
    field_ = state.current()
    if field_ is None:
        finish(response, ResponseStatus.EXPIRED)
        return False
    try:
        items = answer_read(field_, message.body)
    except AnswerError:
        finish(response, ResponseStatus.EXPIRED)  # not an answer: a person reads it
        return False
    response_answer_add(response=response, key=field_.key, items=items)
    state.answers[field_.key] = items
    following = next_question(state, after=field_.key)
    try:
        if following is None:
            finish(response, ResponseStatus.COMPLETE)
            send(conversation, DONE)
        else:
            ask(state, following, conversation=conversation)
            answer_await(
                organization_id=awaited.organization_id,
                contact_id=awaited.contact_id,
                number_id=awaited.number_id,
                purpose=POST,
                ref_id=response.pk,
                until=awaited.until,
            )
    except SendRefused:
        finish(response, ResponseStatus.EXPIRED)
        return False
    if field_.kind not in CLEAR:
        return False  # free text stays in the queue: it may be a plea for help
    _close_if_opened(conversation, message)
    return True


def _close_if_opened(conversation: Conversation, message: Message) -> None:
    """Close the conversation this reply opened (nobody needs to read a clear answer);
    one somebody has, or with other texts in it, stays."""
    opened_by_it = (
        conversation.status == ConversationStatus.WAITING
        and conversation.assigned_to_id is None
        and not conversation.messages.filter(direction="in").exclude(pk=message.pk).exists()
    )
    if opened_by_it:
        conversation_close_unattended(conversation_id=conversation.pk, note=HANDLED, handled=True)
