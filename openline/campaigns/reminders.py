"""Appointment reminders: planned when an appointment is saved, sent once by the scheduler.

Rules (decided here, shown in the README):
- A rule's time is in the appointment's own time zone (where the patient goes), and so is
  the sending window: a reminder outside the organization's sending hours moves *earlier*,
  to the last minute of the window before it, never later (it must arrive before the visit).
- Booked after a reminder's time had passed: skipped, unless its rule says to send late;
  then it goes now (or when the window opens, if that is still before the visit).
- One reminder per rule per announced start: saving the appointment again without moving
  it changes nothing; moving it withdraws the planned ones and plans for the new start;
  cancelling withdraws them.
- Sending takes the reminder out of PLANNED in one conditional UPDATE inside the send's
  transaction, so two schedulers (started by mistake) cannot both send it, and a crash
  before the commit leaves it planned.
- Due while OpenLine was down (more than LATE_AFTER ago): sent if the visit is still ahead
  and the window is open now, else marked missed.
- The organization's limits (ReminderSettings: a day, a week per patient) are checked at
  sending; a reminder over them is not sent (skipped, with the reason)."""

from __future__ import annotations

import logging
import zoneinfo
from collections.abc import Sequence
from datetime import datetime, time, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from openline.campaigns.models import (
    Appointment,
    AppointmentStatus,
    AppointmentType,
    Reminder,
    ReminderRule,
    ReminderSettings,
    ReminderStatus,
)
from openline.campaigns.window import Window, sending_window
from openline.core.services import audit_record
from openline.messaging.answers import answer_await
from openline.messaging.models import MessageKind
from openline.messaging.services.outbound import SendRefused, message_send

logger = logging.getLogger(__name__)

PURPOSE = "appointment"
# A reminder this far past its time was due while nothing ran: see the module docstring.
LATE_AFTER = timedelta(minutes=15)
SENDS_PER_ROUND = 200
ANSWER_HINT = "Reply C to confirm, X to cancel, R to reschedule. STOP ends all texts."
ENDED = (AppointmentStatus.CANCELLED, AppointmentStatus.COMPLETED, AppointmentStatus.NO_SHOW)


# --- planning ---------------------------------------------------------------------------


def rule_time(rule: ReminderRule, *, starts_at: datetime, zone: str) -> datetime:
    """When ``rule`` wants its text out for a visit at ``starts_at`` (aware, UTC)."""
    if rule.minutes_before is not None:
        return starts_at - timedelta(minutes=rule.minutes_before)
    tz = zoneinfo.ZoneInfo(zone)
    day = starts_at.astimezone(tz).date() - timedelta(days=rule.days_before or 0)
    return datetime.combine(day, rule.at_time or time(10, 0), tzinfo=tz).astimezone(
        zoneinfo.ZoneInfo("UTC")
    )


def fit_earlier(moment: datetime, *, window: Window, zone: str) -> datetime:
    """``moment`` if the window is open then in ``zone``, else the window's last minute
    before it (the same day's, or the day before's)."""
    if window.is_open(moment, zone):
        return moment
    tz = zoneinfo.ZoneInfo(zone)
    local = moment.astimezone(tz)
    day = local.date() if local.time() >= window.end else local.date() - timedelta(days=1)
    last = datetime.combine(day, window.end, tzinfo=tz) - timedelta(minutes=1)
    return last.astimezone(zoneinfo.ZoneInfo("UTC"))


def reminders_plan(appointment: Appointment, *, now: datetime | None = None) -> int:
    """Bring one appointment's reminders in line with it (call in a transaction, after it
    was saved): ``reminders_plan_many`` for a batch of one. Returns how many it planned."""
    return reminders_plan_many([appointment], now=now)


PLAN_BATCH = 1000


