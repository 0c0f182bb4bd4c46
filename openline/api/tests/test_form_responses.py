"""GET /conversations/{id}/forms: the forms answered for a conversation, with their answers
as asked in the version answered; the read is audited; other organizations see nothing."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from openline.core.models import AuditEvent
from openline.forms.tests.pane_support import (
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


def _fill(bob: Any, conversation: Conversation) -> None:
    assume(bob, conversation)
    contact = reverse("forms:pane_contact_form", args=[conversation.pk])
    answers = {
        "f-reason": "housing",
        "f-age_group": "adult",
        "f-needs": ["food", "shelter"],
        "complete": "1",
    }
    assert client_for(bob).post(contact, answers, headers=HTMX).status_code == 200
    risk = reverse("forms:pane_risk_assessment", args=[conversation.pk])
    high = {
        "f-wish_dead": "no",
        "f-thoughts": "no",
        "f-behaviour": "yes",
        "f-behaviour_recent": "yes",
        "complete": "1",
    }
    assert client_for(bob).post(risk, high, headers=HTMX).status_code == 200


def test_each_response_comes_with_its_version_answers_and_risk_level(
    api: Any, org: Any, bob: Any, contact_form: Any, conversation: Conversation
) -> None:
    screener(org)
    _fill(bob, conversation)
    new_version(  # editing the form later changes nothing already answered
        contact_form,
        {
            "sections": [
                {
                    "key": "a",
                    "title": "",
                    "fields": [{"key": "reason", "label": "Why?", "kind": "text"}],
                }
            ]
        },
    )

    response = api.get(f"/conversations/{conversation.pk}/forms")

    assert response.status_code == 200
    data = response.json()
    assert data["count"] == 2
    contact, risk = data["items"]
    assert (contact["form"], contact["version"], contact["purpose"]) == (
        "Contact form",
        1,
        "contact",
    )
    assert (contact["channel"], contact["status"], contact["answered_by_id"]) == (
        "console",
        "complete",
        bob.pk,
    )
    assert contact["risk_level"] is None and contact["completed_at"] is not None
    assert contact["answers"] == [
        {
            "key": "reason",
            "question": "Reason for contact",
            "values": ["housing"],
            "text": "Housing",
        },
        {"key": "age_group", "question": "Age group", "values": ["adult"], "text": "18 or over"},
        {
            "key": "needs",
            "question": "Needs",
            "values": ["food", "shelter"],
            "text": "Food, Shelter",
        },
    ]
    assert (risk["purpose"], risk["risk_level"]) == ("risk", "high")
    assert [a["key"] for a in risk["answers"]] == [
        "wish_dead",
        "thoughts",
        "behaviour",
        "behaviour_recent",
    ]  # the questions the skip logic left out are not listed
    audit = AuditEvent.objects.get(action="transcript.read.api")
    assert (audit.organization_id, audit.object_id) == (org.pk, str(conversation.pk))


def test_a_conversation_without_forms_has_an_empty_list(
    api: Any, conversation: Conversation
) -> None:
    assert api.get(f"/conversations/{conversation.pk}/forms").json() == {"items": [], "count": 0}


def test_another_organizations_token_gets_404_and_nothing_is_audited(
    api: Any, other_api: Any, bob: Any, contact_form: Any, conversation: Conversation
) -> None:
    _fill_contact_only = reverse("forms:pane_contact_form", args=[conversation.pk])
    assume(bob, conversation)
    client_for(bob).post(_fill_contact_only, {"f-reason": "food"}, headers=HTMX)

    refused = other_api.get(f"/conversations/{conversation.pk}/forms")

    assert refused.status_code == 404
    assert refused.json()["code"] == "not_found"
    assert "food" not in refused.content.decode().lower()
    assert not AuditEvent.objects.filter(action__startswith="transcript.").exists()
    assert api.get("/conversations/99999999/forms").status_code == 404
