"""Appointments in the REST API: how a scheduling system pushes its bookings, changes and
cancellations (each save re-plans the appointment's reminders at once), and reads them back
with their reminders and the patient's answer. Every query is scoped to the token's
organization; another organization's appointment is 404."""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Path, Query, Router, Status

from openline.api.auth import organization_id
from openline.api.errors import ApiError
from openline.api.schemas import (
    MAX_ID,
    MAX_YEAR,
    MIN_YEAR,
    AppointmentDetailOut,
    AppointmentFilters,
    AppointmentIn,
    AppointmentPage,
    ErrorOut,
    PageParams,
    Text,
)
from openline.campaigns.appointments import (
    AppointmentData,
    AppointmentError,
    appointment_cancel,
    appointment_save,
)
from openline.campaigns.models import Appointment, AppointmentStatus
from openline.campaigns.reminders import ENDED
from openline.core.models import ApiToken

router = Router(tags=["appointments"])

ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}
# A push of a new external id can race another push of the same id: the loser looks again.
ATTEMPTS = 2


class _Differs(Exception):
    """Raised inside a transaction to undo a save that would have changed something."""


def _token(request: HttpRequest) -> ApiToken:
    return request.auth  # type: ignore[attr-defined,no-any-return]


def _require_write(request: HttpRequest) -> None:
    """Tokens have no scope yet (issue 17 brings read-only ones): once they do, a read-only
    token is refused here, before anything is read or written."""
    token = _token(request)
    if getattr(token, "read_only", False) or getattr(token, "scope", "") == "read":
        raise ApiError(403, "read_only_token", "this token may only read")


def _queryset(org_id: int) -> QuerySet[Appointment]:
    return Appointment.objects.filter(organization_id=org_id).select_related(
        "contact", "appointment_type"
    )


def _or_404(request: HttpRequest, appointment_id: int) -> Appointment:
    found = _queryset(organization_id(request)).filter(pk=appointment_id).first()
    if found is None:
        raise ApiError(404, "not_found", "appointment not found")
    return found


def _out(appointment: Appointment) -> dict[str, Any]:
    local = appointment.starts_at.astimezone(zoneinfo.ZoneInfo(appointment.time_zone))
    return {
        "id": appointment.pk,
        "external_id": appointment.external_id,
        "contact": appointment.contact,
        "starts_at": appointment.starts_at,
        "local_start": local.isoformat(),
        "time_zone": appointment.time_zone,
        "minutes": appointment.minutes,
        "staff_name": appointment.staff_name,
        "location": appointment.location,
        "type": appointment.appointment_type.name if appointment.appointment_type else None,
        "status": appointment.status,
        "answer": appointment.answer or None,
        "answered_at": appointment.answered_at,
        "created_at": appointment.created_at,
        "updated_at": appointment.updated_at,
    }


def _detail(appointment: Appointment) -> dict[str, Any]:
    reminders = appointment.reminders.order_by("due_at", "pk")
    return {**_out(appointment), "reminders": list(reminders)}


def _data(
    request: HttpRequest, payload: AppointmentIn, external_id: str, existing: Appointment | None
) -> AppointmentData:
    """What appointment_save takes. An absent time zone or status keeps the appointment's
    own (a push that does not know of a patient's confirmation must not undo it)."""
    zone = payload.time_zone or (existing.time_zone if existing else "")
    status = payload.status or (existing.status if existing else AppointmentStatus.BOOKED)
    return AppointmentData(
        phone=payload.phone,
        starts_at=payload.starts_at,
        time_zone=zone or _token(request).organization.timezone,
        minutes=payload.minutes,
        staff_name=payload.staff_name,
        location=payload.location,
        type_name=payload.type,
        status=status,
        external_id=external_id,
        name=payload.name,
    )


def _by_external_id(org_id: int, external_id: str) -> Appointment | None:
    return (
        Appointment.objects.filter(organization_id=org_id, external_id=external_id)
        .exclude(external_id="")
        .order_by("pk")
        .first()
    )


