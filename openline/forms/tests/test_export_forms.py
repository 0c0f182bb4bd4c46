"""Forms answered in a conversation appear in its CSV export (a row per answer: form,
version, the question as asked, the answer) and on its printable page."""

from __future__ import annotations

import csv
import io
from typing import Any

from django.urls import reverse

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


def _answer(bob: Any, conversation: Conversation) -> None:
    assume(bob, conversation)
    url = reverse("forms:pane_contact_form", args=[conversation.pk])
    data = {
        "f-reason": "housing",
        "f-age_group": "adult",
        "f-needs": ["food", "shelter"],
        "f-notes": "=cmd|' /C calc'!A0",
        "complete": "1",
    }
    assert client_for(bob).post(url, data, headers=HTMX).status_code == 200


def test_csv_export_has_a_row_per_answer_with_form_version_and_question(
    bob: Any, contact_form: Any, conversation: Conversation
) -> None:
    _answer(bob, conversation)
    new_version(
        contact_form,
        {
            "sections": [
                {
                    "key": "a",
                    "title": "",
                    "fields": [{"key": "reason", "label": "Renamed question", "kind": "text"}],
                }
            ]
        },
    )
    url = reverse("console:conversation_export_csv", args=[conversation.pk])
    rows = list(csv.reader(io.StringIO(client_for(bob).get(url).content.decode())))
    answers = [r for r in rows if r[1] == "form answer"]
    assert [r[2:] for r in answers] == [
        ["Contact form (version 1): Reason for contact", "bob@example.org", "complete", "Housing"],
        ["Contact form (version 1): Age group", "bob@example.org", "complete", "18 or over"],
        ["Contact form (version 1): Notes", "bob@example.org", "complete", "'=cmd|' /C calc'!A0"],
        ["Contact form (version 1): Needs", "bob@example.org", "complete", "Food, Shelter"],
    ]
    assert "Hi, is anyone there?" in rows[1][5]  # the transcript is still there


def test_printout_shows_each_form_with_its_questions_and_answers(
    org: Any, bob: Any, contact_form: Any, conversation: Conversation
) -> None:
    _answer(bob, conversation)
    screener(org)
    risk = reverse("forms:pane_risk_assessment", args=[conversation.pk])
    high = {
        "f-wish_dead": "no",
        "f-thoughts": "no",
        "f-behaviour": "yes",
        "f-behaviour_recent": "yes",
        "complete": "1",
    }
    assert client_for(bob).post(risk, high, headers=HTMX).status_code == 200
    url = reverse("console:conversation_print", args=[conversation.pk])
    html = client_for(bob).get(url).content.decode()
    assert "<h2>Contact form</h2>" in html
    assert "<dt>Reason for contact</dt><dd>Housing</dd>" in html
    assert "<dt>What else?</dt>" not in html  # not asked (show-if)
    assert "<dt>Age</dt><dd>—</dd>" in html
    assert "risk: high" in html
    assert "<dd>Yes</dd>" in html and "6b. Was this within the past three months?" in html
