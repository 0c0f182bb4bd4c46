"""What the pre- and post-conversation surveys share: the next question to ask (standard
questions a returning texter answered before are copied, not asked), sending a question,
reading a keyword, and ending a response."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from openline.contacts.keywords import KeywordKind, match_keyword
from openline.contacts.services.consent import consent_keyword_in_context
from openline.forms.models import FormAnswer, FormResponse, FormUse, ResponseChannel, ResponseStatus
from openline.forms.responses import (
    response_answer_add,
    response_answers,
    response_start,
    version_schema,
)
from openline.forms.schema import Answer, AnswerError, Answers, Field, Schema, answer_clean
from openline.forms.schema import next_question as schema_next_question
from openline.messaging.models import AwaitedAnswer, Conversation, Message, MessageKind
from openline.messaging.services.outbound import message_send

PRE, POST = "pre_survey", "post_survey"  # FormPurpose values, also AwaitedAnswer.purpose
# A question the texter answers with something that does not fit is asked this many times
# in all; then the survey moves on and records nothing for it.
MAX_TRIES = 2
THANKS = "Thank you, a counselor will be with you soon."


@dataclass(slots=True)
class State:
    """A response being answered by text: its version's questions and the answers so far."""

    response: FormResponse
    schema: Schema
    answers: Answers

    @classmethod
    def of(cls, response: FormResponse) -> State:
        return cls(response, version_schema(response.version), response_answers(response))

    def current(self) -> Field | None:
        return self.schema.field(self.response.current_field)


def survey_begin(
    *, use: FormUse, purpose: str, conversation: Conversation
) -> tuple[FormResponse, State, Field | None]:
    """A text survey's response for ``conversation`` under ``use``'s form, and its first
    question (None when every question was answered before). Call inside a transaction."""
    response = response_start(
        form=use.form,
        purpose=purpose,
        channel=ResponseChannel.SMS,
        conversation_id=conversation.pk,
        contact_id=conversation.contact_id,
    )
    state = State.of(response)
    return response, state, next_question(state, after=None)


def skip_word(conversation: Conversation) -> str:
    return conversation.organization.survey_skip_word or "SKIP"


def next_question(state: State, *, after: str | None) -> Field | None:
    """The next question to ask after the field ``after`` (None: from the start), in form
    order with show-if. A standard question (``remember``) the contact answered in an
    earlier response to this form is answered from it and not asked again."""
    keys = [f.key for f in state.schema.fields()]
    done = set(keys[: keys.index(after) + 1]) if after in keys else set()
    while True:
        field_ = schema_next_question(state.schema, state.answers, done=done)
        if field_ is None:
            return None
        if field_.remember:
            earlier = remembered(state.response, field_)
            if earlier:
                response_answer_add(response=state.response, key=field_.key, items=earlier)
                state.answers[field_.key] = earlier
                continue
        return field_


def remembered(response: FormResponse, field_: Field) -> list[Answer]:
    """The contact's latest earlier answer to ``field_`` (same form, same key), if it
    still fits the question as it is now."""
    if response.contact_id is None:
        return []
    rows = list(
        FormAnswer.objects.filter(
            organization_id=response.organization_id,
            form_id=response.form_id,
            field_key=field_.key,
            response__contact_id=response.contact_id,
        )
        .exclude(response_id=response.pk)
        .order_by("-response__created_at", "-response_id", "position")
        .values_list("response_id", "value")
    )
    if not rows:
        return []
    latest = rows[0][0]
    values = [value for response_id, value in rows if response_id == latest]
    values.reverse()  # back to their positions
    try:
        return answer_clean(field_, values if len(values) > 1 else values[0])
    except AnswerError:
        return []  # the question changed since: ask it


def ask(state: State, field_: Field, *, conversation: Conversation, lead: str = "") -> Message:
    """Send ``field_``'s question (after ``lead``) into ``conversation``; remember it as
    the question whose answer is awaited. Raises SendRefused (opted out meanwhile)."""
    from openline.forms.sms import question_text

    body = f"{lead}\n\n{question_text(field_)}" if lead else question_text(field_)
    message = send(conversation, body)
    FormResponse.objects.filter(pk=state.response.pk).update(
        current_field=field_.key, updated_at=timezone.now()
    )
    state.response.current_field = field_.key
    return message


def send(conversation: Conversation, body: str) -> Message:
    with transaction.atomic():  # a refusal leaves the caller's transaction usable
        return message_send(
            organization_id=conversation.organization_id,
            conversation=conversation,
            body=body,
            kind=MessageKind.AUTOMATED,
        )


def finish(response: FormResponse, status: str) -> None:
    """End a response (complete, skipped or expired) and stop awaiting its answers."""
    now = timezone.now()
    fields = {"status": status, "current_field": "", "updated_at": now}
    if status == ResponseStatus.COMPLETE:
        fields["completed_at"] = now
    FormResponse.objects.filter(pk=response.pk).update(**fields)
    for name, value in fields.items():
        setattr(response, name, value)
    awaited_drop(response)


def awaited_drop(response: FormResponse) -> None:
    AwaitedAnswer.objects.filter(
        organization_id=response.organization_id, purpose=response.purpose, ref_id=response.pk
    ).delete()


def keyword_kind(message: Message, conversation: Conversation) -> KeywordKind | None:
    """The consent keyword a text is (STOP, HELP, START), as inbound processing read it:
    never an answer. CANCEL and YES are answers while a survey awaits one."""
    match = consent_keyword_in_context(
        match_keyword(message.body),
        organization_id=conversation.organization_id,
        phone=conversation.contact.phone,
        simulated=conversation.number.simulated,
        toll_free=conversation.number.toll_free,
        answer_awaited=True,
    )
    return None if match is None else match.kind


def failed_tries(message: Message, awaited: AwaitedAnswer) -> int:
    """How many texts since the current question was asked (before this one) did not
    answer it: every such text was refused, keywords aside."""
    earlier = Message.objects.filter(
        conversation_id=message.conversation_id,
        direction="in",
        created_at__gte=awaited.asked_at,
        pk__lt=message.pk,
    ).values_list("body", flat=True)
    return sum(1 for body in earlier if match_keyword(body) is None)
