"""Appointment reminders (issue 16, first slice): planning against the sending window,
re-planning on a move or cancellation, sending each reminder once (two schedulers, a
restart), sending limits, and the reply read in context: confirm, cancel (CANCEL cancels
the visit, STOP still opts out), reschedule, and anything else left for a person."""

from __future__ import annotations

import threading
import zoneinfo
from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any

import pytest
from django.utils import timezone

from openline.campaigns.answers import CANCEL, CONFIRM, RESCHEDULE, classify
from openline.campaigns.appointments import AppointmentData, AppointmentError, appointment_save
from openline.campaigns.models import (
    Appointment,
    AppointmentStatus,
    AppointmentType,
    Reminder,
    ReminderRule,
    ReminderSettings,
    ReminderStatus,
    SendingWindow,
)
from openline.campaigns.reminders import ANSWER_HINT, reminder_text, reminders_send_due
from openline.contacts.models import ConsentSource
from openline.contacts.selectors import consent_state
from openline.contacts.services.consent import consent_record_opt_in
from openline.core.models import AuditEvent
from openline.messaging.models import ConversationStatus, Message, MessageKind

NY = "America/New_York"
TZ = zoneinfo.ZoneInfo(NY)
PATIENTS = {"ann": "+12125550110", "ben": "+12125550111", "cat": "+12125550112"}


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    """A New York wall-clock time in December 2030 (aware)."""
    return datetime(2030, 12, day, hour, minute, tzinfo=TZ)


@pytest.fixture
def clinic(org: Any, alice: Any, sandbox_number: Any) -> AppointmentType:
    """A visit type with two reminders: 2 days before at 10:00, and 2 hours before."""
    SendingWindow.objects.create(organization=org, start=time(8, 0), end=time(21, 0))
    checkup = AppointmentType.objects.create(organization=org, name="Check-up")
    for kw in ({"days_before": 2, "at_time": time(10, 0)}, {"minutes_before": 120}):
        ReminderRule.objects.create(
            organization=org,
            appointment_type=checkup,
            template="Hi {first_name}, see you {date} at {time} at {location} with {provider}.",
            **kw,
        )
    for phone in PATIENTS.values():
        consent_record_opt_in(
            organization_id=org.pk, phone=phone, source=ConsentSource.STAFF,
            evidence="patient intake form", actor_id=alice.pk,
        )  # fmt: skip
    return checkup


def _book(org: Any, who: str, starts: datetime, now: datetime, **kw: Any) -> Appointment:
    data = AppointmentData(
        phone=PATIENTS[who], starts_at=starts.replace(tzinfo=None), time_zone=NY,
        staff_name="Dr. Ruiz", location="Main St clinic", type_name="Check-up",
        name=who.title(), **kw,
    )  # fmt: skip
    appointment, _ = appointment_save(organization_id=org.pk, data=data, now=now)
    return appointment


def _planned(appointment: Appointment) -> list[tuple[datetime, str]]:
    return [
        (r.due_at.astimezone(TZ), r.status)
        for r in Reminder.objects.filter(appointment=appointment).order_by("due_at")
    ]


def test_reminders_are_planned_in_local_time_and_moved_earlier_into_sending_hours(
    org: Any, clinic: AppointmentType
) -> None:
    now = _at(1, 9)
    visit = _book(org, "ann", _at(10, 9, 30), now)  # 2 h before is 7:30, before 8:00
    assert _planned(visit) == [
        (_at(8, 10), ReminderStatus.PLANNED),
        (_at(9, 20, 59), ReminderStatus.PLANNED),  # the evening before, not later
    ]
    afternoon = _book(org, "ben", _at(10, 15), now)
    assert _planned(afternoon)[1] == (_at(10, 13), ReminderStatus.PLANNED)