def reminders_plan_many(appointments: Sequence[Appointment], *, now: datetime | None = None) -> int:
    """Bring the appointments' reminders in line with them: withdraw what no longer applies
    (cancelled, over, moved), plan what is missing for each one's current start (never a
    rule twice for a start: sent, skipped or planned ones count; withdrawn ones do not).
    A few queries per PLAN_BATCH appointments whatever their number: rules, sending windows
    and existing reminders read once, new ones inserted together. Call in a transaction.
    Returns how many were planned."""
    now = now or timezone.now()
    planned = 0
    for start in range(0, len(appointments), PLAN_BATCH):
        planned += _plan_batch(appointments[start : start + PLAN_BATCH], now)
    return planned


def _plan_batch(batch: Sequence[Appointment], now: datetime) -> int:
    by_id = {a.pk: a for a in batch}
    withdraw: dict[str, list[int]] = {}
    have: set[tuple[int, int]] = set()  # (appointment, rule) for its current start
    existing = (
        Reminder.objects.filter(appointment_id__in=by_id)
        .exclude(status=ReminderStatus.WITHDRAWN)
        .order_by()
        .values_list("pk", "appointment_id", "rule_id", "for_start", "status")
    )
    for pk, appointment_id, rule_id, for_start, status in existing:
        appointment = by_id[appointment_id]
        if status == ReminderStatus.PLANNED:
            if appointment.status in ENDED:
                withdraw.setdefault("the appointment was cancelled", []).append(pk)
                continue
            if appointment.starts_at <= now:
                withdraw.setdefault("it is over", []).append(pk)
                continue
            if for_start != appointment.starts_at:
                withdraw.setdefault("the appointment moved", []).append(pk)
                continue
        if for_start == appointment.starts_at:
            have.add((appointment_id, rule_id))
    for reason, ids in withdraw.items():
        Reminder.objects.filter(pk__in=ids, status=ReminderStatus.PLANNED).update(
            status=ReminderStatus.WITHDRAWN, reason=reason
        )
    live = [a for a in batch if a.status not in ENDED and a.starts_at > now]
    type_ids = {a.appointment_type_id for a in live if a.appointment_type_id is not None}
    rules: dict[int, list[ReminderRule]] = {}
    for rule in ReminderRule.objects.filter(appointment_type_id__in=type_ids, is_active=True):
        rules.setdefault(rule.appointment_type_id, []).append(rule)
    windows = {
        org_id: sending_window(organization_id=org_id)
        for org_id in {a.organization_id for a in live}
    }
    new: list[Reminder] = []
    for appointment in live:
        for rule in rules.get(appointment.appointment_type_id or 0, ()):
            if (appointment.pk, rule.pk) in have:
                continue  # planned, sent or settled for this start already: never twice
            window = windows[appointment.organization_id]
            due, status, reason = reminder_due(rule, appointment, window, now)
            new.append(
                Reminder(
                    organization_id=appointment.organization_id,
                    appointment_id=appointment.pk,
                    rule=rule,
                    for_start=appointment.starts_at,
                    due_at=due,
                    status=status,
                    reason=reason,
                )
            )
    Reminder.objects.bulk_create(new, batch_size=500)
    return sum(1 for r in new if r.status == ReminderStatus.PLANNED)


def reminder_due(
    rule: ReminderRule, appointment: Appointment, window: Window, now: datetime
) -> tuple[datetime, str, str]:
    zone = appointment.time_zone
    wanted = fit_earlier(
        rule_time(rule, starts_at=appointment.starts_at, zone=zone), window=window, zone=zone
    )
    if wanted >= now:
        return wanted, ReminderStatus.PLANNED, ""
    if not rule.send_when_booked_late:
        return wanted, ReminderStatus.SKIPPED, "booked after this reminder's time"
    opens = window.opens_at(now, zone)
    if opens >= appointment.starts_at:
        return opens, ReminderStatus.SKIPPED, "no sending hours left before the visit"
    return opens, ReminderStatus.PLANNED, ""


# --- sending ------------------------------------------------------------------------------


def reminders_send_due(*, now: datetime | None = None) -> int:
    """Send the reminders that are due (the scheduler calls this every round). Returns
    how many were settled (sent, missed, skipped or refused)."""
    now = now or timezone.now()
    due = list(
        Reminder.objects.filter(status=ReminderStatus.PLANNED, due_at__lte=now)
        .order_by("due_at", "pk")
        .values_list("pk", flat=True)[:SENDS_PER_ROUND]
    )
    settled = 0
    for reminder_id in due:
        try:
            settled += _send_one(reminder_id, now)
        except Exception:  # one bad reminder does not hold up the others
            logger.exception("reminder %s could not be sent", reminder_id)
    return settled


