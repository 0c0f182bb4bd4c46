"""The contact form and risk assessment in a conversation's pane: who fills them in, saving
as you go and completing, messages beside their questions, show-if on the server, answers
under their version, the screener's risk level, the surveys' answers read-only."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from openline.core.models import AuditEvent
from openline.forms.models import FormAnswer, FormResponse, ResponseStatus
from openline.forms.responses import response_answers_save, response_start
from openline.forms.schema import answers_clean, schema_load
from openline.forms.tests.pane_support import (
    CONTACT_SCHEMA,
    HTMX,
    assume,
    client_for,
    contact_form,
    conversation,
    new_version,
    screener,
)
from openline.messaging.models import Conversation

__all__ = ["contact_form", "conversation"]  # fixtures


def _pane(client: Client, conversation: Conversation) -> Any:
    return client.get(reverse("console:conversation_pane", args=[conversation.pk]), headers=HTMX)


def _save(
    client: Client,
    conversation: Conversation,
    data: dict[str, Any],
    *,
    complete: bool = False,
    autosave: bool = False,
    purpose: str = "contact_form",
) -> Any:
    url = reverse(f"forms:pane_{purpose}", args=[conversation.pk])
    if autosave:
        url += "?autosave=1"
    body = {f"f-{k}": v for k, v in data.items()}
    if complete:
        body["complete"] = "1"
    return client.post(url, body, headers=HTMX)


def _stored(conversation: Conversation) -> dict[str, list[str]]:
    rows = FormAnswer.objects.filter(response__conversation=conversation).order_by("id")
    found: dict[str, list[str]] = {}
    for key, value in rows.values_list("field_key", "value"):
        found.setdefault(key, []).append(value)
    return found


# --- who sees what --------------------------------------------------------------------------


def test_holder_sees_every_kind_of_question_as_inputs(
    bob: Any, contact_form: Any, conversation: Conversation
) -> None:
    assume(bob, conversation)
    html = _pane(client_for(bob), conversation).content.decode()
    cid = conversation.pk
    assert f'id="form-fill-contact-{cid}"' in html
    assert '<legend>Reason for contact <span class="required" aria-hidden="true">*</span>' in html
    assert f'<label for="ff-contact-{cid}-age">Age</label>' in html
    assert 'name="f-age"' in html and 'type="number"' in html and 'max="120.0"' in html
    assert f'<textarea name="f-notes" id="ff-contact-{cid}-notes"' in html
    assert 'name="f-follow_up"' in html and 'type="date"' in html
    assert html.count('type="checkbox" name="f-needs"') == 2
    assert 'type="radio" name="f-safe" value="yes"' in html
    assert html.count('type="radio" name="f-mood"') == 7
    assert 'type="checkbox" name="f-steps" value="safety_plan"' in html
    assert '<option value="BH-1800">Crisis intervention</option>' in html
    # the show-if question is there for pane.js, hidden and disabled until "other"
    other = re.search(r'<div class="form-field" data-field="reason_other"[^>]*>', html)
    assert other and 'data-show-if="reason"' in other.group(0) and " hidden" in other.group(0)
    assert 'data-show-values="[&quot;other&quot;]"' in other.group(0)
    assert "Mark complete" in html


def test_counselor_who_does_not_hold_it_sees_the_form_read_only(
    bob: Any, contact_form: Any, conversation: Conversation
) -> None:
    html = _pane(client_for(bob), conversation).content.decode()  # waiting, nobody's yet
    assert "Contact form" in html and "Not started." in html
    assert "form-fill" not in html
    response = _save(client_for(bob), conversation, {"reason": "housing"}, autosave=True)
    assert response.status_code == 403
    assert not FormResponse.objects.exists()


def test_supervisor_fills_in_someone_elses_and_the_holder_sees_the_answers(
    bob: Any, sue: Any, contact_form: Any, conversation: Conversation
) -> None:
    assume(bob, conversation)
    sue_client = client_for(sue)
    assert (
        f'id="form-fill-contact-{conversation.pk}"'
        in _pane(sue_client, conversation).content.decode()
    )
    assert _save(sue_client, conversation, {"reason": "housing"}, autosave=True).status_code == 200
    assert FormResponse.objects.get().answered_by == sue
    html = _pane(client_for(bob), conversation).content.decode()
    assert 'value="housing" id="ff-contact-' in html and "checked" in html


def test_another_counselors_conversation_is_refused_and_another_orgs_is_404(
    bob: Any, dora: Any, charlie: Any, contact_form: Any, conversation: Conversation
) -> None:
    assume(bob, conversation)
    assert _save(client_for(dora), conversation, {"reason": "housing"}).status_code == 403
    assert _save(client_for(charlie), conversation, {"reason": "housing"}).status_code == 404
    url = reverse("forms:pane_risk_assessment", args=[conversation.pk])
    assert client_for(charlie).post(url, {}, headers=HTMX).status_code == 404
    assert not FormResponse.objects.exists()


def test_no_form_in_use_means_no_section_and_no_save(bob: Any, conversation: Conversation) -> None:
    assume(bob, conversation)
    html = _pane(client_for(bob), conversation).content.decode()
    assert "form-fill" not in html
    assert _save(client_for(bob), conversation, {"reason": "x"}).status_code == 403


# --- saving ---------------------------------------------------------------------------------


def test_autosave_keeps_a_draft_without_the_required_answers(
    bob: Any, contact_form: Any, conversation: Conversation
) -> None:
    assume(bob, conversation)
    response = _save(
        client_for(bob),
        conversation,
        {"reason": "housing", "needs": ["food", "shelter"]},
        autosave=True,
    )
    assert response.status_code == 200
    assert response.content == b"Draft saved."
    saved = FormResponse.objects.get()
    assert saved.status == ResponseStatus.IN_PROGRESS and saved.completed_at is None
    assert saved.channel == "console" and saved.contact_id == conversation.contact_id
    assert _stored(conversation) == {"reason": ["housing"], "needs": ["food", "shelter"]}


def test_completing_with_answers_missing_is_422_with_each_message_by_its_question(
    bob: Any, contact_form: Any, conversation: Conversation
) -> None:
    assume(bob, conversation)
    client = client_for(bob)
    _save(client, conversation, {"reason": "housing"}, autosave=True)
    response = _save(client, conversation, {"reason": "other", "age": "300"}, complete=True)
    assert response.status_code == 422
    html = response.content.decode()
    cid = conversation.pk
    assert (
        f'id="ff-contact-{cid}-reason_other-error" data-error-for="reason_other">'
        "“What else?” is required.</p>"
    ) in html
    assert 'data-error-for="age_group">“Age group” is required.</p>' in html
    assert 'data-error-for="age">“Age” is at most 120.</p>' in html
    assert 'aria-invalid="true"' in html
    assert 'value="300"' in html  # what was typed comes back to correct
    # nothing saved: the draft is as it was
    assert _stored(conversation) == {"reason": ["housing"]}
    assert FormResponse.objects.get().status == ResponseStatus.IN_PROGRESS


def test_autosave_refused_answers_retarget_the_whole_section(
    bob: Any, contact_form: Any, conversation: Conversation
) -> None:
    assume(bob, conversation)
    response = _save(client_for(bob), conversation, {"age": "lots"}, autosave=True)
    assert response.status_code == 422
    assert response["HX-Retarget"] == f"#form-contact-{conversation.pk}"
    assert response["HX-Reswap"] == "outerHTML"
    assert "“Age” takes a number." in response.content.decode()


def test_complete_stores_the_answers_and_hidden_ones_are_dropped(
    bob: Any, contact_form: Any, conversation: Conversation
) -> None:
    assume(bob, conversation)
    response = _save(
        client_for(bob),
        conversation,
        {"reason": "housing", "reason_other": "snuck in", "age_group": "adult", "mood": "5"},
        complete=True,
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Complete." in html and "Save changes" in html
    saved = FormResponse.objects.get()
    assert saved.status == ResponseStatus.COMPLETE and saved.completed_at is not None
    assert _stored(conversation) == {"reason": ["housing"], "age_group": ["adult"], "mood": ["5"]}


def test_a_complete_form_stays_complete_and_refuses_an_edit_that_empties_a_required_answer(
    bob: Any, contact_form: Any, conversation: Conversation
) -> None:
    assume(bob, conversation)
    client = client_for(bob)
    _save(client, conversation, {"reason": "housing", "age_group": "adult"}, complete=True)
    refused = _save(client, conversation, {"reason": "housing"}, autosave=True)
    assert refused.status_code == 422
    assert "“Age group” is required." in refused.content.decode()
    assert (
        _save(
            client, conversation, {"reason": "loneliness", "age_group": "adult"}, autosave=True
        ).content
        == b"Saved."
    )
    assert FormResponse.objects.get().status == ResponseStatus.COMPLETE
    assert _stored(conversation)["reason"] == ["loneliness"]


def test_a_plain_post_without_htmx_redirects_to_the_conversation(
    bob: Any, contact_form: Any, conversation: Conversation
) -> None:
    assume(bob, conversation)
    url = reverse("forms:pane_contact_form", args=[conversation.pk])
    response = client_for(bob).post(url, {"f-reason": "housing"})
    assert response.status_code == 302
    assert response["Location"] == reverse("console:conversation", args=[conversation.pk])
    refused = client_for(bob).post(url, {"f-age": "x", "complete": "1"})
    assert refused.status_code == 422
    assert "“Age” takes a number." in refused.content.decode()


def test_answers_show_with_the_questions_of_the_version_they_were_given_under(
    bob: Any, contact_form: Any, conversation: Conversation
) -> None:
    assume(bob, conversation)
    client = client_for(bob)
    _save(client, conversation, {"reason": "housing", "age_group": "adult"}, complete=True)
    edited = {
        "sections": [
            {
                "key": "about",
                "title": "About",
                "fields": [
                    {"key": "reason", "label": "Main reason they reached out", "kind": "text"},
                ],
            }
        ]
    }
    new_version(contact_form, edited)
    html = _pane(client, conversation).content.decode()
    assert "<legend>Reason for contact" in html
    assert "Main reason they reached out" not in html
    assert "answered under version 1 (the form has changed since)" in html
    assert FormResponse.objects.get().version.number == 1


# --- the risk assessment --------------------------------------------------------------------

NO = "no"
PATHS = [
    ({"wish_dead": "yes", "thoughts": NO, "behaviour": NO}, 1, "low"),
    (
        {
            "wish_dead": "yes",
            "thoughts": "yes",
            "method": "yes",
            "intent": NO,
            "plan": NO,
            "behaviour": NO,
        },
        2,
        "moderate",
    ),
    (
        {
            "wish_dead": NO,
            "thoughts": "yes",
            "method": NO,
            "intent": "yes",
            "plan": NO,
            "behaviour": NO,
        },
        3,
        "high",
    ),
    (
        {
            "wish_dead": NO,
            "thoughts": "yes",
            "method": NO,
            "intent": NO,
            "plan": "yes",
            "behaviour": NO,
        },
        3,
        "high",
    ),
    ({"wish_dead": NO, "thoughts": NO, "behaviour": "yes", "behaviour_recent": NO}, 2, "moderate"),
    ({"wish_dead": NO, "thoughts": NO, "behaviour": "yes", "behaviour_recent": "yes"}, 3, "high"),
    ({"wish_dead": NO, "thoughts": NO, "behaviour": NO}, None, "none identified"),
]


@pytest.mark.parametrize(("answers", "level", "word"), PATHS)
def test_the_screeners_skip_paths_give_the_risk_level(
    org: Any,
    bob: Any,
    conversation: Conversation,
    answers: dict[str, str],
    level: int | None,
    word: str,
    published: list[dict[str, Any]],
) -> None:
    screener(org)
    assume(bob, conversation)
    response = _save(
        client_for(bob), conversation, answers, complete=True, purpose="risk_assessment"
    )
    assert response.status_code == 200, response.content.decode()[:500]
    saved = FormResponse.objects.get(purpose="risk")
    assert saved.risk_level == level
    assert Conversation.objects.get(pk=conversation.pk).risk_level == level
    assert f"Risk: {word}" in response.content.decode()
    event = AuditEvent.objects.get(action="risk_assessment.complete")
    assert event.actor == bob and event.object_id == str(conversation.pk)
    assert event.detail == f"Risk: {word}"


def test_a_risk_question_after_a_no_to_question_2_is_not_asked_and_its_answer_dropped(
    org: Any, bob: Any, conversation: Conversation
) -> None:
    screener(org)
    assume(bob, conversation)
    answers = {"wish_dead": NO, "thoughts": NO, "intent": "yes", "behaviour": NO}
    response = _save(
        client_for(bob), conversation, answers, complete=True, purpose="risk_assessment"
    )
    assert response.status_code == 200
    assert FormResponse.objects.get().risk_level is None
    assert "intent" not in _stored(conversation)


def test_the_screener_refuses_completion_without_question_6(
    org: Any, bob: Any, conversation: Conversation
) -> None:
    screener(org)
    assume(bob, conversation)
    response = _save(
        client_for(bob),
        conversation,
        {"wish_dead": "yes", "thoughts": NO},
        complete=True,
        purpose="risk_assessment",
    )
    assert response.status_code == 422
    assert 'data-error-for="behaviour"' in response.content.decode()
    assert Conversation.objects.get(pk=conversation.pk).risk_level is None


def test_the_pane_header_and_the_contact_page_show_the_latest_risk(
    org: Any, bob: Any, conversation: Conversation
) -> None:
    screener(org)
    assume(bob, conversation)
    client = client_for(bob)
    high = {"wish_dead": NO, "thoughts": NO, "behaviour": "yes", "behaviour_recent": "yes"}
    _save(client, conversation, high, complete=True, purpose="risk_assessment")
    html = _pane(client, conversation).content.decode()
    assert (
        f'id="risk-{conversation.pk}" title="The latest risk assessment">Risk: high</span>' in html
    )
    page = client.get(reverse("console:contact", args=[conversation.contact_id])).content.decode()
    assert "Latest risk assessment" in page and "High" in page


def test_an_inboxs_own_risk_form_comes_before_the_organizations_screener(
    org: Any, bob: Any, sandbox_number: Any, conversation: Conversation
) -> None:
    from openline.forms.tests.pane_support import make_form, use

    screener(org)
    own = make_form(org, CONTACT_SCHEMA, name="Our risk questions")
    use(sandbox_number, own, "risk")
    assume(bob, conversation)
    html = _pane(client_for(bob), conversation).content.decode()
    assert "Our risk questions" in html
    assert "Risk screener (Columbia" not in html


# --- the surveys ----------------------------------------------------------------------------


def test_survey_answers_are_shown_read_only(
    org: Any, bob: Any, contact_form: Any, conversation: Conversation
) -> None:
    from openline.forms.tests.pane_support import make_form

    survey = make_form(org, CONTACT_SCHEMA, name="How was it?")
    response = response_start(
        form=survey,
        purpose="post_survey",
        channel="sms",
        conversation_id=conversation.pk,
        contact_id=conversation.contact_id,
    )
    answers = answers_clean(schema_load(CONTACT_SCHEMA), {"reason": "loneliness"}, partial=True)
    response_answers_save(response=response, answers=answers, status=ResponseStatus.COMPLETE)
    assume(bob, conversation)
    html = _pane(client_for(bob), conversation).content.decode()
    assert "How was it?" in html
    assert "<dt>Reason for contact</dt><dd>Loneliness</dd>" in html
    assert "<dt>What else?</dt>" not in html  # hidden by show-if


def test_the_pane_forms_cost_the_same_queries_however_many_answers(
    org: Any,
    bob: Any,
    contact_form: Any,
    conversation: Conversation,
    django_assert_max_num_queries: Any,
) -> None:
    from openline.forms.filling import pane_sections

    screener(org)
    assume(bob, conversation)
    _save(client_for(bob), conversation, {"reason": "housing"}, autosave=True)

    def count() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            pane_sections(conversation=conversation, editable=True)
        return len(queries.captured_queries)

    few = count()
    data = {"reason": "housing", "needs": ["food", "shelter"], "mood": "3", "notes": "n"}
    _save(client_for(bob), conversation, data, autosave=True)
    assert count() == few
    with django_assert_max_num_queries(3):  # responses, forms offered, answers
        pane_sections(conversation=conversation, editable=True)
