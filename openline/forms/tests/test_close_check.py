"""A required contact form must be complete before a conversation closes: the close is
refused with the questions still unanswered, then allowed once it is complete. The rule
holds for a supervisor closing someone else's conversation too."""

from __future__ import annotations

from typing import Any

from django.test import Client
from django.urls import reverse

from openline.core.models import Membership
from openline.forms.close_check import contact_form_problems
from openline.forms.models import FormUse
from openline.forms.tests.pane_support import (
    HTMX,
    assume,
    client_for,
    contact_form,
    conversation,
    make_form,
    new_version,
    use,
)
from openline.messaging.models import Conversation
from openline.messaging.services import assignment
from openline.messaging.services.assignment import AssignmentError

__all__ = ["contact_form", "conversation"]  # fixtures


def _close(client: Client, conversation: Conversation) -> Any:
    url = reverse("console:conversation_close", args=[conversation.pk])
    return client.post(url, {"wrap_up": ""}, headers=HTMX)


def _fill(client: Client, conversation: Conversation, data: dict[str, str], **flags: str) -> Any:
    url = reverse("forms:pane_contact_form", args=[conversation.pk])
    return client.post(url, {**{f"f-{k}": v for k, v in data.items()}, **flags}, headers=HTMX)


def _status(conversation: Conversation) -> str:
    return Conversation.objects.get(pk=conversation.pk).status


def test_close_is_refused_until_the_contact_form_is_started(
    bob: Any, contact_form: Any, conversation: Conversation
) -> None:
    assume(bob, conversation)
    response = _close(client_for(bob), conversation)
    assert response.status_code == 409
    assert (
        '<p class="form-error pane-flash" role="alert">Before closing: Complete the contact '
        "form: Reason for contact, Age group.</p>"
    ) in response.content.decode()
    assert _status(conversation) == "active"


def test_close_names_the_required_questions_missing_then_closes_once_complete(
    bob: Any, contact_form: Any, conversation: Conversation
) -> None:
    assume(bob, conversation)
    client = client_for(bob)
    _fill(client, conversation, {"reason": "other"})
    response = _close(client, conversation)
    assert response.status_code == 409
    assert (
        "Before closing: Complete the contact form: What else, Age group."
        in response.content.decode()
    )
    assert _status(conversation) == "active"
    _fill(client, conversation, {"reason": "housing", "age_group": "adult"})  # a draft
    assert (
        "Before closing: Mark the contact form complete."
        in _close(client, conversation).content.decode()
    )
    done = _fill(client, conversation, {"reason": "housing", "age_group": "adult"}, complete="1")
    assert done.status_code == 200
    closed = _close(client, conversation)
    assert closed.status_code == 200
    assert "Closed." in closed.content.decode()
    assert _status(conversation) == "closed"


def test_a_supervisor_closing_someone_elses_conversation_is_held_to_it_too(
    bob: Any, sue: Any, contact_form: Any, conversation: Conversation
) -> None:
    assume(bob, conversation)
    sue_client = client_for(sue)
    assert _close(sue_client, conversation).status_code == 409
    _fill(sue_client, conversation, {"reason": "housing", "age_group": "adult"}, complete="1")
    assert _close(sue_client, conversation).status_code == 200
    assert _status(conversation) == "closed"


def test_the_service_refuses_with_the_same_sentence(
    bob: Any, contact_form: Any, conversation: Conversation
) -> None:
    assume(bob, conversation)
    membership = Membership.objects.get(user=bob)
    try:
        assignment.conversation_close(membership=membership, conversation=conversation)
    except AssignmentError as exc:
        assert exc.code == "incomplete"
        # Nothing answered yet: the required questions shown now (not "What else?", shown
        # only for one answer of the first).
        assert (
            str(exc) == "Before closing: Complete the contact form: Reason for contact, Age group."
        )
    else:
        raise AssertionError("closed without the contact form")


def test_an_optional_contact_form_or_none_does_not_block(
    bob: Any, org: Any, sandbox_number: Any, text_in: Any
) -> None:
    first = text_in(sandbox_number, "+12025550111", "hello").conversation
    assert contact_form_problems(first) == []
    form = make_form(
        org,
        {
            "sections": [
                {
                    "key": "a",
                    "title": "",
                    "fields": [{"key": "why", "label": "Why?", "kind": "text", "required": True}],
                }
            ]
        },
    )
    use(sandbox_number, form, "contact", required=False)
    assert contact_form_problems(first) == []
    FormUse.objects.update(required=True)
    assert contact_form_problems(first) == ["Complete the contact form: Why."]


def test_missing_questions_are_those_of_the_version_answered(
    bob: Any, contact_form: Any, conversation: Conversation
) -> None:
    assume(bob, conversation)
    _fill(client_for(bob), conversation, {"reason": "housing"})
    new_version(
        contact_form,
        {
            "sections": [
                {
                    "key": "a",
                    "title": "",
                    "fields": [
                        {"key": "mood_now", "label": "Mood now", "kind": "text", "required": True}
                    ],
                }
            ]
        },
    )
    assert contact_form_problems(conversation) == ["Complete the contact form: Age group."]