def test_saving_again_changes_nothing_moving_replans_and_cancelling_withdraws(
    org: Any, clinic: AppointmentType
) -> None:
    now = _at(1, 9)
    visit = _book(org, "ann", _at(10, 15), now, external_id="EHR-1")
    again, changed = appointment_save(
        organization_id=org.pk,
        data=AppointmentData(
            phone=PATIENTS["ann"],
            starts_at=_at(10, 15),
            time_zone=NY,
            staff_name="Dr. Ruiz",
            location="Main St clinic",
            type_name="Check-up",
            external_id="EHR-1",
        ),  # fmt: skip
        now=now,
    )
    assert (again.pk, changed) == (visit.pk, False)
    assert Reminder.objects.filter(appointment=visit).count() == 2

    moved = _book(org, "ann", _at(11, 15), now, external_id="EHR-1")
    assert moved.pk == visit.pk
    statuses = sorted(Reminder.objects.filter(appointment=visit).values_list("status", flat=True))
    assert statuses == ["planned", "planned", "withdrawn", "withdrawn"]

    _book(org, "ann", _at(11, 15), now, external_id="EHR-1", status="cancelled")
    assert set(Reminder.objects.filter(appointment=visit).values_list("status", flat=True)) == {
        "withdrawn"
    }
    assert AuditEvent.objects.filter(action="appointment.updated", object_id=str(visit.pk))


def test_bad_appointments_are_refused_with_the_field_named(
    org: Any, clinic: AppointmentType
) -> None:
    now = _at(1, 9)
    cases = [
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"phone": ""}, "phone"),
        ({"phone": "12"}, "phone"),
        ({"starts_at": _at(1, 6)}, "starts_at"),  # in the past
        ({"minutes": 0}, "minutes"),
        ({"status": "maybe"}, "status"),
    ]
    for change, field in cases:
        values: dict[str, Any] = {"phone": PATIENTS["ann"], "starts_at": _at(10, 15),
                                  "time_zone": NY, **change}  # fmt: skip
        with pytest.raises(AppointmentError) as caught:
            appointment_save(organization_id=org.pk, data=AppointmentData(**values), now=now)
        assert caught.value.field == field, change
    assert not Appointment.objects.exists()


def test_booked_after_a_reminders_time_it_is_skipped_unless_asked(
    org: Any, clinic: AppointmentType
) -> None:
    now = _at(9, 12)
    visit = _book(org, "ann", _at(10, 15), now)  # 2 days before was yesterday
    assert _planned(visit) == [
        (_at(8, 10), ReminderStatus.SKIPPED),
        (_at(10, 13), ReminderStatus.PLANNED),
    ]
    ReminderRule.objects.filter(days_before=2).update(send_when_booked_late=True)
    late = _book(org, "ben", _at(10, 15), now)
    assert _planned(late)[0] == (now, ReminderStatus.PLANNED)


def _text_of(phone: str) -> list[str]:
    return list(
        Message.objects.filter(kind=MessageKind.REMINDER, conversation__contact__phone=phone)
        .order_by("pk")
        .values_list("body", flat=True)
    )


def test_a_due_reminder_is_sent_once_with_its_merge_fields_and_the_answer_hint(
    org: Any, clinic: AppointmentType, pipeline: Any
) -> None:
    visit = _book(org, "ann", _at(10, 15), _at(1, 9))
    pipeline.run(lambda: reminders_send_due(now=_at(8, 10, 1)))
    pipeline.run(lambda: reminders_send_due(now=_at(8, 10, 2)))  # again: nothing more
    assert _text_of(PATIENTS["ann"]) == [
        f"Hi Ann, see you Tue Dec 10 at 3:00 PM at Main St clinic with Dr. Ruiz. {ANSWER_HINT}"
    ]
    first = Reminder.objects.filter(appointment=visit).order_by("due_at").first()
    assert first is not None and first.status == ReminderStatus.SENT and first.message_id
    assert reminder_text("Your visit: {date} {unknown}", visit).startswith(
        "Your visit: Tue Dec 10 {unknown}"
    )


@pytest.mark.django_db(transaction=True)
def test_two_schedulers_at_once_send_each_reminder_once(org: Any, clinic: AppointmentType) -> None:
    for who in PATIENTS:
        _book(org, who, _at(10, 15), _at(1, 9))
    errors: list[BaseException] = []

    def scheduler() -> None:
        from django.db import connection

        try:
            reminders_send_due(now=_at(8, 10, 1))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    for phone in PATIENTS.values():
        assert len(_text_of(phone)) == 1, phone
    assert Reminder.objects.filter(status=ReminderStatus.SENT).count() == len(PATIENTS)