@transaction.atomic
def _send_one(reminder_id: int, now: datetime) -> int:
    reminder = (
        Reminder.objects.select_related("appointment__contact", "rule")
        .filter(pk=reminder_id, status=ReminderStatus.PLANNED)
        .first()
    )
    if reminder is None:
        return 0
    appointment = reminder.appointment

    def settle(status: str, reason: str = "", **fields: object) -> int:
        # Conditional: another scheduler that got here first wins, and this one sends nothing.
        return Reminder.objects.filter(pk=reminder_id, status=ReminderStatus.PLANNED).update(
            status=status, reason=reason[:200], **fields
        )

    if appointment.status in ENDED or appointment.starts_at != reminder.for_start:
        return settle(ReminderStatus.WITHDRAWN, "the appointment changed")
    if not reminder.rule.is_active:
        return settle(ReminderStatus.WITHDRAWN, "the rule was turned off")
    window = sending_window(organization_id=appointment.organization_id)
    late = now - reminder.due_at > LATE_AFTER
    if appointment.starts_at <= now or (late and not window.is_open(now, appointment.time_zone)):
        return settle(ReminderStatus.MISSED, "due while OpenLine was not running")
    over = _over_limit(appointment, now)
    if over:
        return settle(ReminderStatus.SKIPPED, over)
    try:
        body = reminder_text(reminder.rule.template, appointment)
    except (ValueError, IndexError, KeyError, AttributeError):
        return settle(ReminderStatus.REFUSED, "the rule's text cannot be filled in; fix the rule")
    if not settle(ReminderStatus.SENT, sent_at=now):
        return 0
    contact = appointment.contact
    try:
        with transaction.atomic():
            message = message_send(
                organization_id=appointment.organization_id,
                to=contact.phone,
                body=body,
                kind=MessageKind.REMINDER,
            )
    except SendRefused as exc:
        Reminder.objects.filter(pk=reminder_id).update(
            status=ReminderStatus.REFUSED, reason=f"{exc.code}: {exc}"[:200], sent_at=None
        )
        return 1
    Reminder.objects.filter(pk=reminder_id).update(message=message)
    answer_await(
        organization_id=appointment.organization_id,
        contact_id=contact.pk,
        number_id=message.conversation.number_id,
        purpose=PURPOSE,
        ref_id=appointment.pk,
        until=appointment.starts_at,
    )
    return 1


def _over_limit(appointment: Appointment, now: datetime) -> str:
    limits = ReminderSettings.objects.filter(organization_id=appointment.organization_id).first()
    per_day, per_week = (limits.max_per_day, limits.max_per_week) if limits else (1, 3)
    sent = Reminder.objects.filter(
        appointment__contact_id=appointment.contact_id, status=ReminderStatus.SENT
    )
    tz = zoneinfo.ZoneInfo(appointment.time_zone)
    midnight = datetime.combine(now.astimezone(tz).date(), time(0, 0), tzinfo=tz)
    if sent.filter(sent_at__gte=midnight).count() >= per_day:
        return f"over the limit of {per_day} reminder(s) a day for this person"
    if sent.filter(sent_at__gte=now - timedelta(days=7)).count() >= per_week:
        return f"over the limit of {per_week} reminders a week for this person"
    return ""


# --- the text -------------------------------------------------------------------------------

MERGE_FIELDS = ("first_name", "date", "time", "location", "provider")


