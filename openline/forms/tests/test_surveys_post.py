"""The survey after a text conversation a member closed: its questions by text, replies
recorded; a clear answer's conversation closed again, anything a person should read left in
the queue."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from openline.core.models import Membership
from openline.forms.models import FormResponse, ResponseStatus
from openline.forms.surveys.expiry import surveys_expire
from openline.forms.surveys.post import DONE
from openline.forms.tests.surveying import FEELING, SAFE, form_make, form_use, received, stored
from openline.messaging.models import AwaitedAnswer, Conversation, ConversationStatus
from openline.messaging.services.assignment import (
    conversation_assume,
    conversation_close,
    conversation_close_unattended,
)

PHONE = "+15555550177"
ANYTHING = {"key": "anything_else", "label": "Anything else you want to tell us", "kind": "text"}


@pytest.fixture
def follow_up(org: Any, online_inbox: Any) -> Any:
    form = form_make(org, "How did it go", [FEELING, ANYTHING, SAFE])
    form_use(online_inbox, form, "post_survey")
    return form


@pytest.fixture
def talk(online_inbox: Any, text_in: Any, bob: Any, pipeline: Any) -> Any:
    """A texter talks with bob, who closes the conversation."""

    def run(phone: str = PHONE) -> Conversation:
        conversation = text_in(online_inbox, phone, "hi, can we talk").conversation
        membership = Membership.objects.get(user=bob)
        pipeline.run(lambda: conversation_assume(membership=membership, conversation=conversation))
        conversation.refresh_from_db()
        pipeline.run(
            lambda: conversation_close(
                membership=membership, conversation=conversation, wrap_up="talked"
            )
        )
        return conversation

    return run


def survey_of(conversation: Conversation) -> FormResponse:
    return FormResponse.objects.get(conversation=conversation, purpose="post_survey")


def test_clear_answers_are_recorded_and_their_conversations_closed_free_text_stays(
    follow_up: Any, online_inbox: Any, text_in: Any, talk: Any
) -> None:
    closed = talk()
    [first] = received(PHONE)
    assert first.startswith("Thank you for texting with us.")
    assert first.endswith("How are you feeling\nReply a number from 1 to 7.")
    response = survey_of(closed)
    assert (response.channel, response.status) == ("sms", ResponseStatus.IN_PROGRESS)
    awaited = AwaitedAnswer.objects.get()
    assert awaited.until > timezone.now() + timedelta(hours=23)

    clear = text_in(online_inbox, PHONE, "6").conversation
    clear.refresh_from_db()
    assert clear.pk != closed.pk and clear.status == ConversationStatus.CLOSED
    assert clear.handled_automatically  # reports count it apart from abandoned ones
    closed.refresh_from_db()
    assert not closed.handled_automatically  # a member closed that one
    assert received(PHONE)[-1] == "Anything else you want to tell us"

    free = text_in(online_inbox, PHONE, "it helped, thank you").conversation
    free.refresh_from_db()
    assert free.status == ConversationStatus.WAITING  # a person reads free text
    assert received(PHONE)[-1] == "Are you safe right now\nReply YES or NO."

    last = text_in(online_inbox, PHONE, "yes").conversation
    assert last.pk == free.pk  # the open conversation; a person is reading it anyway
    assert received(PHONE)[-1] == DONE
    response.refresh_from_db()
    assert response.status == ResponseStatus.COMPLETE
    assert stored(response) == {
        "feeling": ["6"],
        "anything_else": ["it helped, thank you"],
        "safe_now": ["yes"],
    }
    assert not AwaitedAnswer.objects.exists()


def test_a_reply_that_does_not_parse_or_carries_a_risk_phrase_ends_the_survey_in_the_queue(
    follow_up: Any, online_inbox: Any, text_in: Any, talk: Any
) -> None:
    closed = talk()
    reply = text_in(online_inbox, PHONE, "not great honestly").conversation
    reply.refresh_from_db()
    assert reply.status == ConversationStatus.WAITING
    assert survey_of(closed).status == ResponseStatus.EXPIRED
    assert len(received(PHONE)) == 1  # no more questions
    assert not AwaitedAnswer.objects.exists()

    other = "+15555550178"
    closed = talk(other)
    reply = text_in(online_inbox, other, "5 but i want to die").conversation
    reply.refresh_from_db()
    assert reply.status == ConversationStatus.WAITING and reply.priority > 0
    assert survey_of(closed).status == ResponseStatus.EXPIRED
    assert stored(survey_of(closed)) == {}


def test_the_skip_word_ends_it_quietly_and_stop_ends_it_with_the_opt_out(
    follow_up: Any, online_inbox: Any, text_in: Any, talk: Any
) -> None:
    closed = talk()
    reply = text_in(online_inbox, PHONE, "skip").conversation
    reply.refresh_from_db()
    assert reply.status == ConversationStatus.CLOSED
    assert survey_of(closed).status == ResponseStatus.SKIPPED
    assert len(received(PHONE)) == 1

    other = "+15555550179"
    closed = talk(other)
    text_in(online_inbox, other, "STOP")
    assert survey_of(closed).status == ResponseStatus.EXPIRED
    assert "START" in received(other)[-1]


def test_an_opted_out_contact_gets_no_survey_and_no_response_is_started(
    follow_up: Any, online_inbox: Any, text_in: Any, bob: Any, pipeline: Any, alice: Any
) -> None:
    from openline.contacts.services.consent import consent_record_opt_out

    conversation = text_in(online_inbox, PHONE, "hi").conversation
    membership = Membership.objects.get(user=bob)
    pipeline.run(lambda: conversation_assume(membership=membership, conversation=conversation))
    consent_record_opt_out(
        organization_id=online_inbox.organization_id,
        phone=PHONE,
        source="staff",
        evidence="asked to stop",
        actor_id=alice.pk,
        number_id=online_inbox.pk,
        simulated=True,
    )
    conversation.refresh_from_db()
    pipeline.run(lambda: conversation_close(membership=membership, conversation=conversation))
    assert not FormResponse.objects.exists()
    assert received(PHONE) == []


def test_conversations_closed_unattended_or_never_held_get_no_survey(
    follow_up: Any, online_inbox: Any, text_in: Any, sue: Any, pipeline: Any
) -> None:
    nobody = text_in(online_inbox, PHONE, "hi").conversation
    pipeline.run(lambda: conversation_close_unattended(conversation_id=nobody.pk, note="handled"))
    other = "+15555550180"
    waiting = text_in(online_inbox, other, "hi").conversation
    supervisor = Membership.objects.get(user=sue)
    pipeline.run(lambda: conversation_close(membership=supervisor, conversation=waiting))
    assert Conversation.objects.filter(status=ConversationStatus.CLOSED).count() == 2
    assert not FormResponse.objects.exists()
    assert received(PHONE) == [] and received(other) == []


def test_an_unfinished_follow_up_expires_after_a_day(
    follow_up: Any, talk: Any, pipeline: Any
) -> None:
    closed = talk()
    assert pipeline.run(surveys_expire) == 0
    AwaitedAnswer.objects.update(until=timezone.now() - timedelta(seconds=1))
    assert pipeline.run(surveys_expire) == 1
    assert survey_of(closed).status == ResponseStatus.EXPIRED
    assert not AwaitedAnswer.objects.exists()


def test_an_inbox_with_both_surveys_reads_a_reply_as_the_follow_up_answer(
    org: Any, follow_up: Any, online_inbox: Any, text_in: Any, talk: Any
) -> None:
    closed = talk()
    form_use(online_inbox, form_make(org, "Before", [SAFE]), "pre_survey")
    reply = text_in(online_inbox, PHONE, "4").conversation
    reply.refresh_from_db()
    assert reply.status == ConversationStatus.CLOSED and reply.held_until is None
    assert stored(survey_of(closed)) == {"feeling": ["4"]}
    assert not FormResponse.objects.filter(conversation=reply).exists()


def test_a_survey_for_chats_only_is_never_texted(follow_up: Any, talk: Any) -> None:
    """An inbox whose after-conversation survey is not to be texted (a chat widget's survey
    carried over from its own questions) texts nobody when a text conversation closes."""
    from openline.forms.models import FormUse

    FormUse.objects.filter(purpose="post_survey").update(by_text=False)
    closed = talk()
    assert received(PHONE) == []
    assert not FormResponse.objects.filter(conversation=closed).exists()
    assert not AwaitedAnswer.objects.exists()
