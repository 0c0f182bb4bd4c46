"""Reads about forms, always scoped to one organization (or one inbox of it)."""

from __future__ import annotations

from collections.abc import Sequence

from openline.forms.models import Form, FormResponse, FormUse


def form_get(*, organization_id: int, form_id: int) -> Form:
    """Raises Form.DoesNotExist for another organization's form (a 404 for views)."""
    return Form.objects.select_related("current_version").get(
        pk=form_id, organization_id=organization_id
    )


def forms_list(*, organization_id: int, archived: bool = False) -> list[Form]:
    return list(
        Form.objects.filter(organization_id=organization_id, archived_at__isnull=not archived)
        .select_related("current_version")
        .order_by("name")
    )


def form_use_for(*, number_id: int, purpose: str) -> FormUse | None:
    """The form an inbox uses for ``purpose``, if it has a version to answer."""
    return (
        FormUse.objects.select_related("form__current_version")
        .filter(
            number_id=number_id,
            purpose=purpose,
            form__archived_at__isnull=True,
            form__current_version__isnull=False,
        )
        .first()
    )


def form_uses_for(*, number_ids: Sequence[int], purpose: str) -> dict[int, FormUse]:
    """``form_use_for`` for several inboxes in one query."""
    return {
        use.number_id: use
        for use in FormUse.objects.select_related("form__current_version").filter(
            number_id__in=list(number_ids),
            purpose=purpose,
            form__archived_at__isnull=True,
            form__current_version__isnull=False,
        )
    }


def conversation_responses(*, conversation_id: int) -> list[FormResponse]:
    """Every response given for a conversation, oldest first, with form and version."""
    return list(
        FormResponse.objects.filter(conversation_id=conversation_id)
        .select_related("form", "version", "answered_by")
        .order_by("created_at", "id")
    )
