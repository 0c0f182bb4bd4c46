"""Storing answers: one engine for every place a form is filled in (the console's pane, a
text survey, the chat widget). A response belongs to one form version; saving answers
replaces that response's answers with the new set (a draft saved as it is filled in, then
completed), and never touches answers given under another version.

Answers are form content, like message bodies: keep every read and write of them here, so
encryption at rest (a later issue) stays local."""

from __future__ import annotations

from collections.abc import Mapping

from django.db import transaction
from django.utils import timezone

from openline.forms.models import (
    Form,
    FormAnswer,
    FormResponse,
    FormVersion,
    ResponseStatus,
)
from openline.forms.schema import Answer, Answers, Schema, answers_from_rows, schema_load


class FormNotReady(ValueError):
    """The form has no version yet (nothing to answer)."""


def version_schema(version: FormVersion) -> Schema:
    return schema_load(version.schema)


def response_start(
    *,
    form: Form,
    purpose: str,
    channel: str,
    conversation_id: int | None,
    contact_id: int | None,
    answered_by_id: int | None = None,
) -> FormResponse:
    """A new, empty response under the form's current version. The form's row is locked
    as in forms.services' saves, so an edit in place cannot slip in between reading the
    version and answering it."""
    with transaction.atomic():
        version_id = (
            Form.objects.select_for_update()
            .filter(pk=form.pk)
            .values_list("current_version_id", flat=True)
            .first()
        )
        if version_id is None:
            raise FormNotReady(f"“{form.name}” has no questions yet.")
        return FormResponse.objects.create(
            organization_id=form.organization_id,
            form=form,
            version_id=version_id,
            purpose=purpose,
            channel=channel,
            conversation_id=conversation_id,
            contact_id=contact_id,
            answered_by_id=answered_by_id,
        )


@transaction.atomic
def response_answers_save(
    *,
    response: FormResponse,
    answers: Mapping[str, list[Answer]],
    status: str | None = None,
    risk_level: int | None = None,
) -> FormResponse:
    """Replace the response's answers with ``answers`` (already cleaned against its version,
    forms.schema.answers_clean); ``status`` COMPLETE stamps ``completed_at``."""
    FormAnswer.objects.filter(response=response).delete()
    FormAnswer.objects.bulk_create(_rows(response, answers))
    fields = ["updated_at"]
    if status is not None:
        response.status = status
        fields.append("status")
        if status == ResponseStatus.COMPLETE and response.completed_at is None:
            response.completed_at = timezone.now()
            fields.append("completed_at")
    if risk_level is not None or response.risk_level is not None:
        response.risk_level = risk_level
        fields.append("risk_level")
    response.save(update_fields=fields)
    return response


@transaction.atomic
def response_answer_add(*, response: FormResponse, key: str, items: list[Answer]) -> None:
    """Add (or replace) one field's answer: a text survey records answers one at a time."""
    FormAnswer.objects.filter(response=response, field_key=key).delete()
    FormAnswer.objects.bulk_create(_rows(response, {key: items}))
    FormResponse.objects.filter(pk=response.pk).update(updated_at=timezone.now())


def _rows(response: FormResponse, answers: Mapping[str, list[Answer]]) -> list[FormAnswer]:
    return [
        FormAnswer(
            organization_id=response.organization_id,
            response_id=response.pk,
            form_id=response.form_id,
            field_key=key,
            value=answer.value,
            label=answer.label[:300],
            number=answer.number,
            date=answer.date,
            position=position,
        )
        for key, items in answers.items()
        for position, answer in enumerate(items)
    ]


def response_answers(response: FormResponse) -> Answers:
    """The stored answers, in the shape forms.schema works with (severities from the
    version the response was given under)."""
    rows = list(
        FormAnswer.objects.filter(response=response)
        .order_by("id")
        .values_list("field_key", "value", "label")
    )
    return answers_from_rows(version_schema(response.version), rows)
