"""Migration messaging 0014: conversations closed unattended after a clear reminder or survey
answer (their event note says "Handled automatically.") are marked handled, so that reports
stop counting them as abandoned; nothing else is."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from django.apps import apps
from django.utils import timezone

from openline.contacts.models import Contact
from openline.messaging.models import Conversation, ConversationNote, NoteKind

pytestmark = pytest.mark.django_db

migration = importlib.import_module(
    "openline.messaging.migrations.0014_conversation_handled_automatically"
)


def _closed(org: Any, number: Any, phone: str, note: str, **fields: Any) -> Conversation:
    now = timezone.now()
    contact = Contact.objects.create(organization=org, phone=phone)
    conversation = Conversation.objects.create(
        organization=org,
        number=number,
        contact=contact,
        status="closed",
        closed_at=now,
        last_message_at=now,
        **fields,
    )
    ConversationNote.objects.create(
        organization=org, conversation=conversation, kind=NoteKind.EVENT, body=note, created_at=now
    )
    return conversation


def test_only_automatic_closes_are_marked_handled(org: Any, bob: Any, sandbox_number: Any) -> None:
    survey = _closed(
        org,
        sandbox_number,
        "+12025550161",
        "Answered the survey after an earlier conversation. Handled automatically.",
    )
    reminder = _closed(
        org,
        sandbox_number,
        "+12025550162",
        "Answered the appointment reminder: confirmed. Handled automatically.",
    )
    left = _closed(org, sandbox_number, "+12025550163", "The visitor left before anyone answered.")
    # A member's note that happens to end the same way is not an automatic close.
    assumed = _closed(
        org,
        sandbox_number,
        "+12025550164",
        "Handled automatically.",
        assigned_to=bob,
        assigned_at=timezone.now(),
    )
    Conversation.objects.update(handled_automatically=False)

    migration.mark_handled(apps, None)

    handled = set(
        Conversation.objects.filter(handled_automatically=True).values_list("pk", flat=True)
    )
    assert handled == {survey.pk, reminder.pk}
    assert left.pk not in handled and assumed.pk not in handled