def _save(request: HttpRequest, data: AppointmentData) -> tuple[Appointment, bool]:
    try:
        return appointment_save(
            organization_id=organization_id(request),
            data=data,
            api_token_id=_token(request).pk,
        )
    except AppointmentError as exc:
        field = exc.field or "appointment"
        raise ApiError(422, f"invalid_{field}", f"{field}: {exc}") from None


def _raced(exc: ApiError) -> bool:
    """appointment_save's answer when another request created the same external id first."""
    return exc.code == "invalid_external_id" and "another appointment" in exc.detail


def _reloaded(appointment: Appointment) -> Appointment:
    return _queryset(appointment.organization_id).get(pk=appointment.pk)


def _conflict(external_id: str) -> ApiError:
    return ApiError(
        409,
        "external_id_conflict",
        f"an appointment with external_id {external_id!r} exists with other details; to "
        f"change it, PUT /api/v1/appointments/by-external-id/{external_id}",
    )


@router.post(
    "",
    response={200: AppointmentDetailOut, 201: AppointmentDetailOut, **ERRORS},
    summary="Book an appointment",
)
def create_appointment(request: HttpRequest, payload: AppointmentIn) -> Status[dict[str, Any]]:
    """Creates the appointment (201) and plans its reminders by its type's rules; the
    patient's contact is found by phone or created.

    Safe to retry with an `external_id`: the same appointment again answers 200 with it and
    changes nothing; different details for an existing `external_id` are 409
    `external_id_conflict` (change an appointment with PUT `/appointments/by-external-id/{id}`).
    Without an `external_id` every call books another appointment.

    Refused with 422 naming the field: `invalid_phone` (missing or not a phone number),
    `invalid_time_zone`, `invalid_starts_at` (in the past, or unreadable), `invalid_request`
    (a wrong type, an unknown status, a text over its length)."""
    _require_write(request)
    org_id = organization_id(request)
    if not payload.external_id:
        appointment, _ = _save(request, _data(request, payload, "", None))
        return Status(201, _detail(_reloaded(appointment)))
    for attempt in range(ATTEMPTS):
        existing = _by_external_id(org_id, payload.external_id)
        data = _data(request, payload, payload.external_id, existing)
        try:
            with transaction.atomic():
                appointment, changed = _save(request, data)
                if existing is not None and changed:
                    raise _Differs
        except _Differs:
            raise _conflict(payload.external_id) from None
        except ApiError as exc:
            if _raced(exc) and attempt + 1 < ATTEMPTS:
                continue
            raise
        return Status(201 if existing is None else 200, _detail(_reloaded(appointment)))
    raise AssertionError("unreachable")  # pragma: no cover


@router.put(
    "/by-external-id/{path:external_id}",
    response={200: AppointmentDetailOut, 201: AppointmentDetailOut, **ERRORS},
    summary="Create or update an appointment by the scheduling system's id",
)
def put_appointment(
    request: HttpRequest,
    payload: AppointmentIn,
    external_id: Text = Path(..., min_length=1, max_length=100),  # noqa: B008
) -> Status[dict[str, Any]]:
    """How a scheduling system pushes its changes: creates the appointment (201) or brings
    it in line with this one (200). Moving it withdraws the reminders planned for the old
    time and plans new ones at once (a start already announced is not announced again);
    cancelling it (`"status": "cancelled"`) withdraws them. The same data again changes
    nothing. A moved appointment forgets the patient's confirmation of the old time.

    `external_id` in the body, if given, must be the one in the path. Errors as for POST."""
    _require_write(request)
    if payload.external_id and payload.external_id != external_id:
        raise ApiError(
            422, "invalid_external_id", "external_id: the body's differs from the path's"
        )
    org_id = organization_id(request)
    for attempt in range(ATTEMPTS):
        existing = _by_external_id(org_id, external_id)
        try:
            appointment, _ = _save(request, _data(request, payload, external_id, existing))
        except ApiError as exc:
            if _raced(exc) and attempt + 1 < ATTEMPTS:
                continue
            raise
        return Status(201 if existing is None else 200, _detail(_reloaded(appointment)))
    raise AssertionError("unreachable")  # pragma: no cover


