"""One conversation's full history as CSV and as a printable page. Each export and print is
audited on its own (taking a copy away is a distinct act, unlike reading in the console)."""

from __future__ import annotations

import csv
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from openline.chat.selectors import chat_session_of
from openline.console.templatetags.console_tags import who
from openline.core.models import Organization
from openline.core.services import audit_transcript_export
from openline.core.web import console_view
from openline.forms.filling import conversation_forms
from openline.messaging import selectors
from openline.messaging.models import Conversation, Message
from openline.messaging.services.assignment import Access
from openline.messaging.web import with_conversation

# A cell starting with one of these is a formula to a spreadsheet: quote it.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _answer_rows(conversation: Conversation) -> list[list[str]]:
    """A web chat's pre-chat answers and post-chat survey, one row per answer."""
    session = chat_session_of(conversation)
    if session is None:
        return []
    rows = []
    for kind, answers, at in (
        ("pre-chat answer", session.prechat, session.created_at),
        ("survey answer", session.survey, session.survey_at),
    ):
        when = timezone.localtime(at).isoformat() if at else ""
        rows += [[when, kind, str(a["prompt"]), "", "", str(a["answer"])] for a in answers]
    return rows


def _form_rows(conversation: Conversation) -> list[list[str]]:
    """Forms answered for the conversation (contact form, risk assessment, surveys): a row
    per question answered, as it was asked, in the version answered."""
    rows = []
    for item in conversation_forms(conversation_id=conversation.pk):
        response = item.response
        assert response is not None
        at = response.completed_at or response.updated_at
        what = f"{item.form.name} (version {item.version_number})"
        status = response.get_status_display().lower()
        author = str(response.answered_by or "")
        rows += [
            [timezone.localtime(at).isoformat(), "form answer", f"{what}: {row.field.label}"]
            + [author, status, row.text]
            for _, fields in item.sections
            for row in fields
            if row.visible and row.text
        ]
    return rows


def _rows(conversation: Conversation) -> list[list[str]]:
    rows = _answer_rows(conversation)
    for item in selectors.conversation_history(conversation=conversation):
        when = timezone.localtime(item.created_at).isoformat()
        if isinstance(item, Message):
            author = (
                str(item.sender)
                if item.sender
                else ("" if item.direction == "in" else item.get_kind_display())
            )
            rows.append(
                [when, "message", item.get_direction_display(), author, item.status, item.body]
            )
        else:
            rows.append(
                [when, "note", item.get_kind_display(), str(item.author or ""), "", item.body]
            )
    return rows + _form_rows(conversation)


def _audit(request: HttpRequest, conversation: Conversation, how: str) -> None:
    audit_transcript_export(
        organization_id=conversation.organization_id,
        actor_id=request.user.pk,
        conversation_id=conversation.pk,
        how=how,
    )


@console_view
@require_GET
@with_conversation
def conversation_export_csv(
    request: HttpRequest, organization: Organization, conversation: Conversation, access: Access
) -> HttpResponse:
    _audit(request, conversation, "export")
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="conversation-{conversation.pk}.csv"'
    writer = csv.writer(response)
    writer.writerow(["time", "type", "direction_or_kind", "author", "status", "text"])
    for row in _rows(conversation):
        writer.writerow([_cell(value) for value in row])
    return response


@console_view
@require_GET
@with_conversation
def conversation_print(
    request: HttpRequest, organization: Organization, conversation: Conversation, access: Access
) -> HttpResponse:
    _audit(request, conversation, "print")
    context = {
        "conversation": conversation,
        "contact": conversation.contact,
        "label": who(conversation.contact),
        "history": selectors.conversation_history(conversation=conversation),
        "chat_session": chat_session_of(conversation),
        "forms": conversation_forms(conversation_id=conversation.pk),
        "printed_at": timezone.now(),
    }
    return render(request, "console/conversation_print.html", context)
