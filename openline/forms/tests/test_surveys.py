"""The survey before a text conversation, through real inbound processing and the sandbox
carrier: the texter answers one question at a time while the conversation is held out of
the queue, and reaches the queue however the survey ends."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from openline.core.models import Membership
from openline.forms.models import FormResponse, ResponseStatus
from openline.forms.surveys.common import THANKS
from openline.forms.surveys.expiry import surveys_expire
from openline.forms.tests.surveying import (
    AGE,
    FEELING,
    NAME,
    REASON,
    SAFE,
    form_make,
    form_use,
    received,
    stored,
)
from openline.messaging import selectors
from openline.messaging.models import AwaitedAnswer, Conversation, Priority

PHONE = "+15555550123"


@pytest.fixture
def survey(org: Any, online_inbox: Any) -> Any:
    form = form_make(org, "Before we talk", [AGE, SAFE, FEELING, REASON, NAME])
    form_use(online_inbox, form, "pre_survey", hold_minutes=10)
    return form


def queue(alice: Any) -> list[int]:
    membership = Membership.objects.get(user=alice)
    rows = selectors.queue_conversations(membership=membership, filters=selectors.QueueFilter())
    return [c.pk for c in rows]


def response_of(conversation: Any) -> FormResponse:
    return FormResponse.objects.get(conversation_id=conversation.pk, purpose="pre_survey")


def test_a_texter_answers_every_question_then_reaches_the_queue_with_the_answers_stored(
    survey: Any, online_inbox: Any, text_in: Any, alice: Any, published: list[dict[str, Any]]
) -> None:
    first = text_in(online_inbox, PHONE, "hi, I need to talk")
    conversation = first.conversation
    conversation.refresh_from_db()
    assert conversation.held_until is not None
    assert conversation.pk not in queue(alice)
    [intro] = received(PHONE)
    assert intro.startswith("Before we connect you, a few questions. Reply SKIP to go straight")
    assert "Age group\n1 Under 18\n2 18 to 24\n3 25 or older\nReply 1, 2 or 3." in intro
    response = response_of(conversation)
    assert (response.channel, response.contact_id) == ("sms", conversation.contact_id)

    text_in(online_inbox, PHONE, "2")
    assert received(PHONE)[-1] == "Are you safe right now\nReply YES or NO."
    text_in(online_inbox, PHONE, "y")
    assert received(PHONE)[-1] == "How are you feeling\nReply a number from 1 to 7."
    text_in(online_inbox, PHONE, "3")
    assert "separated by commas" in received(PHONE)[-1]
    text_in(online_inbox, PHONE, "1, 3")
    assert received(PHONE)[-1] == "What should we call you"
    assert conversation.pk not in queue(alice)
    text_in(online_inbox, PHONE, "Sam")

    assert received(PHONE)[-1] == THANKS
    response.refresh_from_db()
    assert response.status == ResponseStatus.COMPLETE and response.completed_at is not None
    assert stored(response) == {
        "age_group": ["18_24"],
        "safe_now": ["yes"],
        "feeling": ["3"],
        "reason": ["housing", "someone_to_talk_to"],
        "first_name": ["Sam"],
    }
    conversation.refresh_from_db()
    assert conversation.held_until is None and conversation.priority == Priority.NORMAL
    assert queue(alice) == [conversation.pk]
    assert not AwaitedAnswer.objects.exists()
    assert any(
        e["type"] == "conversation.released" and e["conversation_id"] == conversation.pk
        for e in published
    )


def test_a_severe_answer_raises_the_priority_with_the_question_and_answer_as_reason(
    org: Any, online_inbox: Any, text_in: Any, alice: Any
) -> None:
    form_use(online_inbox, form_make(org, "Safety", [SAFE]), "pre_survey")
    conversation = text_in(online_inbox, PHONE, "hello").conversation
    text_in(online_inbox, PHONE, "No")
    conversation.refresh_from_db()
    assert conversation.priority == Priority.URGENT
    assert conversation.priority_reason == "Survey: Are you safe right now: No"
    assert queue(alice) == [conversation.pk]


def test_an_answer_that_does_not_fit_is_refused_naming_the_question_then_passed_over(
    survey: Any, online_inbox: Any, text_in: Any
) -> None:
    conversation = text_in(online_inbox, PHONE, "hi").conversation
    text_in(online_inbox, PHONE, "maybe 9")
    refusal = received(PHONE)[-1]
    assert refusal.startswith("Sorry, that doesn't answer “Age group”.\nAge group\n1 Under 18")
    text_in(online_inbox, PHONE, "old")
    # The second miss: the question is passed over, said so, and nothing recorded.
    moved_on = received(PHONE)[-1]
    assert moved_on.startswith("Sorry, we'll skip “Age group”.")
    assert moved_on.endswith("Are you safe right now\nReply YES or NO.")
    text_in(online_inbox, PHONE, "yes")
    assert received(PHONE)[-1].startswith("How are you feeling")
    assert stored(response_of(conversation)) == {"safe_now": ["yes"]}


def test_the_skip_word_ends_the_survey_and_puts_the_texter_in_the_queue(
    survey: Any, online_inbox: Any, text_in: Any, alice: Any, org: Any
) -> None:
    org.survey_skip_word = "PASS"
    org.save(update_fields=["survey_skip_word"])
    conversation = text_in(online_inbox, PHONE, "hi").conversation
    assert "Reply PASS to go straight to a counselor." in received(PHONE)[0]
    text_in(online_inbox, PHONE, "1")
    text_in(online_inbox, PHONE, " pass! ")
    response = response_of(conversation)
    assert response.status == ResponseStatus.SKIPPED
    assert stored(response) == {"age_group": ["under_18"]}
    assert queue(alice) == [conversation.pk]
    assert received(PHONE)[-1] == THANKS
    text_in(online_inbox, PHONE, "are you there?")  # no more questions
    assert received(PHONE)[-1] == THANKS


def test_a_returning_texter_is_not_asked_standard_questions_again_but_custom_ones(
    survey: Any, online_inbox: Any, text_in: Any, sue: Any
) -> None:
    first = text_in(online_inbox, PHONE, "hi").conversation
    for answer in ("3", "yes", "5", "2", "Sam"):
        text_in(online_inbox, PHONE, answer)
    Conversation.objects.filter(pk=first.pk).update(status="closed", closed_at=timezone.now())

    second = text_in(online_inbox, PHONE, "me again").conversation
    assert second.pk != first.pk
    intro = received(PHONE)[-1]
    assert "Age group" not in intro and intro.endswith("Are you safe right now\nReply YES or NO.")
    for answer in ("yes", "4", "1", "Sam"):
        text_in(online_inbox, PHONE, answer)
    response = response_of(second)
    assert response.status == ResponseStatus.COMPLETE
    assert stored(response)["age_group"] == ["25_up"]  # copied from the first time
    assert stored(response)["feeling"] == ["4"]
    # Someone else is asked everything.
    text_in(online_inbox, "+15555550999", "hi")
    assert "Age group" in received("+15555550999")[0]


def test_a_texter_who_never_answers_is_in_the_queue_when_the_hold_runs_out(
    survey: Any,
    online_inbox: Any,
    text_in: Any,
    alice: Any,
    pipeline: Any,
    published: list[dict[str, Any]],
) -> None:
    conversation = text_in(online_inbox, PHONE, "hi").conversation
    assert pipeline.run(surveys_expire) == 0
    assert queue(alice) == []
    Conversation.objects.filter(pk=conversation.pk).update(
        held_until=timezone.now() - timedelta(seconds=1)
    )
    assert pipeline.run(surveys_expire) == 1
    conversation.refresh_from_db()
    assert conversation.held_until is None
    assert queue(alice) == [conversation.pk]
    assert response_of(conversation).status == ResponseStatus.EXPIRED
    assert not AwaitedAnswer.objects.exists()
    assert any(e["type"] == "conversation.released" for e in published)
    text_in(online_inbox, PHONE, "2")  # a late answer is just a text for the counselor
    assert len(received(PHONE)) == 1
    assert stored(response_of(conversation)) == {}


def test_stop_mid_survey_opts_out_ends_the_survey_and_a_person_sees_the_conversation(
    survey: Any, online_inbox: Any, text_in: Any, alice: Any
) -> None:
    from openline.contacts.selectors import consent_state

    conversation = text_in(online_inbox, PHONE, "hi").conversation
    text_in(online_inbox, PHONE, "STOP")
    assert consent_state(organization_id=conversation.organization_id, phone=PHONE).opted_out
    response = response_of(conversation)
    assert response.status == ResponseStatus.EXPIRED and stored(response) == {}
    assert queue(alice) == [conversation.pk]
    texts = received(PHONE)
    assert len(texts) == 2 and "START" in texts[-1]  # the intro, then the opt-out confirmation


def test_a_risk_phrase_mid_survey_releases_at_once_and_the_survey_stops_asking(
    survey: Any, online_inbox: Any, text_in: Any, alice: Any
) -> None:
    conversation = text_in(online_inbox, PHONE, "hi").conversation
    text_in(online_inbox, PHONE, "1")
    text_in(online_inbox, PHONE, "I want to kill myself")
    conversation.refresh_from_db()
    assert conversation.held_until is None and conversation.priority > Priority.NORMAL
    assert queue(alice) == [conversation.pk]
    response = response_of(conversation)
    assert response.status == ResponseStatus.EXPIRED
    assert stored(response) == {"age_group": ["under_18"]}  # as far as it got
    assert len(received(PHONE)) == 2  # the intro and the second question; nothing after


def test_a_counselor_who_takes_the_conversation_stops_the_survey(
    survey: Any, online_inbox: Any, text_in: Any, alice: Any
) -> None:
    conversation = text_in(online_inbox, PHONE, "hi").conversation
    Conversation.objects.filter(pk=conversation.pk).update(
        status="active", assigned_to=alice, assigned_at=timezone.now()
    )
    text_in(online_inbox, PHONE, "2")
    assert len(received(PHONE)) == 1
    assert response_of(conversation).status == ResponseStatus.EXPIRED


def test_the_sweep_ends_a_survey_whose_conversation_a_counselor_took_before_any_answer(
    survey: Any, online_inbox: Any, text_in: Any, alice: Any, pipeline: Any
) -> None:
    conversation = text_in(online_inbox, PHONE, "hi").conversation
    assert pipeline.run(surveys_expire) == 0
    Conversation.objects.filter(pk=conversation.pk).update(
        status="active", assigned_to=alice, assigned_at=timezone.now()
    )
    assert pipeline.run(surveys_expire) == 1
    assert response_of(conversation).status == ResponseStatus.EXPIRED
    assert not AwaitedAnswer.objects.exists()


def test_an_opted_out_texter_gets_no_survey_and_goes_to_the_queue(
    survey: Any, online_inbox: Any, text_in: Any, alice: Any
) -> None:
    from openline.contacts.services.consent import consent_record_opt_out

    consent_record_opt_out(
        organization_id=online_inbox.organization_id,
        phone=PHONE,
        source="staff",
        evidence="asked on the phone",
        actor_id=alice.pk,
        number_id=online_inbox.pk,
        simulated=True,
    )
    conversation = text_in(online_inbox, PHONE, "hi").conversation
    assert received(PHONE) == []
    assert not FormResponse.objects.exists()
    assert queue(alice) == [conversation.pk]


def test_an_inbox_without_a_survey_holds_nothing_and_another_orgs_survey_is_untouched(
    org: Any,
    other_org: Any,
    other_number: Any,
    online_inbox: Any,
    text_in: Any,
    alice: Any,
    charlie: Any,
    put_online: Any,
) -> None:
    put_online(other_number, charlie)
    theirs = form_make(other_org, "Their survey", [AGE])
    form_use(other_number, theirs, "pre_survey")
    conversation = text_in(online_inbox, PHONE, "hi").conversation
    conversation.refresh_from_db()
    assert conversation.held_until is None and received(PHONE) == []
    assert queue(alice) == [conversation.pk]
    # Their texter's survey runs on their number only; our texts never answer it.
    their_conversation = text_in(other_number, PHONE, "hello").conversation
    assert their_conversation.organization_id == other_org.pk
    text_in(online_inbox, PHONE, "1")
    response = FormResponse.objects.get(organization=other_org)
    assert stored(response) == {} and response.status == ResponseStatus.IN_PROGRESS
    assert not FormResponse.objects.filter(organization=org).exists()
