"""The inbox's manual switch: automatic (by shifts) or forced offline."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from openline.availability.models import AvailabilityMode, InboxAvailability
from openline.availability.services.common import ShiftError, publish_state, require_manager
from openline.core.services import audit_record
from openline.providers.models import Number

MAX_NOTE = 200


@transaction.atomic
def availability_set(
    *, organization_id: int, actor_id: int, number_id: int, mode: str, note: str = ""
) -> InboxAvailability:
    """Set an inbox's switch: ``automatic`` (online while a normal shift is staffed) or
    ``offline`` (forced, e.g. a surge or an emergency). Records who and when."""
    require_manager(organization_id, actor_id)
    if mode not in AvailabilityMode.values:
        raise ShiftError("invalid", "the switch is automatic or offline")
    note = note.strip()
    if len(note) > MAX_NOTE:
        raise ShiftError("invalid", f"keep the note under {MAX_NOTE} characters")
    if not Number.objects.filter(pk=number_id, organization_id=organization_id).exists():
        raise ShiftError("not_found", "there is no such inbox")
    availability, _ = InboxAvailability.objects.update_or_create(
        number_id=number_id,
        defaults={
            "organization_id": organization_id,
            "mode": mode,
            "note": note if mode == AvailabilityMode.OFFLINE else "",
            "changed_by_id": actor_id,
            "changed_at": timezone.now(),
        },
    )
    audit_record(
        organization_id=organization_id,
        actor_id=actor_id,
        action=f"inbox.availability.{mode}",
        object_type="number",
        object_id=number_id,
    )
    publish_state(organization_id, number_id)
    return availability
