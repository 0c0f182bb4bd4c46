"""Shared by the pane, close-check and export tests: forms made straight from the models
(a contact form with a show-if question, the Columbia screener), used by the sandbox
inbox, and conversations texted in through the real pipeline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from openline.core.models import Membership
from openline.forms import cssrs
from openline.forms.models import Form, FormKind, FormUse, FormVersion
from openline.messaging.models import Conversation
from openline.messaging.services import assignment

PERSON = "+12025550187"
HTMX = {"HX-Request": "true"}

CONTACT_SCHEMA: dict[str, Any] = {
    "sections": [
        {
            "key": "about",
            "title": "About the contact",
            "fields": [
                {
                    "key": "reason",
                    "label": "Reason for contact",
                    "kind": "choice",
                    "required": True,
                    "options": [
                        {"value": "housing", "label": "Housing"},
                        {"value": "loneliness", "label": "Loneliness"},
                        {"value": "other", "label": "Something else"},
                    ],
                },
                {
                    "key": "reason_other",
                    "label": "What else?",
                    "kind": "text",
                    "required": True,
                    "show_if": {"field": "reason", "values": ["other"]},
                },
                {
                    "key": "age_group",
                    "label": "Age group",
                    "kind": "choice",
                    "required": True,
                    "options": [
                        {"value": "under_18", "label": "Under 18"},
                        {"value": "adult", "label": "18 or over"},
                    ],
                },
                {"key": "age", "label": "Age", "kind": "number", "min": 5, "max": 120},
                {"key": "notes", "label": "Notes", "kind": "long_text"},
                {"key": "follow_up", "label": "Follow-up on", "kind": "date"},
                {
                    "key": "needs",
                    "label": "Needs",
                    "kind": "multi_choice",
                    "options": [
                        {"value": "food", "label": "Food"},
                        {"value": "shelter", "label": "Shelter"},
                    ],
                },
                {"key": "safe", "label": "Feels safe now", "kind": "yesno"},
                {"key": "mood", "label": "Mood at the end", "kind": "scale"},
                {
                    "key": "steps",
                    "label": "Steps taken",
                    "kind": "checklist",
                    "options": [{"value": "safety_plan", "label": "Safety plan"}],
                },
                {
                    "key": "topic",
                    "label": "Topic (2-1-1)",
                    "kind": "taxonomy",
                    "options": [
                        {"value": "BH-1800", "label": "Crisis intervention"},
                        {"value": "BD-1800", "label": "Food pantries"},
                        {"value": "T-1", "label": "Other service 1"},
                        {"value": "T-2", "label": "Other service 2"},
                        {"value": "T-3", "label": "Other service 3"},
                        {"value": "T-4", "label": "Other service 4"},
                        {"value": "T-5", "label": "Other service 5"},
                        {"value": "T-6", "label": "Other service 6"},
                        {"value": "T-7", "label": "Other service 7"},
                        {"value": "T-8", "label": "Other service 8"},
                    ],
                },
            ],
        }
    ]
}


def make_form(
    org: Any, schema: dict[str, Any], *, name: str = "Contact form", **extra: Any
) -> Form:
    form = Form.objects.create(organization=org, name=name, **extra)
    version = FormVersion.objects.create(organization=org, form=form, number=1, schema=schema)
    form.current_version = version
    form.save(update_fields=["current_version"])
    return form


def new_version(form: Form, schema: dict[str, Any]) -> FormVersion:
    number = form.versions.count() + 1
    version = FormVersion.objects.create(
        organization_id=form.organization_id, form=form, number=number, schema=schema
    )
    form.current_version = version
    form.save(update_fields=["current_version"])
    return version


def use(number: Any, form: Form, purpose: str, *, required: bool = False) -> FormUse:
    return FormUse.objects.create(
        organization_id=number.organization_id,
        number=number,
        form=form,
        purpose=purpose,
        required=required,
    )


def screener(org: Any) -> Form:
    return make_form(org, cssrs.SCHEMA, name=cssrs.NAME, kind=FormKind.RISK_SCREENER)


def assume(user: Any, conversation: Conversation) -> None:
    membership = Membership.objects.get(user=user, organization_id=conversation.organization_id)
    assignment.conversation_assume(membership=membership, conversation=conversation)


def client_for(user: Any) -> Client:
    signed_in = Client()
    signed_in.force_login(user)
    return signed_in


@pytest.fixture
def contact_form(org: Any, sandbox_number: Any) -> Form:
    form = make_form(org, CONTACT_SCHEMA)
    use(sandbox_number, form, "contact", required=True)
    return form


@pytest.fixture
def conversation(text_in: Callable[..., Any], sandbox_number: Any) -> Conversation:
    message = text_in(sandbox_number, PERSON, "Hi, is anyone there?")
    return message.conversation  # type: ignore[no-any-return]