class _Fields(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def visit_date_time(appointment: Appointment) -> tuple[str, str]:
    """("Tue Dec 10", "3:00 PM"): when the visit is, in its own time zone, as texts say it."""
    local = appointment.starts_at.astimezone(zoneinfo.ZoneInfo(appointment.time_zone))
    return f"{local:%a} {local:%b} {local.day}", local.strftime("%I:%M %p").lstrip("0")


def reminder_text(template: str, appointment: Appointment) -> str:
    """The template with its merge fields filled, in the appointment's time zone, and the
    answer hint appended (unless the template already says how to reply)."""
    day, hour = visit_date_time(appointment)
    name = (appointment.contact.name or "").strip()
    fields = _Fields(
        first_name=name.split(" ")[0] if name else "there",
        date=day,
        time=hour,
        location=appointment.location,
        provider=appointment.staff_name,
    )
    text = template.format_map(fields).strip()
    if "reply" not in text.lower():
        text = f"{text} {ANSWER_HINT}"
    return text


# --- rules and limits ------------------------------------------------------------------------

RULE_TIMING = ("days_before", "at_time", "minutes_before", "send_when_booked_late", "is_active")


@transaction.atomic
def reminder_rule_save(
    *,
    organization_id: int,
    actor_id: int | None,
    rule: ReminderRule | None,
    type_id: int | None,
    new_type: str,
    fields: dict[str, Any],
) -> ReminderRule:
    """Create or change a rule. Its text applies to every reminder not sent yet (it is
    filled in at sending). A new rule, or a change of its timing, re-plans the upcoming
    appointments of its type in a task; turning it off withdraws its planned reminders."""
    if rule is None:
        if type_id is None:
            kind, _ = AppointmentType.objects.get_or_create(
                organization_id=organization_id, name=new_type.strip()[:80]
            )
            type_id = kind.pk
        rule = ReminderRule(organization_id=organization_id, appointment_type_id=type_id)
    created = rule.pk is None
    before = {name: getattr(rule, name) for name in RULE_TIMING}
    for name, value in fields.items():
        setattr(rule, name, value)
    rule.save()
    retimed = created or any(getattr(rule, name) != before[name] for name in RULE_TIMING)
    if retimed and not created:
        why = "the rule was turned off" if not rule.is_active else "the rule changed"
        Reminder.objects.filter(rule=rule, status=ReminderStatus.PLANNED).update(
            status=ReminderStatus.WITHDRAWN, reason=why
        )
    if retimed and rule.is_active:
        kind_id = rule.appointment_type_id
        transaction.on_commit(lambda: _enqueue_replan(kind_id))
    audit_record(
        organization_id=organization_id,
        actor_id=actor_id,
        action="reminder_rule.created" if created else "reminder_rule.updated",
        object_type="reminder_rule",
        object_id=rule.pk,
    )
    return rule


def _enqueue_replan(type_id: int) -> None:
    from openline.campaigns.tasks import replan_reminders

    replan_reminders.enqueue(type_id)


def reminders_replan_type(*, type_id: int, now: datetime | None = None) -> int:
    """Plan the upcoming appointments of a type again (its rules changed), a batch of
    PLAN_BATCH per transaction; returns how many appointments were looked at."""
    now = now or timezone.now()
    upcoming = (
        Appointment.objects.filter(appointment_type_id=type_id, starts_at__gt=now)
        .exclude(status__in=ENDED)
        .values_list("pk", flat=True)
    )
    ids = list(upcoming)
    for start in range(0, len(ids), PLAN_BATCH):
        with transaction.atomic():  # locked, so a concurrent save waits for this batch
            batch = list(
                Appointment.objects.select_for_update()
                .filter(pk__in=ids[start : start + PLAN_BATCH])
                .order_by()
            )
            reminders_plan_many(batch, now=now)
    return len(ids)


@transaction.atomic
def reminder_settings_save(
    *, organization_id: int, actor_id: int | None, values: dict[str, Any]
) -> ReminderSettings:
    person = values.get("notify_user")
    settings, _ = ReminderSettings.objects.update_or_create(
        organization_id=organization_id,
        defaults={
            "max_per_day": values["max_per_day"],
            "max_per_week": values["max_per_week"],
            "notify_user_id": person.pk if person is not None else None,
            "notify_by_text": bool(values.get("notify_by_text")),
        },
    )
    audit_record(
        organization_id=organization_id,
        actor_id=actor_id,
        action="reminder_settings.updated",
        object_type="reminder_settings",
        object_id=settings.pk,
    )
    return settings
