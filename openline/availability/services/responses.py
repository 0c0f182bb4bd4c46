"""Editing an inbox's auto-responses: admins and supervisors, audited."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from openline.availability.models import InboxResponses
from openline.availability.services.common import ShiftError, require_manager
from openline.core.services import audit_record
from openline.providers.models import Number


@transaction.atomic
def inbox_responses_set(
    *,
    organization_id: int,
    actor_id: int,
    number_id: int,
    offline_enabled: bool,
    offline_text: str,
    offline_period_hours: int,
    greeting_enabled: bool,
    greeting_text: str,
    busy_enabled: bool,
    busy_text: str,
    busy_threshold: int,
) -> InboxResponses:
    """Save the inbox's answers. A switched-on answer needs its words."""
    require_manager(organization_id, actor_id)
    if not Number.objects.filter(pk=number_id, organization_id=organization_id).exists():
        raise ShiftError("not_found", "there is no such inbox")
    texts = {
        "offline": (offline_enabled, offline_text.strip()),
        "greeting": (greeting_enabled, greeting_text.strip()),
        "busy": (busy_enabled, busy_text.strip()),
    }
    for name, (enabled, text) in texts.items():
        if enabled and not text:
            raise ShiftError("invalid", f"write the {name} text or switch it off")
    responses = InboxResponses.objects.filter(number_id=number_id).first() or InboxResponses(
        organization_id=organization_id, number_id=number_id
    )
    responses.offline_enabled, responses.offline_text = texts["offline"]
    responses.greeting_enabled, responses.greeting_text = texts["greeting"]
    responses.busy_enabled, responses.busy_text = texts["busy"]
    responses.offline_period_hours = offline_period_hours
    responses.busy_threshold = busy_threshold
    responses.updated_by_id = actor_id
    try:
        responses.full_clean(exclude=["organization", "number", "updated_by"])
    except ValidationError as exc:
        raise ShiftError("invalid", " ".join(exc.messages)) from exc
    responses.save()
    audit_record(
        organization_id=organization_id,
        actor_id=actor_id,
        action="inbox.responses.update",
        object_type="number",
        object_id=number_id,
    )
    return responses
