"""Reads for the appointments pages, always scoped to an organization: one day's
appointments with the state of their reminders and of the patient's reply, tomorrow's
calls, one appointment's timeline, the reminder rules, and what a rule would do over the
next two weeks. A list costs the same few queries however many appointments it shows.

Message texts are never read here (only their delivery status): the pages show a reply's
meaning and time, which the reader in campaigns.answers kept on the appointment."""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Count, Exists, F, OuterRef, Prefetch, Q, QuerySet, Subquery

from openline.campaigns.answers import CANCEL, CONFIRM, RESCHEDULE
from openline.campaigns.models import (
    Appointment,
    AppointmentStatus,
    AppointmentType,
    Reminder,
    ReminderRule,
    ReminderSettings,
    ReminderStatus,
)
from openline.campaigns.reminders import ENDED, reminder_due
from openline.campaigns.window import sending_window
from openline.contacts.models import ConsentKind
from openline.contacts.selectors import consent_events_in_scope
from openline.core.models import AuditEvent
from openline.messaging.models import Conversation, MessageStatus

UTC = zoneinfo.ZoneInfo("UTC")
# The day view's filters, as the page names them.
STATES = {
    "confirmed": "Confirmed",
    "cancelled": "Cancelled",
    "reschedule": "Reschedule asked",
    "no_answer": "No answer",
    "reminder_failed": "Reminder failed",
}
FAILED_MESSAGES = (MessageStatus.FAILED, MessageStatus.UNDELIVERED)
# Not sent for a fault, not by design (a limit or a late booking is by design): the patient
# was meant to be reminded and was not, so somebody should call.
FAILED_REMINDERS = (ReminderStatus.REFUSED, ReminderStatus.MISSED)
PREVIEW_DAYS = 14
DEFAULT_LIMITS = (1, 3)  # per day, per week: reminders._over_limit's defaults