def test_a_reminder_due_while_down_goes_out_in_sending_hours_or_is_missed(
    org: Any, clinic: AppointmentType, pipeline: Any
) -> None:
    visit = _book(org, "ann", _at(10, 15), _at(1, 9))
    # Down from before the first reminder's time until 22:00 the day before (window shut).
    pipeline.run(lambda: reminders_send_due(now=_at(9, 22)))
    first = Reminder.objects.filter(appointment=visit).order_by("due_at").first()
    assert first is not None and first.status == ReminderStatus.MISSED
    # Back at 12:00 on the day: the 13:00 one is not due yet; at 13:20 it is late but the
    # window is open and the visit ahead, so it goes.
    pipeline.run(lambda: reminders_send_due(now=_at(10, 13, 20)))
    assert len(_text_of(PATIENTS["ann"])) == 1


def test_sending_limits_skip_the_extra_reminder(
    org: Any, clinic: AppointmentType, pipeline: Any
) -> None:
    ReminderSettings.objects.create(organization=org, max_per_day=1, max_per_week=3)
    morning = _book(org, "ann", _at(10, 15), _at(1, 9))
    _book(org, "ann", _at(10, 16), _at(1, 9))  # a second visit the same afternoon
    pipeline.run(lambda: reminders_send_due(now=_at(8, 10, 1)))
    assert len(_text_of(PATIENTS["ann"])) == 1
    skipped = Reminder.objects.get(status=ReminderStatus.SKIPPED)
    assert skipped.appointment_id != morning.pk and "1 reminder(s) a day" in skipped.reason


# --- the answer ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        *[
            (t, CONFIRM)
            for t in (
                "C",
                "y",
                "Yes!",
                "1",
                "OK",
                "confirmed",
                "Confirmd",
                "I'll be there",
                "ill be there",
                "👍",
                "yes please",
            )
        ],
        *[
            (t, CANCEL)
            for t in (
                "X",
                "n",
                "NO",
                "Cancel",
                "cancle",
                "can't make it",
                "Cant make it.",
                "cannot come",
                "please cancel my appointment",
            )
        ],
        *[
            (t, RESCHEDULE)
            for t in (
                "R",
                "reschedule",
                "reschedual",
                "can we move it",
                "I need to reschedule",
                "another day?",
            )
        ],
        *[
            (t, None)
            for t in (
                "What time again?",
                "running 10 min late",
                "yes no",
                "",
                "Is parking free?",
                "STOP",
            )
        ],
    ],  # fmt: skip
)
def test_replies_are_read_in_context(text: str, answer: str | None) -> None:
    assert classify(text) == answer


@pytest.fixture
def reminded(org: Any, clinic: AppointmentType, pipeline: Any) -> Callable[[str], Appointment]:
    """A patient's appointment whose first reminder went out (the clock is real here)."""

    def remind(who: str) -> Appointment:
        now = timezone.now()
        starts = (now + timedelta(days=3)).astimezone(TZ).replace(hour=15, minute=0)
        SendingWindow.objects.filter(organization=org).update(start=time(0, 0), end=time(23, 59))
        visit = _book(org, who, starts, now)
        Reminder.objects.filter(appointment=visit).update(due_at=now)
        pipeline.run(lambda: reminders_send_due(now=now + timedelta(seconds=1)))
        assert len(_text_of(PATIENTS[who])) >= 1
        return visit

    return remind


def test_y_confirms_acknowledges_and_closes_what_it_opened(
    reminded: Callable[[str], Appointment], sandbox_number: Any, text_in: Callable[..., Any]
) -> None:
    visit = reminded("ann")
    reply = text_in(sandbox_number, PATIENTS["ann"], "Y")
    visit.refresh_from_db()
    assert (visit.status, visit.answer) == (AppointmentStatus.CONFIRMED, CONFIRM)
    ack = Message.objects.filter(kind=MessageKind.AUTOMATED, conversation=reply.conversation)
    assert ack.get().body.startswith("Thanks, you're confirmed for")
    reply.conversation.refresh_from_db()
    assert reply.conversation.status == ConversationStatus.CLOSED
    assert reply.conversation.handled_automatically
    assert AuditEvent.objects.filter(action="appointment.confirmed_by_text").exists()
    # A second answer is for a person: it waits in the queue.
    later = text_in(sandbox_number, PATIENTS["ann"], "X")
    visit.refresh_from_db()
    assert visit.status == AppointmentStatus.CONFIRMED
    later.conversation.refresh_from_db()
    assert later.conversation.status == ConversationStatus.WAITING