def _moment(text: str, zone: zoneinfo.ZoneInfo, name: str, *, end: bool) -> datetime:
    """A filter's bound: a date means its local midnight (the next one for ``end``)."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text) + timedelta(days=1 if end else 0)
            moment = datetime.combine(day, time(0, 0))
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise ApiError(
            422,
            f"invalid_{name}",
            f"{name}: a date (2030-12-10) or an ISO 8601 date and time, years "
            f"{MIN_YEAR} to {MAX_YEAR}",
        )
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def _filtered(request: HttpRequest, filters: AppointmentFilters) -> QuerySet[Appointment]:
    zone = zoneinfo.ZoneInfo(_token(request).organization.timezone)
    found = _queryset(organization_id(request))
    if filters.date_from:
        start = _moment(filters.date_from, zone, "date_from", end=False)
        found = found.filter(starts_at__gte=start)
    if filters.date_to:
        found = found.filter(starts_at__lt=_moment(filters.date_to, zone, "date_to", end=True))
    if filters.location is not None:
        found = found.filter(location__iexact=filters.location.strip())
    if filters.status:
        found = found.filter(status=filters.status)
    if filters.answer:
        found = found.filter(answer="" if filters.answer == "none" else filters.answer)
    if filters.external_id is not None:
        found = found.filter(external_id=filters.external_id)
    return found.order_by("starts_at", "pk")


@router.get(
    "",
    response={200: AppointmentPage, **ERRORS},
    summary="List appointments, earliest first",
)
def list_appointments(
    request: HttpRequest,
    filters: AppointmentFilters = Query(...),  # noqa: B008 -- ninja's declaration style
    page: PageParams = Query(...),  # noqa: B008
) -> dict[str, Any]:
    """Filters combine: `date_from`/`date_to` (dates in the organization's time zone, or ISO
    8601 times), `location`, `status`, `answer`, `external_id`. Without reminders (read one
    appointment for those)."""
    found = _filtered(request, filters)
    items = found[page.offset : page.offset + page.limit]
    return {"items": [_out(a) for a in items], "count": found.count()}


@router.get(
    "/{appointment_id}",
    response={200: AppointmentDetailOut, **ERRORS},
    summary="Get an appointment, its reminders and the patient's answer",
)
def get_appointment(
    request: HttpRequest, appointment_id: int = Path(..., ge=1, le=MAX_ID)
) -> dict[str, Any]:
    """`reminders`: each planned text with when it is due, where it is (planned, sent,
    withdrawn, missed, skipped, refused) and why. `answer`: confirmed, cancelled or
    reschedule when the patient answered a reminder clearly, else null."""
    return _detail(_or_404(request, appointment_id))


@router.post(
    "/{appointment_id}/cancel",
    response={200: AppointmentDetailOut, **ERRORS},
    summary="Cancel an appointment",
)
def cancel_appointment(
    request: HttpRequest, appointment_id: int = Path(..., ge=1, le=MAX_ID)
) -> dict[str, Any]:
    """Withdraws its planned reminders and stops waiting for an answer. Cancelling a
    cancelled appointment changes nothing (200); a completed or no-show one is 409
    `invalid_state`."""
    _require_write(request)
    appointment = _or_404(request, appointment_id)
    if appointment.status in ENDED and appointment.status != AppointmentStatus.CANCELLED:
        state = appointment.get_status_display().lower()
        raise ApiError(409, "invalid_state", f"a {state} appointment cannot be cancelled")
    appointment_cancel(
        appointment_id=appointment.pk,
        organization_id=appointment.organization_id,
        api_token_id=_token(request).pk,
    )
    return _detail(_reloaded(appointment))
