"""Creating, cancelling (one date) and deleting shifts: admins and supervisors."""

from __future__ import annotations

from datetime import date, datetime, time

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from openline.availability.models import (
    MAX_PLACES,
    MAX_SHIFT_MINUTES,
    MIN_SHIFT_MINUTES,
    Shift,
    ShiftKind,
)
from openline.availability.recurrence import bounds, exdate_key, find, validate_rrule
from openline.availability.services.common import (
    ShiftError,
    audit,
    locked_shift,
    publish_if_current,
    publish_state,
    require_manager,
)
from openline.core.models import Organization
from openline.providers.models import Number


def _check_shape(*, kind: str, places: int, duration_minutes: int, title: str) -> None:
    if kind not in ShiftKind.values:
        raise ShiftError("invalid", "a shift is normal or on call")
    if not 1 <= places <= MAX_PLACES:
        raise ShiftError("invalid", f"places must be between 1 and {MAX_PLACES}")
    if not MIN_SHIFT_MINUTES <= duration_minutes <= MAX_SHIFT_MINUTES:
        raise ShiftError("invalid", "a shift lasts between 15 minutes and 24 hours")
    if len(title) > 100:
        raise ShiftError("invalid", "keep the title under 100 characters")


def _inbox(organization_id: int, number_id: int | None, kind: str) -> Number | None:
    if number_id is None:
        if kind == ShiftKind.NORMAL:
            raise ShiftError("invalid", "a normal shift staffs one inbox: choose it")
        return None
    number = Number.objects.filter(pk=number_id, organization_id=organization_id).first()
    if number is None:
        raise ShiftError("not_found", "there is no such inbox")
    return number


@transaction.atomic
def shift_create(
    *,
    organization_id: int,
    actor_id: int,
    number_id: int | None,
    kind: str,
    start_date: date,
    start_time: time,
    duration_minutes: int,
    places: int = 1,
    rrule: str = "",
    title: str = "",
) -> Shift:
    """A one-off shift (blank ``rrule``) or a recurring one (an RFC 5545 RRULE value,
    expanded in the organization's time zone from the local ``start_date`` and
    ``start_time``). ``number_id`` None: an on-call shift covering every inbox."""
    require_manager(organization_id, actor_id)
    title = title.strip()
    _check_shape(kind=kind, places=places, duration_minutes=duration_minutes, title=title)
    number = _inbox(organization_id, number_id, kind)
    organization = Organization.objects.get(pk=organization_id)
    try:
        rule = validate_rrule(rrule, dtstart=datetime.combine(start_date, start_time))
    except ValidationError as exc:
        raise ShiftError("invalid", " ".join(exc.messages)) from exc
    shift = Shift(
        organization_id=organization_id,
        number=number,
        kind=kind,
        title=title,
        timezone=organization.timezone,
        start_date=start_date,
        start_time=start_time,
        duration_minutes=duration_minutes,
        rrule=rule,
        places=places,
        created_by_id=actor_id,
    )
    shift.first_start, shift.last_end = bounds(shift)
    shift.save()
    audit(organization_id, actor_id, "shift.create", shift.pk)
    return shift


@transaction.atomic
def shift_delete(*, organization_id: int, actor_id: int, shift_id: int) -> None:
    """Delete a shift with all its occurrences and sign-ups."""
    require_manager(organization_id, actor_id)
    shift = locked_shift(organization_id, shift_id)
    now = timezone.now()
    current = shift.signups.filter(occurrence_start__lte=now, occurrence_end__gt=now).exists()
    shift.delete()
    audit(organization_id, actor_id, "shift.delete", shift_id)
    if current and shift.kind == ShiftKind.NORMAL and shift.number_id:
        publish_state(organization_id, shift.number_id)


@transaction.atomic
def shift_cancel_occurrence(
    *, organization_id: int, actor_id: int, shift_id: int, occurrence_start: datetime
) -> None:
    """Cancel one date of a shift (its sign-ups go with it); a one-off shift is deleted."""
    require_manager(organization_id, actor_id)
    shift = locked_shift(organization_id, shift_id)
    occurrence = find(shift, occurrence_start)
    if occurrence is None:
        raise ShiftError("not_found", "the shift does not take place then")
    if not shift.is_recurring:
        shift_delete(organization_id=organization_id, actor_id=actor_id, shift_id=shift_id)
        return
    shift.exdates = [*shift.exdates, exdate_key(shift, occurrence.start)]
    shift.save(update_fields=["exdates"])
    shift.signups.filter(occurrence_start=occurrence.start).delete()
    audit(organization_id, actor_id, "shift.cancel_occurrence", shift_id)
    publish_if_current(shift, occurrence.start, occurrence.end)
