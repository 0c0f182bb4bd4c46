"""Appointments: saved by the REST API, a CSV import or by hand, each save re-planning the
appointment's reminders at once (campaigns.reminders)."""

from __future__ import annotations

import functools
import zoneinfo
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from openline.campaigns.models import Appointment, AppointmentStatus, AppointmentType
from openline.campaigns.reminders import reminders_plan
from openline.contacts.phones import InvalidPhoneNumber, normalize_phone
from openline.contacts.services.contacts import contact_get_or_create
from openline.core.services import audit_record

MAX_MINUTES = 24 * 60
# A scheduling system may push a visit that started a moment ago; further back is a mistake.
PAST_GRACE = timedelta(minutes=5)


# Zones the server names but that are no place a visit happens.
_NOT_PLACES = frozenset({"localtime", "Factory", "posixrules"})


@functools.cache
def known_time_zones() -> frozenset[str]:
    """The IANA names a visit may be in. A name is checked against this list rather than by
    loading it: "America" (a folder) or 300 letters would fail in the file system, not as
    a miss."""
    return frozenset(zoneinfo.available_timezones()) - _NOT_PLACES


class AppointmentError(Exception):
    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class AppointmentData:
    """What a caller gives: the start as a local wall-clock time plus its time zone, or an
    aware datetime (then ``time_zone`` still says where the visit is)."""

    phone: str
    starts_at: datetime
    time_zone: str
    minutes: int = 30
    staff_name: str = ""
    location: str = ""
    type_name: str = ""
    status: str = AppointmentStatus.BOOKED
    external_id: str = ""
    name: str = ""


def _checked(organization_id: int, data: AppointmentData, now: datetime) -> dict[str, object]:
    if data.time_zone not in known_time_zones():
        raise AppointmentError(f"unknown time zone {data.time_zone[:64]!r}", "time_zone")
    zone = zoneinfo.ZoneInfo(data.time_zone)
    starts = data.starts_at
    starts = starts.replace(tzinfo=zone) if starts.tzinfo is None else starts
    if not data.phone.strip():
        raise AppointmentError("the contact has no phone number", "phone")
    try:
        phone = normalize_phone(data.phone)
    except InvalidPhoneNumber as exc:
        raise AppointmentError(str(exc), "phone") from exc
    if not 1 <= data.minutes <= MAX_MINUTES:
        raise AppointmentError(f"the length is 1 to {MAX_MINUTES} minutes", "minutes")
    if data.status not in AppointmentStatus.values:
        raise AppointmentError(f"unknown status {data.status[:20]!r}", "status")
    if len(data.external_id) > 100:
        raise AppointmentError("the external id is at most 100 characters", "external_id")
    appointment_type = None
    if data.type_name.strip():
        appointment_type, _ = AppointmentType.objects.get_or_create(
            organization_id=organization_id, name=data.type_name.strip()[:80]
        )
    return {
        "phone": phone,
        "starts_at": starts.astimezone(zoneinfo.ZoneInfo("UTC")),
        "time_zone": data.time_zone,
        "minutes": data.minutes,
        "staff_name": data.staff_name.strip()[:120],
        "location": data.location.strip()[:120],
        "appointment_type": appointment_type,
        "status": data.status,
    }


_COMPARED = ("starts_at", "time_zone", "minutes", "staff_name", "location", "status")


def appointment_save(
    *,
    organization_id: int,
    data: AppointmentData,
    actor_id: int | None = None,
    api_token_id: int | None = None,
    now: datetime | None = None,
    appointment_id: int | None = None,
) -> tuple[Appointment, bool]:
    """Create, or update one found by ``appointment_id`` (the console) or by external id
    (idempotent: the same data again changes nothing); returns (appointment, changed).
    Re-plans its reminders. Raises AppointmentError."""
    now = now or timezone.now()
    values = _checked(organization_id, data, now)
    with transaction.atomic():
        existing = None
        if appointment_id is not None:
            existing = (
                Appointment.objects.select_for_update()
                .filter(organization_id=organization_id, pk=appointment_id)
                .first()
            )
            if existing is None:
                raise AppointmentError("no such appointment")
            if not data.external_id:  # the console's form may not show it: kept
                data = replace(data, external_id=existing.external_id)
        elif data.external_id:
            existing = (  # exclude(""): SQLite then uses the partial unique index
                Appointment.objects.select_for_update()
                .filter(organization_id=organization_id, external_id=data.external_id)
                .exclude(external_id="")
                .order_by("pk")
                .first()
            )
        if existing is None and values["starts_at"] < now - PAST_GRACE:  # type: ignore[operator]
            raise AppointmentError("the appointment is in the past", "starts_at")
        contact, _ = contact_get_or_create(
            organization_id=organization_id, phone=str(values.pop("phone"))
        )
        if data.name.strip() and not contact.name:
            contact.name = data.name.strip()[:200]
            contact.save(update_fields=["name"])
        if existing is not None:
            changed = (
                existing.contact_id != contact.pk
                or any(getattr(existing, f) != values[f] for f in _COMPARED)
                or existing.appointment_type != values["appointment_type"]
            )
            if not changed:
                return existing, False
            moved = existing.starts_at != values["starts_at"]
            for field, value in values.items():
                setattr(existing, field, value)
            existing.contact = contact
            if moved:  # a new time: the answer to the old one no longer stands
                existing.answer, existing.answered_at = "", None
                answered = (AppointmentStatus.CONFIRMED, AppointmentStatus.RESCHEDULE)
                if existing.status in answered and data.status == existing.status:
                    existing.status = AppointmentStatus.BOOKED
            existing.save()
            appointment = existing
            action = "appointment.updated"
        else:
            try:
                with transaction.atomic():
                    appointment = Appointment.objects.create(
                        organization_id=organization_id,
                        contact=contact,
                        external_id=data.external_id,
                        **values,
                    )
            except IntegrityError:
                raise AppointmentError(
                    "another appointment has this external id", "external_id"
                ) from None
            action = "appointment.created"
        reminders_plan(appointment, now=now)
        audit_record(
            organization_id=organization_id,
            actor_id=actor_id,
            api_token_id=api_token_id,
            action=action,
            object_type="appointment",
            object_id=appointment.pk,
        )
    return appointment, True


def appointment_cancel(
    *,
    organization_id: int,
    appointment_id: int,
    actor_id: int | None = None,
    api_token_id: int | None = None,
) -> Appointment | None:
    """Cancel by id (staff, the API): its planned reminders are withdrawn at once. A reply
    to an earlier reminder is still read as an answer until the visit's time (so a patient's
    CANCEL then does not opt them out), and waits for a person. None when there is no such
    appointment or it was cancelled already."""
    with transaction.atomic():
        appointment = (
            Appointment.objects.select_for_update()
            .filter(pk=appointment_id, organization_id=organization_id)
            .exclude(status=AppointmentStatus.CANCELLED)
            .first()
        )
        if appointment is None:
            return None
        appointment.status = AppointmentStatus.CANCELLED
        appointment.save(update_fields=["status", "updated_at"])
        reminders_plan(appointment)
        audit_record(
            organization_id=organization_id,
            actor_id=actor_id,
            api_token_id=api_token_id,
            action="appointment.cancelled",
            object_type="appointment",
            object_id=appointment.pk,
        )
    return appointment