def test_cancel_in_reply_to_a_reminder_cancels_the_visit_not_the_texts(
    org: Any,
    reminded: Callable[[str], Appointment],
    sandbox_number: Any,
    text_in: Callable[..., Any],
) -> None:
    visit = reminded("ann")
    text_in(sandbox_number, PATIENTS["ann"], "CANCEL")
    visit.refresh_from_db()
    assert (visit.status, visit.answer) == (AppointmentStatus.CANCELLED, CANCEL)
    assert consent_state(organization_id=org.pk, phone=PATIENTS["ann"]).opted_in
    ack = Message.objects.filter(kind=MessageKind.AUTOMATED).order_by("pk").last()
    assert ack is not None and "reply STOP" in ack.body
    assert not Reminder.objects.filter(appointment=visit, status=ReminderStatus.PLANNED)


def test_stop_in_reply_to_a_reminder_opts_out_and_leaves_the_visit(
    org: Any,
    reminded: Callable[[str], Appointment],
    sandbox_number: Any,
    text_in: Callable[..., Any],
) -> None:
    visit = reminded("ben")
    text_in(sandbox_number, PATIENTS["ben"], "STOP")
    visit.refresh_from_db()
    assert (visit.status, visit.answer) == (AppointmentStatus.BOOKED, "")
    assert consent_state(organization_id=org.pk, phone=PATIENTS["ben"]).opted_out


def test_cancel_with_no_reminder_waiting_for_an_answer_still_opts_out(
    org: Any, clinic: AppointmentType, sandbox_number: Any, text_in: Callable[..., Any]
) -> None:
    text_in(sandbox_number, PATIENTS["cat"], "CANCEL")
    assert consent_state(organization_id=org.pk, phone=PATIENTS["cat"]).opted_out


def test_a_question_or_a_reschedule_request_waits_for_a_person(
    reminded: Callable[[str], Appointment], sandbox_number: Any, text_in: Callable[..., Any]
) -> None:
    visit = reminded("ann")
    question = text_in(sandbox_number, PATIENTS["ann"], "Is parking free?")
    visit.refresh_from_db()
    assert (visit.status, visit.answer) == (AppointmentStatus.BOOKED, "")
    assert question.conversation.status == ConversationStatus.WAITING
    other = reminded("cat")
    reply = text_in(sandbox_number, PATIENTS["cat"], "can we move it")
    other.refresh_from_db()
    assert other.status == AppointmentStatus.RESCHEDULE
    reply.conversation.refresh_from_db()
    assert reply.conversation.status == ConversationStatus.WAITING  # staff find a new time


def test_a_cancellation_by_text_notifies_the_named_member_in_the_console_and_by_text(
    org: Any,
    alice: Any,
    reminded: Callable[[str], Appointment],
    sandbox_number: Any,
    text_in: Callable[..., Any],
    published: list[dict[str, Any]],
) -> None:
    from openline.alerts.models import AlertProfile

    ReminderSettings.objects.create(organization=org, notify_user=alice, notify_by_text=True)
    AlertProfile.objects.create(
        organization=org, user=alice, mobile="+12125550199", confirmed_phone="+12125550199",
        confirmed_at=timezone.now(),
    )  # fmt: skip
    visit = reminded("ann")
    text_in(sandbox_number, PATIENTS["ann"], "can't make it")
    [event] = [e for e in published if e["type"] == "appointment.cancelled"]
    assert (event["appointment_id"], event["notify_user_id"]) == (visit.pk, alice.pk)
    assert event["label"].startswith("Ann cancelled ")
    [alert] = Message.objects.filter(
        kind=MessageKind.ALERT, conversation__contact__phone="+12125550199"
    )
    assert alert.body.startswith("OpenLine: an appointment was cancelled by text (")
    assert "Ann" not in alert.body and "make it" not in alert.body  # no patient, no quote