def day_bounds(day: date, zone: str) -> tuple[datetime, datetime]:
    """The UTC instants where ``day`` starts and ends in ``zone``."""
    tz = zoneinfo.ZoneInfo(zone)
    start = datetime.combine(day, time(0, 0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


# --- one reminder, one reply, as the pages say them ----------------------------------------------


@dataclass(frozen=True)
class ReminderState:
    kind: str  # planned, sending, sent, delivered, failed, withdrawn, missed, skipped, refused
    label: str
    at: datetime | None
    reason: str = ""


_SENT_LABELS: dict[str, tuple[str, str]] = {
    MessageStatus.SENT: ("sent", "Sent"),
    MessageStatus.DELIVERED: ("delivered", "Delivered"),
    MessageStatus.FAILED: ("failed", "Failed"),
    MessageStatus.UNDELIVERED: ("failed", "Undelivered"),
}


def reminder_state(reminder: Reminder) -> ReminderState:
    """What happened to ``reminder``: a sent one says what its message's status says."""
    status, reason = reminder.status, _reason_text(reminder.reason)
    if status == ReminderStatus.PLANNED:
        return ReminderState("planned", "Planned", reminder.due_at)
    if status == ReminderStatus.SENT:
        message = reminder.message if reminder.message_id else None
        # No message yet: it is being handed to the send service (or was removed since).
        kind, label = (
            _SENT_LABELS.get(message.status, ("sending", "Sending"))
            if message
            else (
                "sent",
                "Sent",
            )
        )
        detail = f"{message.error_code} {message.error_message}".strip() if message else ""
        return ReminderState(kind, label, reminder.sent_at, detail)
    labels = {
        ReminderStatus.WITHDRAWN: ("withdrawn", "Withdrawn"),
        ReminderStatus.MISSED: ("missed", "Missed"),
        ReminderStatus.SKIPPED: ("skipped", "Not sent"),
        ReminderStatus.REFUSED: ("refused", "Refused"),
    }
    kind, label = labels.get(ReminderStatus(status), (status, status))
    return ReminderState(kind, label, reminder.due_at, reason)


def _reason_text(reason: str) -> str:
    """ "opted_out: they opted out" -> "they opted out" (the send service's code dropped)."""
    code, _, text = reason.partition(": ")
    return text if text and code.isidentifier() else reason


@dataclass(frozen=True)
class Reply:
    kind: str  # confirmed, cancelled, reschedule, no_answer
    label: str
    at: datetime | None


_REPLIES = {
    CONFIRM: ("confirmed", "Confirmed"),
    CANCEL: ("cancelled", "Cancelled"),
    RESCHEDULE: ("reschedule", "Reschedule asked"),
}


def reply_state(appointment: Appointment) -> Reply:
    """The patient's first clear answer by text, and when (campaigns.answers keeps it)."""
    kind, label = _REPLIES.get(appointment.answer, ("no_answer", "No answer"))
    return Reply(kind, label, appointment.answered_at if appointment.answer else None)


# --- the day view --------------------------------------------------------------------------------


def local_label(appointment: Appointment) -> str:
    """The start in the appointment's own time zone, as "3:00 PM EST" (a template's date
    filter would turn it back into the organization's zone)."""
    local = appointment.starts_at.astimezone(zoneinfo.ZoneInfo(appointment.time_zone))
    return f"{local:%I:%M %p}".lstrip("0") + f" {local.tzname()}"


@dataclass
class Row:
    appointment: Appointment
    reminders: list[ReminderState]
    reply: Reply
    conversation_id: int | None
    local_start: str  # in the appointment's own time zone (local_label)
    other_zone: bool  # that zone is not the organization's
    opted_out: bool = False  # texted STOP (or opted out another way): reminders are refused


def _current_reminders() -> QuerySet[Reminder]:
    """The reminders announcing each appointment's present start (not a former one), with
    their message's delivery status but never its text."""
    return (
        Reminder.objects.filter(for_start=F("appointment__starts_at"))
        .select_related("message")
        .only(
            "appointment_id",
            "status",
            "reason",
            "due_at",
            "sent_at",
            "message_id",
            "message__status",
            "message__error_code",
            "message__error_message",
        )  # fmt: skip
        .order_by("due_at", "pk")
    )


def _failed_reminder() -> Exists:
    return Exists(
        Reminder.objects.filter(
            appointment_id=OuterRef("pk"), for_start=OuterRef("starts_at")
        ).filter(
            Q(status__in=FAILED_REMINDERS)
            | Q(status=ReminderStatus.SENT, message__status__in=FAILED_MESSAGES)
        )
    )


def _state_filter(state: str) -> Q:
    if state == "reminder_failed":
        return Q(reminder_failed=True)
    if state == "no_answer":
        return Q(status=AppointmentStatus.BOOKED, answer="")
    return Q(status=state)


def appointments_between(
    *, organization_id: int, start: datetime, end: datetime, location: str | None = None
) -> QuerySet[Appointment]:
    """The organization's appointments starting in [start, end), at ``location`` if given
    ("" is the appointments without one)."""
    found = Appointment.objects.filter(
        organization_id=organization_id, starts_at__gte=start, starts_at__lt=end
    )
    if location is not None:
        found = found.filter(location=location)
    return found.annotate(reminder_failed=_failed_reminder())


def day_rows(
    appointments: QuerySet[Appointment],
    *,
    organization_id: int,
    organization_zone: str,
    state: str = "",
) -> list[Row]:
    """The rows of the day view: two queries (appointments with their contact, type and
    latest conversation; then their reminders), whatever their number."""
    if state:
        appointments = appointments.filter(_state_filter(state))
    # The person's latest conversation that was active since the appointment was booked:
    # the reminder's own thread, or the one their reply opened.
    conversation = Conversation.objects.filter(
        organization_id=OuterRef("organization_id"),
        contact_id=OuterRef("contact_id"),
        last_message_at__gte=OuterRef("created_at"),
    ).order_by("-last_message_at", "-pk")
    # Whether the patient may still be texted: their latest opt-in or opt-out in the ledger
    # (an opted-out patient's reminders are refused, so staff should call instead).
    consent = Subquery(
        consent_events_in_scope(organization_id=organization_id)
        .filter(
            phone=OuterRef("contact__phone"),
            kind__in=(ConsentKind.OPT_IN, ConsentKind.OPT_OUT),
        )
        .order_by("-created_at", "-id")
        .values("kind")[:1]
    )
    rows = (
        appointments.select_related("contact", "appointment_type")
        .annotate(conversation_id=Subquery(conversation.values("pk")[:1]), consent=consent)
        .prefetch_related(Prefetch("reminders", queryset=_current_reminders()))
        .order_by("location", "starts_at", "pk")
    )
    return [_row(appointment, organization_zone) for appointment in rows]


def _row(appointment: Any, organization_zone: str) -> Row:
    return Row(
        appointment=appointment,
        reminders=[reminder_state(r) for r in appointment.reminders.all()],
        reply=reply_state(appointment),
        conversation_id=appointment.conversation_id,
        local_start=local_label(appointment),
        other_zone=appointment.time_zone != organization_zone,
        opted_out=appointment.consent == ConsentKind.OPT_OUT,
    )


def day_counts(appointments: QuerySet[Appointment]) -> dict[str, int]:
    """How many of ``appointments`` are in each of the day view's states (one query)."""
    # Named apart from the annotation: an aggregate called "reminder_failed" would shadow it.
    counts = appointments.aggregate(
        n_total=Count("pk"),
        **{f"n_{state}": Count("pk", filter=_state_filter(state)) for state in STATES},
    )
    return {name.removeprefix("n_"): int(value) for name, value in counts.items()}


def day_locations(*, organization_id: int, start: datetime, end: datetime) -> list[str]:
    """The distinct locations of the appointments in [start, end), by name."""
    found = (
        Appointment.objects.filter(
            organization_id=organization_id, starts_at__gte=start, starts_at__lt=end
        )
        .order_by("location")
        .values_list("location", flat=True)
        .distinct()
    )
    return list(found)


# --- "call these people" -------------------------------------------------------------------------


def calls_for(*, organization_id: int, start: datetime, end: datetime) -> list[Appointment]:
    """Appointments in [start, end) nobody has confirmed: still booked with no answer by
    text (whether a reminder went or not), and those whose patient asked to reschedule;
    each with its current reminders (``reminder_states``)."""
    found = (
        Appointment.objects.filter(
            organization_id=organization_id, starts_at__gte=start, starts_at__lt=end
        )
        .filter(
            Q(status=AppointmentStatus.BOOKED, answer="") | Q(status=AppointmentStatus.RESCHEDULE)
        )
        .select_related("contact", "appointment_type")
        .prefetch_related(Prefetch("reminders", queryset=_current_reminders()))
        .order_by("starts_at", "pk")
    )
    appointments = list(found)
    for appointment in appointments:
        states = [reminder_state(r) for r in appointment.reminders.all()]
        appointment.reminder_states = states  # type: ignore[attr-defined]
    return appointments


# --- one appointment -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Moment:
    """One line of an appointment's timeline."""

    at: datetime
    what: str
    detail: str = ""
    kind: str = ""
    announced: datetime | None = None  # the start a reminder announced


_ACTIONS = {
    "appointment.created": "Booked",
    "appointment.updated": "Changed",
    "appointment.cancelled": "Cancelled",
    "appointment.confirmed_by_text": "Confirmed by text",
    "appointment.cancelled_by_text": "Cancelled by text",
    "appointment.reschedule_by_text": "Asked to reschedule by text",
}


def appointment_timeline(appointment: Appointment) -> list[Moment]:
    """Its reminders (for every start it had) and the recorded changes, in time order."""
    reminders = (
        Reminder.objects.filter(appointment_id=appointment.pk)
        .select_related("message")
        .only(
            "status",
            "reason",
            "due_at",
            "sent_at",
            "for_start",
            "message_id",
            "message__status",
            "message__error_code",
            "message__error_message",
        )  # fmt: skip
        .order_by("due_at", "pk")
    )
    moments = []
    for reminder in reminders:
        state = reminder_state(reminder)
        moments.append(
            Moment(
                at=state.at or reminder.due_at,
                what=f"Reminder: {state.label.lower()}",
                detail=state.reason,
                kind=state.kind,
                announced=reminder.for_start,
            )
        )
    events = (
        AuditEvent.objects.filter(
            organization_id=appointment.organization_id,
            created_at__gte=appointment.created_at - timedelta(minutes=1),
            object_type="appointment",
            object_id=str(appointment.pk),
        )
        .select_related("actor", "api_token")
        .order_by("created_at", "pk")[:100]
    )
    for event in events:
        who = str(event.actor) if event.actor else ("the API" if event.api_token_id else "")
        moments.append(
            Moment(
                at=event.created_at,
                what=_ACTIONS.get(event.action, event.action),
                detail=f"by {who}" if who else "",
                kind="change",
            )
        )
    return sorted(moments, key=lambda moment: moment.at)


def upcoming_appointments(
    *, organization_id: int, contact_id: int, now: datetime, limit: int = 3
) -> list[Appointment]:
    """The person's appointments that are not over (cancelled ones included: a reply after
    a cancellation is read beside it), soonest first, for the conversation pane."""
    return list(
        Appointment.objects.filter(
            organization_id=organization_id,
            contact_id=contact_id,
            starts_at__gte=now - timedelta(hours=2),
        )
        .exclude(status__in=(AppointmentStatus.COMPLETED, AppointmentStatus.NO_SHOW))
        .select_related("appointment_type")
        .order_by("starts_at", "pk")[:limit]
    )


# --- reminder rules ------------------------------------------------------------------------------


def appointment_types(*, organization_id: int) -> list[AppointmentType]:
    """The organization's appointment types, each with its rules (two queries)."""
    rules = ReminderRule.objects.order_by("-days_before", "-minutes_before", "pk")
    return list(
        AppointmentType.objects.filter(organization_id=organization_id)
        .prefetch_related(Prefetch("rules", queryset=rules))
        .order_by("name")
    )


def reminder_limits(*, organization_id: int) -> tuple[int, int]:
    """(per day, per week) reminders per patient."""
    limits = ReminderSettings.objects.filter(organization_id=organization_id).first()
    return (limits.max_per_day, limits.max_per_week) if limits else DEFAULT_LIMITS


def sample_appointment(
    *, organization_id: int, type_id: int | None, now: datetime
) -> Appointment | None:
    """The next appointment of this type, to fill a template's preview with."""
    if type_id is None:
        return None
    return (
        Appointment.objects.filter(
            organization_id=organization_id, appointment_type_id=type_id, starts_at__gte=now
        )
        .exclude(status__in=ENDED)
        .select_related("contact")
        .order_by("starts_at", "pk")
        .first()
    )


@dataclass
class RulePreview:
    """What a rule would do for the appointments of its type in the next PREVIEW_DAYS."""

    appointments: int = 0
    sent: int = 0
    over_limit: int = 0
    booked_late: int = 0
    no_hours: int = 0
    per_day: int = DEFAULT_LIMITS[0]
    per_week: int = DEFAULT_LIMITS[1]
    days: int = PREVIEW_DAYS


@dataclass(order=True)
class _Send:
    at: datetime
    zone: str = field(compare=False)
    fixed: bool = field(compare=False)  # already sent: counts, and is not checked
    mine: bool = field(compare=False)  # the previewed rule's


def rule_preview(
    *, organization_id: int, rule: ReminderRule, type_id: int | None, now: datetime
) -> RulePreview:
    """Four queries, then arithmetic: each upcoming appointment's time for ``rule`` (saved or
    not) as planning would set it (reminders.reminder_due), then the patients' sending
    limits applied in time order to those and to their other reminders (as
    reminders._over_limit counts: sent ones in the local day and the last seven days)."""
    per_day, per_week = reminder_limits(organization_id=organization_id)
    preview = RulePreview(per_day=per_day, per_week=per_week)
    if type_id is None:
        return preview
    upcoming = Appointment.objects.filter(
        organization_id=organization_id,
        appointment_type_id=type_id,
        starts_at__gte=now,
        starts_at__lt=now + timedelta(days=PREVIEW_DAYS),
    ).exclude(status__in=ENDED)
    window = sending_window(organization_id=organization_id)
    sends: dict[int, list[_Send]] = defaultdict(list)
    for contact_id, starts_at, zone in upcoming.values_list("contact_id", "starts_at", "time_zone"):
        preview.appointments += 1
        visit = Appointment(starts_at=starts_at, time_zone=zone)
        due, status, reason = reminder_due(rule, visit, window, now)
        if status == ReminderStatus.PLANNED:
            sends[contact_id].append(_Send(due, zone, fixed=False, mine=True))
        elif reason.startswith("booked after"):
            preview.booked_late += 1
        else:
            preview.no_hours += 1
    others = Reminder.objects.filter(
        organization_id=organization_id,
        appointment__contact_id__in=Subquery(upcoming.values("contact_id")),
    ).filter(
        Q(status=ReminderStatus.SENT, sent_at__gte=now - timedelta(days=7))
        | Q(status=ReminderStatus.PLANNED, for_start=F("appointment__starts_at"))
    )
    if rule.pk is not None:
        others = others.exclude(rule_id=rule.pk)
    for contact_id, status, due_at, sent_at, zone in others.values_list(
        "appointment__contact_id", "status", "due_at", "sent_at", "appointment__time_zone"
    ):
        sent = status == ReminderStatus.SENT and sent_at is not None
        at = sent_at if sent_at is not None and sent else due_at
        sends[contact_id].append(_Send(at, zone, fixed=sent, mine=False))
    for person in sends.values():
        _apply_limits(sorted(person), preview)
    return preview


def _apply_limits(person: list[_Send], preview: RulePreview) -> None:
    """One patient's texts in time order: each that is not sent yet goes unless the ones
    that went before it reach a limit."""
    went: list[_Send] = []
    for send in person:
        if not send.fixed:
            tz = zoneinfo.ZoneInfo(send.zone)
            midnight = datetime.combine(send.at.astimezone(tz).date(), time(0, 0), tzinfo=tz)
            today = sum(1 for w in went if w.at >= midnight)
            week = sum(1 for w in went if w.at >= send.at - timedelta(days=7))
            if today >= preview.per_day or week >= preview.per_week:
                preview.over_limit += send.mine
                continue
            preview.sent += send.mine
        went.append(send)