def test_cancel_after_staff_cancelled_the_visit_is_still_no_opt_out_and_waits_for_a_person(
    org: Any,
    reminded: Callable[[str], Appointment],
    sandbox_number: Any,
    text_in: Callable[..., Any],
) -> None:
    from openline.campaigns.appointments import appointment_cancel

    visit = reminded("ann")
    assert appointment_cancel(organization_id=org.pk, appointment_id=visit.pk) is not None
    assert appointment_cancel(organization_id=org.pk, appointment_id=visit.pk) is None  # once
    reply = text_in(sandbox_number, PATIENTS["ann"], "CANCEL")
    assert consent_state(organization_id=org.pk, phone=PATIENTS["ann"]).opted_in
    reply.conversation.refresh_from_db()
    assert reply.conversation.status == ConversationStatus.WAITING
    assert not Reminder.objects.filter(appointment=visit, status=ReminderStatus.PLANNED)


def test_a_new_or_retimed_rule_replans_upcoming_visits_and_one_turned_off_sends_nothing(
    org: Any, alice: Any, clinic: AppointmentType, pipeline: Any
) -> None:
    from openline.campaigns.reminders import reminder_rule_save

    now = timezone.now()
    starts = (now + timedelta(days=5)).astimezone(TZ).replace(hour=15, minute=0)
    SendingWindow.objects.filter(organization=org).update(start=time(0, 0), end=time(23, 59))
    visit = _book(org, "ann", starts, now)
    assert Reminder.objects.filter(appointment=visit, status=ReminderStatus.PLANNED).count() == 2
    # A third rule: the visit already booked gets it too (a task after the save).
    pipeline.run(lambda: reminder_rule_save(
        organization_id=org.pk, actor_id=alice.pk, rule=None, type_id=clinic.pk, new_type="",
        fields={"minutes_before": 30, "template": "See you soon."},
    ))  # fmt: skip
    assert Reminder.objects.filter(appointment=visit, status=ReminderStatus.PLANNED).count() == 3
    # Re-timed: its planned reminder is withdrawn and planned again at the new time.
    rule = ReminderRule.objects.get(minutes_before=30)
    pipeline.run(lambda: reminder_rule_save(
        organization_id=org.pk, actor_id=alice.pk, rule=rule, type_id=None, new_type="",
        fields={"minutes_before": 60},
    ))  # fmt: skip
    mine = Reminder.objects.filter(appointment=visit, rule=rule)
    assert sorted(mine.values_list("status", flat=True)) == ["planned", "withdrawn"]
    assert mine.get(status="planned").due_at == starts - timedelta(minutes=60)
    # Turned off another way than the page: a due reminder of it is withdrawn, not sent.
    ReminderRule.objects.filter(pk=rule.pk).update(is_active=False)
    Reminder.objects.filter(rule=rule, status="planned").update(due_at=now)
    pipeline.run(lambda: reminders_send_due(now=now + timedelta(seconds=1)))
    assert mine.filter(status="withdrawn").count() == 2 and _text_of(PATIENTS["ann"]) == []


def test_a_rule_text_that_cannot_be_filled_in_is_refused_with_the_reason(
    org: Any, clinic: AppointmentType, pipeline: Any
) -> None:
    visit = _book(org, "ann", _at(10, 15), _at(1, 9))
    ReminderRule.objects.filter(days_before=2).update(template="Hi {0} {first_name:%x}")
    pipeline.run(lambda: reminders_send_due(now=_at(8, 10, 1)))
    refused = Reminder.objects.get(appointment=visit, status=ReminderStatus.REFUSED)
    assert "cannot be filled in" in refused.reason and _text_of(PATIENTS["ann"]) == []


def test_nothing_goes_to_a_patient_who_opted_out(
    org: Any, clinic: AppointmentType, pipeline: Any
) -> None:
    from openline.contacts.services.consent import consent_record_opt_out
    from openline.providers.sandbox.models import SandboxMessage

    visit = _book(org, "ann", _at(10, 15), _at(1, 9))
    consent_record_opt_out(organization_id=org.pk, phone=PATIENTS["ann"],
                           source=ConsentSource.KEYWORD, text="STOP")  # fmt: skip
    pipeline.run(lambda: reminders_send_due(now=_at(8, 10, 1)))
    refused = Reminder.objects.get(appointment=visit, status=ReminderStatus.REFUSED)
    assert refused.reason.startswith("opted_out") and refused.message_id is None
    assert _text_of(PATIENTS["ann"]) == []
    assert not SandboxMessage.objects.filter(to=PATIENTS["ann"]).exists()
