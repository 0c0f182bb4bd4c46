"""The appointments pages (issue 16): the day view with each reminder's and reply's state,
"call these people", appointments by hand through appointment_save, the reminder rules
with the minimum-necessary check and their two-week preview, the limits and who hears of a
cancellation, the appointment beside a patient's text in the conversation pane; another
organization's appointment or rule is not found, and bad input comes back beside its field."""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any

import pytest
from django.contrib.staticfiles import finders
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from openline.campaigns.appointment_forms import template_problem, template_warnings
from openline.campaigns.appointments import AppointmentData, appointment_save
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
from openline.campaigns.reminders import reminders_send_due
from openline.console.consumers import event_visible
from openline.contacts.models import ConsentSource
from openline.contacts.services.consent import consent_record_opt_in
from openline.core.models import AuditEvent

CHICAGO = "America/Chicago"  # the test organization's zone
TZ = zoneinfo.ZoneInfo(CHICAGO)
PATIENTS = {
    "ann": "+12125550110",
    "ben": "+12125550111",
    "cat": "+12125550112",
    "dan": "+12125550999",  # the sandbox carrier cannot deliver to it
    "eve": "+12125550114",
}
REMINDER = "Hi {first_name}, see you {date} at {time} at {location}."


def _signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _local(days: int, hour: int, minute: int = 0) -> datetime:
    """``days`` from today in the organization's zone, at hour:minute there (aware)."""
    day = timezone.now().astimezone(TZ).date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=TZ)


@pytest.fixture
def clinic(org: Any, alice: Any, sandbox_number: Any) -> AppointmentType:
    """A visit type with two reminders (2 days before at 10:00, 2 hours before), sending
    hours all day, and every patient opted in."""
    SendingWindow.objects.create(organization=org, start=time(0, 0), end=time(23, 59, 59))
    checkup = AppointmentType.objects.create(organization=org, name="Check-up")
    for timing in ({"days_before": 2, "at_time": time(10, 0)}, {"minutes_before": 120}):
        ReminderRule.objects.create(
            organization=org, appointment_type=checkup, template=REMINDER, **timing
        )
    for phone in PATIENTS.values():
        consent_record_opt_in(
            organization_id=org.pk, phone=phone, source=ConsentSource.STAFF,
            evidence="patient intake form", actor_id=alice.pk,
        )  # fmt: skip
    return checkup


def _book(org: Any, who: str, starts: datetime, **kw: Any) -> Appointment:
    values: dict[str, Any] = {
        "phone": PATIENTS.get(who, who), "starts_at": starts, "time_zone": CHICAGO,
        "staff_name": "Dr. Ruiz", "location": "Main St clinic", "type_name": "Check-up",
        "name": who.title(), **kw,
    }  # fmt: skip
    appointment, _ = appointment_save(organization_id=org.pk, data=AppointmentData(**values))
    return appointment


def _remind_now(pipeline: Any, *appointments: Appointment) -> None:
    """Send each appointment's next planned reminder now, and let the carrier report."""
    now = timezone.now()
    for appointment in appointments:
        first = Reminder.objects.filter(
            appointment=appointment, status=ReminderStatus.PLANNED
        ).order_by("due_at")[0]
        Reminder.objects.filter(pk=first.pk).update(due_at=now)
    pipeline.run(lambda: reminders_send_due(now=now + timedelta(seconds=1)), include_deferred=True)


def _row(page: str, appointment: Appointment) -> str:
    found = re.search(rf'<tr data-appointment="{appointment.pk}".*?</tr>', page, re.S)
    assert found, f"no row for appointment {appointment.pk}"
    return found.group(0)


def _count(page: str, key: str) -> int:
    found = re.search(rf'data-count="{key}">(\d+)<', page)
    assert found, key
    return int(found.group(1))


def _rows(page: str) -> set[int]:
    return {int(pk) for pk in re.findall(r'<tr data-appointment="(\d+)"', page)}


# --- the day view ---------------------------------------------------------------------------------


def test_the_day_view_shows_each_reminder_and_reply_state_and_filters_by_them(
    org: Any,
    alice: Any,
    clinic: AppointmentType,
    pipeline: Any,
    sandbox_number: Any,
    text_in: Callable[..., Any],
) -> None:
    visits = {who: _book(org, who, _local(1, 10 + i)) for i, who in enumerate(PATIENTS)}
    _remind_now(pipeline, *(visits[who] for who in ("ann", "ben", "cat", "dan")))
    text_in(sandbox_number, PATIENTS["ann"], "Y")
    text_in(sandbox_number, PATIENTS["ben"], "can't make it")
    text_in(sandbox_number, PATIENTS["cat"], "can we move it")
    question = text_in(sandbox_number, PATIENTS["eve"], "Is parking free?")
    text_in(sandbox_number, PATIENTS["cat"], "STOP")  # after asking to reschedule

    client = _signed_in(alice)
    day = _local(1, 0).date().isoformat()
    page = client.get("/appointments/", {"date": day}).content.decode()
    ann, ben, cat, dan, eve = (_row(page, visits[who]) for who in PATIENTS)
    assert 'data-reminder="delivered"' in ann and 'data-reply="confirmed"' in ann
    assert 'data-status="confirmed"' in ann
    assert 'data-reply="cancelled"' in ben and 'data-status="cancelled"' in ben
    assert 'data-reply="reschedule"' in cat and 'data-status="reschedule"' in cat
    # Cat then texted STOP: the row says so (no more reminders; call instead).
    assert 'data-consent="opted_out"' in cat and "Opted out" in cat
    assert all('data-consent=""' in row for row in (ann, ben, dan, eve))
    assert (
        'data-reminder="failed"' in dan and "Undelivered" in dan and 'data-reply="no_answer"' in dan
    )
    assert 'data-reminder="planned"' in eve and 'data-reply="no_answer"' in eve
    # Booked a day ahead: the "2 days before" reminder's time had passed, and it says so.
    assert 'data-reminder="skipped"' in eve and "booked after this reminder" in eve
    assert "Dr. Ruiz" in ann and "Check-up" in ann and 'href="/contacts/' in ann
    conversation_id = visits["ann"].contact.conversations.order_by("-pk").first().pk
    assert f'href="/conversations/{conversation_id}/"' in ann
    assert "Is parking free?" not in page  # states, never a message's text
    assert question.conversation_id and "data-conversation" in eve  # her question's thread

    assert (_count(page, "total"), _count(page, "confirmed"), _count(page, "cancelled")) == (
        5,
        1,
        1,
    )
    assert (_count(page, "reschedule"), _count(page, "no_answer")) == (1, 2)
    assert _count(page, "reminder_failed") == 1
    expected = {
        "confirmed": {"ann"},
        "cancelled": {"ben"},
        "reschedule": {"cat"},
        "no_answer": {"dan", "eve"},
        "reminder_failed": {"dan"},
    }
    cancelled = client.get(f"/appointments/{visits['ben'].pk}/").content.decode()
    assert 'data-reply="cancelled"' in cancelled and "Cancelled by text" in cancelled
    assert "make it" not in cancelled  # the answer's meaning, not the patient's words
    for state, who in expected.items():
        filtered = client.get("/appointments/", {"date": day, "state": state}).content.decode()
        assert _rows(filtered) == {visits[w].pk for w in who}, state


def test_the_day_view_groups_by_location_filters_one_and_moves_between_days(
    org: Any, alice: Any, clinic: AppointmentType
) -> None:
    main = _book(org, "ann", _local(2, 9))
    east = _book(org, "ben", _local(2, 11), location="East clinic")
    # Somewhere else, at 9:00 New York time (8:00 in Chicago).
    there = _local(2, 8).astimezone(zoneinfo.ZoneInfo("America/New_York")).replace(tzinfo=None)
    away = _book(org, "cat", there, time_zone="America/New_York", location="East clinic")
    later = _book(org, "dan", _local(3, 9))
    client = _signed_in(alice)
    day = _local(2, 0).date()
    page = client.get("/appointments/", {"date": day.isoformat()}).content.decode()
    assert _rows(page) == {main.pk, east.pk, away.pk}
    headings = re.findall(r'<h2 id="place-\d+">([^<]+) <span class="muted">\((\d+)\)', page)
    assert headings == [("East clinic", "2"), ("Main St clinic", "1")]  # a table each
    assert re.search(r"9:00 AM E[SD]T there", _row(page, away))
    assert "8:00 AM" in _row(page, away)
    only_east = client.get("/appointments/", {"date": day.isoformat(), "location": "East clinic"})
    assert _rows(only_east.content.decode()) == {east.pk, away.pk}
    next_day = (day + timedelta(days=1)).isoformat()
    assert f"?date={next_day}&amp;location=East+clinic" in only_east.content.decode()
    assert _rows(client.get("/appointments/", {"date": next_day}).content.decode()) == {later.pk}
    assert 'data-day="today"' in page  # the way back to today


def _day_queries(client: Client, day: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/appointments/", {"date": day})
    assert response.status_code == 200
    return len(queries.captured_queries)


def test_the_day_view_costs_the_same_queries_for_3_or_30_appointments(
    org: Any, alice: Any, clinic: AppointmentType, pipeline: Any
) -> None:
    client = _signed_in(alice)
    few = [_book(org, f"+1212555{2000 + i}", _local(1, 8, i)) for i in range(3)]
    _remind_now(pipeline, few[0])
    small = _day_queries(client, _local(1, 0).date().isoformat())
    many = [_book(org, f"+1212555{3000 + i}", _local(2, 8, i)) for i in range(30)]
    _remind_now(pipeline, many[0], many[1])
    large = _day_queries(client, _local(2, 0).date().isoformat())
    assert large == small
    assert large <= 12


def test_bad_filters_come_back_beside_their_field_never_a_500(
    org: Any, alice: Any, clinic: AppointmentType
) -> None:
    client = _signed_in(alice)
    for params in ({"date": "2026-02-30"}, {"date": "tomorrow"}, {"state": "happy"},
                   {"location": "x" * 500}, {"date": "0001-01-01"},
                   {"date": "9999-12-31"}):  # fmt: skip
        response = client.get("/appointments/", params)
        assert response.status_code == 400, params
        assert 'class="form-error"' in response.content.decode(), params
    assert client.get("/appointments/call-list", {"date": "nope"}).status_code == 400
    assert client.get("/appointments/call-list", {"date": "9999-12-31"}).status_code == 400
    assert client.get("/appointments/rules/0/", {"type": "9" * 30}).status_code == 200
    assert client.get(f"/appointments/{'9' * 30}/").status_code == 404


# --- call these people ----------------------------------------------------------------------------


def test_the_call_list_has_tomorrows_unconfirmed_people_with_their_numbers(
    org: Any,
    alice: Any,
    clinic: AppointmentType,
    pipeline: Any,
    sandbox_number: Any,
    text_in: Callable[..., Any],
) -> None:
    reminded = _book(org, "ann", _local(1, 10))
    confirmed = _book(org, "ben", _local(1, 11))
    not_yet = _book(org, "cat", _local(1, 12))  # no reminder sent yet: still to call
    cancelled = _book(org, "dan", _local(1, 13))
    moving = _book(org, "eve", _local(1, 14))
    other_day = _book(org, "+12125550177", _local(2, 10))
    _remind_now(pipeline, reminded, confirmed, moving)
    text_in(sandbox_number, PATIENTS["ben"], "yes")
    text_in(sandbox_number, PATIENTS["eve"], "I need to reschedule")
    _signed_in(alice).post(f"/appointments/{cancelled.pk}/", {"action": "cancel"})  # by phone

    page = _signed_in(alice).get("/appointments/call-list").content.decode()
    unconfirmed = page.split('data-list="unconfirmed"')[1].split("</table>")[0]
    assert _rows(unconfirmed) == {reminded.pk, not_yet.pk}
    assert "+1 212-555-0110" in unconfirmed and 'href="tel:+12125550110"' in unconfirmed
    assert 'data-reminder="delivered"' in _row(unconfirmed, reminded)
    assert 'data-reminder="planned"' in _row(unconfirmed, not_yet)
    reschedule = page.split('data-list="reschedule"')[1].split("</table>")[0]
    assert _rows(reschedule) == {moving.pk}
    assert other_day.pk not in _rows(page) and "data-print" in page


# --- an appointment by hand -----------------------------------------------------------------------


def _form(**change: Any) -> dict[str, Any]:
    return {
        "phone": "(212) 555-0110", "name": "Ann Lee", "date": _local(3, 0).date().isoformat(),
        "time": "14:30", "time_zone": CHICAGO, "minutes": "45", "staff_name": "Dr. Ruiz",
        "location": "Main St clinic", "type_name": "Check-up", "external_id": "", **change,
    }  # fmt: skip


def test_an_appointment_made_by_hand_is_saved_planned_and_audited(
    org: Any, alice: Any, clinic: AppointmentType
) -> None:
    client = _signed_in(alice)
    assert client.get("/appointments/new").status_code == 200
    response = client.post("/appointments/new", _form())
    assert response.status_code == 302
    appointment = Appointment.objects.get()
    assert response["Location"] == f"/appointments/{appointment.pk}/"
    assert appointment.starts_at == _local(3, 14, 30)
    assert (appointment.minutes, appointment.contact.name) == (45, "Ann Lee")
    assert appointment.contact.phone == "+12125550110"
    planned = Reminder.objects.filter(appointment=appointment, status=ReminderStatus.PLANNED)
    assert planned.count() == 2
    assert AuditEvent.objects.filter(
        action="appointment.created", actor=alice, object_id=str(appointment.pk)
    ).exists()
    page = client.get(response["Location"]).content.decode()
    assert "Ann Lee" in page and "Reminder: planned" in page and "Booked" in page


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"phone": "12"}, "phone", ""),
        ({"phone": ""}, "phone", "required"),
        ({"date": _local(-2, 0).date().isoformat()}, "date", "in the past"),
        ({"date": "1899-01-01"}, "date", "ten years"),
        ({"date": "2031-02-31"}, "date", ""),
        ({"time": "25:99"}, "time", ""),
        ({"time_zone": "America"}, "time_zone", "Unknown time zone"),
        ({"time_zone": "Mars/Olympus"}, "time_zone", "Unknown time zone"),
        ({"minutes": "0"}, "minutes", ""),
        ({"minutes": "many"}, "minutes", ""),
        ({"external_id": "x" * 101}, "external_id", ""),
    ],
)
def test_bad_appointment_input_comes_back_beside_its_field(
    org: Any, alice: Any, clinic: AppointmentType, change: dict[str, str], field: str, message: str
) -> None:
    response = _signed_in(alice).post("/appointments/new", _form(**change))
    assert response.status_code == 422
    page = response.content.decode()
    beside = re.search(rf'id="field-{field}">.*?</div>', page, re.S)
    assert beside and "form-error" in beside.group(0), (field, page[:3000])
    assert message in beside.group(0)
    assert not Appointment.objects.exists()


def test_the_same_external_id_again_moves_that_appointment_never_makes_a_second(
    org: Any, alice: Any, clinic: AppointmentType
) -> None:
    client = _signed_in(alice)
    assert client.post("/appointments/new", _form(external_id="EHR-1")).status_code == 302
    again = client.post("/appointments/new", _form(external_id="EHR-1", time="16:00"))
    # The same id with other data: the service updates by external id, so it is the same
    # appointment moved; a by-hand form never makes a second one.
    assert again.status_code == 302
    assert Appointment.objects.get().starts_at == _local(3, 16)


def test_the_detail_page_moves_cancels_and_marks_an_appointment_through_appointment_save(
    org: Any, alice: Any, bob: Any, clinic: AppointmentType
) -> None:
    visit = _book(org, "ann", _local(3, 10))
    assert visit.external_id == ""
    client = _signed_in(bob)  # a counselor answers the phone too
    page = client.get(f"/appointments/{visit.pk}/").content.decode()
    assert "Edit or move" in page and 'data-action="cancel"' in page

    moved = client.post(f"/appointments/{visit.pk}/", {"action": "edit", **_form(time="15:00")})
    assert moved.status_code == 302
    visit.refresh_from_db()
    assert visit.starts_at == _local(3, 15) and visit.external_id == ""  # found by its id
    statuses = sorted(Reminder.objects.filter(appointment=visit).values_list("status", flat=True))
    assert statuses == ["planned", "planned", "withdrawn", "withdrawn"]
    assert AuditEvent.objects.filter(action="appointment.updated", actor=bob).count() == 1

    bad = client.post(f"/appointments/{visit.pk}/", {"action": "edit", **_form(time_zone="Nope")})
    assert bad.status_code == 422 and "<details" in bad.content.decode()
    assert "open>" in bad.content.decode() and "Unknown time zone" in bad.content.decode()

    client.post(f"/appointments/{visit.pk}/", {"action": "cancel"})
    visit.refresh_from_db()
    assert visit.status == AppointmentStatus.CANCELLED
    assert not Reminder.objects.filter(appointment=visit, status=ReminderStatus.PLANNED).exists()
    client.post(f"/appointments/{visit.pk}/", {"action": "no_show"})
    visit.refresh_from_db()
    assert visit.status == AppointmentStatus.NO_SHOW
    assert client.post(f"/appointments/{visit.pk}/", {"action": "explode"}).status_code == 422
    assert AuditEvent.objects.filter(action="appointment.updated", actor=bob).count() == 2
    assert AuditEvent.objects.filter(action="appointment.cancelled", actor=bob).count() == 1
    timeline = client.get(f"/appointments/{visit.pk}/").content.decode()
    assert timeline.count('data-kind="withdrawn"') == 4 and "for the former time" in timeline


def test_moving_an_appointment_whose_patient_asked_to_reschedule_books_it_again(
    org: Any,
    alice: Any,
    clinic: AppointmentType,
    pipeline: Any,
    sandbox_number: Any,
    text_in: Callable[..., Any],
) -> None:
    visit = _book(org, "cat", _local(2, 10), external_id="EHR-7")
    _remind_now(pipeline, visit)
    text_in(sandbox_number, PATIENTS["cat"], "reschedule")
    visit.refresh_from_db()
    assert visit.status == AppointmentStatus.RESCHEDULE
    page = _signed_in(alice).get(f"/appointments/{visit.pk}/").content.decode()
    assert 'data-reply="reschedule"' in page and "Asked to reschedule by text" in page
    form = _form(phone=PATIENTS["cat"], date=_local(4, 0).date().isoformat(), time="09:00")
    _signed_in(alice).post(f"/appointments/{visit.pk}/", {"action": "edit", **form})
    visit.refresh_from_db()
    assert (visit.status, visit.answer, visit.external_id) == ("booked", "", "EHR-7")


# --- scoping and roles ----------------------------------------------------------------------------


def test_another_organizations_appointments_and_rules_are_not_found(
    org: Any, alice: Any, charlie: Any, clinic: AppointmentType
) -> None:
    visit = _book(org, "ann", _local(1, 10))
    rule = ReminderRule.objects.filter(organization=org).first()
    assert rule is not None
    theirs = _signed_in(charlie)
    assert theirs.get(f"/appointments/{visit.pk}/").status_code == 404
    assert theirs.post(f"/appointments/{visit.pk}/", {"action": "cancel"}).status_code == 404
    assert theirs.get(f"/appointments/rules/{rule.pk}/").status_code == 404
    assert theirs.post(f"/appointments/rules/{rule.pk}/", {"template": "x"}).status_code == 404
    day = theirs.get("/appointments/", {"date": _local(1, 0).date().isoformat()})
    assert _rows(day.content.decode()) == set()
    assert "Check-up" not in theirs.get("/appointments/rules/").content.decode()
    assert visit.pk not in _rows(theirs.get("/appointments/call-list").content.decode())
    visit.refresh_from_db()
    assert visit.status == AppointmentStatus.BOOKED
    # Nor can their form pick this organization's type.
    theirs.post("/appointments/rules/0/", _rule_form(appointment_type=clinic.pk, new_type=""))
    assert ReminderRule.objects.filter(appointment_type=clinic).count() == 2


def test_counselors_see_the_appointments_but_not_the_rules(
    org: Any, bob: Any, clinic: AppointmentType
) -> None:
    client = _signed_in(bob)
    page = client.get("/appointments/").content.decode()
    assert 'href="/appointments/" aria-current="page">Appointments</a>' in page
    assert "Reminder rules" not in page
    assert client.get("/appointments/rules/").status_code == 403
    assert client.get("/appointments/rules/0/").status_code == 403
    rule = ReminderRule.objects.filter(organization=org).first()
    assert rule is not None
    assert client.post(f"/appointments/rules/{rule.pk}/", {"template": "x"}).status_code == 403
    assert client.post("/appointments/rules/", {"max_per_day": "5"}).status_code == 403
    assert not ReminderSettings.objects.exists()


# --- reminder rules -------------------------------------------------------------------------------


def _rule_form(**change: Any) -> dict[str, Any]:
    return {
        "appointment_type": "", "new_type": "Flu shot", "timing": "before", "days_before": "",
        "at_time": "", "amount": "3", "unit": "hours", "template": REMINDER,
        "send_when_booked_late": "on", "is_active": "on", **change,
    }  # fmt: skip


def test_an_admin_creates_and_edits_a_rule_with_errors_beside_their_field(
    org: Any, alice: Any, clinic: AppointmentType
) -> None:
    client = _signed_in(alice)
    page = client.get("/appointments/rules/0/", {"type": clinic.pk}).content.decode()
    assert f'<option value="{clinic.pk}" selected>Check-up</option>' in page
    for change, field, text in [
        ({"template": "Hi {first_name, see you"}, "template", "has no partner"),
        ({"template": "See you {time:%H}"}, "template", "cannot be filled in"),
        ({"template": "Hi {0}"}, "template", "cannot be filled in"),
        ({"amount": ""}, "amount", "how long before"),
        ({"amount": "999"}, "amount", "14 days"),
        ({"timing": "days"}, "days_before", "how many days"),
        ({"new_type": ""}, "new_type", "Choose an appointment type"),
        ({"timing": "sometimes"}, "timing", "Select a valid choice"),
        (
            {"timing": "days", "days_before": "soon", "at_time": "10:00"},
            "days_before",
            "whole number",
        ),
        ({"timing": "days", "days_before": "1", "at_time": "25:00"}, "at_time", "valid time"),
        ({"unit": "weeks"}, "unit", "Select a valid choice"),
        ({"appointment_type": "99999"}, "appointment_type", "Select a valid choice"),
    ]:
        refused = client.post("/appointments/rules/0/", _rule_form(**change))
        assert refused.status_code == 422, change
        html = refused.content.decode()
        assert text in html, change
        assert f'id="id_{field}_error"' in html or f'data-error-for="{field}"' in html, change
    assert not ReminderRule.objects.filter(appointment_type__name="Flu shot").exists()

    saved = client.post("/appointments/rules/0/", _rule_form())
    assert saved.status_code == 302
    rule = ReminderRule.objects.get(appointment_type__name="Flu shot")
    assert (rule.minutes_before, rule.days_before, rule.send_when_booked_late) == (180, None, True)
    edited = client.post(
        f"/appointments/rules/{rule.pk}/",
        _rule_form(timing="days", days_before="1", at_time="17:30", template="See you {date}."),
    )
    assert edited.status_code == 302
    rule.refresh_from_db()
    assert (rule.days_before, rule.at_time, rule.minutes_before) == (1, time(17, 30), None)
    assert rule.appointment_type.name == "Flu shot"  # a rule keeps its type
    actions = AuditEvent.objects.filter(actor=alice, object_type="reminder_rule")
    assert sorted(actions.values_list("action", flat=True)) == [
        "reminder_rule.created", "reminder_rule.updated",
    ]  # fmt: skip
    listing = client.get("/appointments/rules/").content.decode()
    assert "1 day before at 5:30 PM" in listing and "2 hours before" in listing


def test_the_template_editor_warns_beyond_the_minimum_necessary_but_saves(
    org: Any, alice: Any, clinic: AppointmentType
) -> None:
    _book(org, "ann", _local(2, 10), location="HIV clinic")
    client = _signed_in(alice)
    template = (
        "Hi {first_name}, your biopsy results are in: {diagnosis}. See you {date} at {location}."
    )
    preview = client.post(
        "/appointments/rules/0/",
        {**_rule_form(appointment_type=clinic.pk, template=template), "preview": "1"},
        headers={"HX-Request": "true"},
    )
    html = preview.content.decode()
    assert preview.status_code == 200 and "<h1" not in html  # the fragment alone
    assert 'data-testid="minimum-necessary"' in html
    assert "“biopsy”" in html and "“results”" in html and "{diagnosis} is not a merge field" in html
    assert "“HIV”" in html  # from the sample appointment's location
    assert "Hi Ann, your biopsy results are in: {diagnosis}." in html  # filled from Ann's
    assert 'id="rule-counter" class="segment-counter"' in html and "GSM-7" in html
    assert 'aria-describedby="rule-counter' in client.get("/appointments/rules/0/").content.decode()
    ucs2 = client.post(
        "/appointments/rules/0/",
        {**_rule_form(template="See you {date} — bring your card"), "preview": "1"},
        headers={"HX-Request": "true"},
    ).content.decode()
    assert "UCS-2" in ucs2 and "seg-fix" in ucs2  # the broadcast editor's counter and fix
    saved = client.post(
        "/appointments/rules/0/", _rule_form(appointment_type=clinic.pk, template=template)
    )
    assert saved.status_code == 302  # a warning, not a refusal
    clean = client.post(
        "/appointments/rules/0/",
        {**_rule_form(template="See you {date} at {time} at {location}."), "preview": "1"},
        headers={"HX-Request": "true"},
    ).content.decode()
    assert "minimum-necessary" not in clean and "made-up appointment" in clean


def test_minimum_necessary_words_and_merge_fields() -> None:
    assert template_warnings("See you {date} at {time} at {location} with {provider}.") == []
    assert template_warnings("Your STD test is {date}")[0].startswith("The text mentions “STD”")
    assert template_warnings("Take your methadone dose")[0].count("“") == 2
    assert template_warnings("Prepare for {date}") == []  # "prep" is a word, not a prefix
    assert "{notes}" in template_warnings("{notes}")[0]
    assert template_problem("{{literal}} {date}") == ""
    assert template_problem("{date.year}") != ""


def test_the_rule_preview_counts_what_the_next_two_weeks_would_send_limit_or_skip(
    org: Any, alice: Any, clinic: AppointmentType
) -> None:
    ReminderRule.objects.filter(organization=org).delete()
    ReminderSettings.objects.create(organization=org, max_per_day=1, max_per_week=3)
    _book(org, "ann", _local(1, 10))  # 2 days before at 10:00 was yesterday: booked late
    _book(org, "ben", _local(5, 10))
    _book(org, "cat", _local(6, 9))
    _book(org, "cat", _local(6, 15))  # a second visit that day: one reminder a day
    _book(org, "dan", _local(20, 10))  # after the two weeks
    _book(org, "eve", _local(7, 10), type_name="Other")  # another type
    client = _signed_in(alice)
    html = client.post(
        "/appointments/rules/0/",
        {**_rule_form(appointment_type=clinic.pk, timing="days", days_before="2",
                      at_time="10:00", send_when_booked_late=""), "preview": "1"},
        headers={"HX-Request": "true"},
    ).content.decode()  # fmt: skip
    numbers = dict(re.findall(r'data-forecast="(\w+)">(\d+)<', html))
    assert numbers == {"appointments": "4", "sent": "2", "over_limit": "1", "booked_late": "1"}
    late = client.post(
        "/appointments/rules/0/",
        {**_rule_form(appointment_type=clinic.pk, timing="days", days_before="2",
                      at_time="10:00"), "preview": "1"},
        headers={"HX-Request": "true"},
    ).content.decode()  # fmt: skip
    assert dict(re.findall(r'data-forecast="(\w+)">(\d+)<', late))["booked_late"] == "0"


def test_turning_a_rule_off_withdraws_its_planned_reminders(
    org: Any, alice: Any, clinic: AppointmentType
) -> None:
    visit = _book(org, "ann", _local(3, 10))
    rule = ReminderRule.objects.get(organization=org, minutes_before=120)
    form = {**_rule_form(), "amount": "2", "is_active": ""}
    assert _signed_in(alice).post(f"/appointments/rules/{rule.pk}/", form).status_code == 302
    mine = Reminder.objects.get(appointment=visit, rule=rule)
    assert (mine.status, mine.reason) == (ReminderStatus.WITHDRAWN, "the rule was turned off")
    other = Reminder.objects.exclude(rule=rule).get(appointment=visit)
    assert other.status == ReminderStatus.PLANNED


def test_limits_and_who_hears_of_cancellations_are_saved_or_refused_beside_the_field(
    org: Any, alice: Any, bob: Any, charlie: Any, clinic: AppointmentType
) -> None:
    client = _signed_in(alice)
    page = client.get("/appointments/rules/").content.decode()
    assert 'name="max_per_day" value="1"' in page and "bob@example.org" in page
    assert "charlie@example.org" not in page
    for change, field in [
        ({"max_per_day": "3", "max_per_week": "2"}, "max_per_week"),
        ({"max_per_day": "0"}, "max_per_day"),
        ({"max_per_day": "lots"}, "max_per_day"),
        ({"notify_user": str(charlie.pk)}, "notify_user"),
        ({"notify_user": "", "notify_by_text": "on"}, "notify_by_text"),
    ]:
        data = {"max_per_day": "1", "max_per_week": "3", "notify_user": str(bob.pk), **change}
        refused = client.post("/appointments/rules/", data)
        assert refused.status_code == 422, change
        assert f'data-error-for="{field}"' in refused.content.decode(), change
    assert not ReminderSettings.objects.exists()
    data = {"max_per_day": "2", "max_per_week": "4", "notify_user": bob.pk, "notify_by_text": "on"}
    assert client.post("/appointments/rules/", data).status_code == 302
    saved = ReminderSettings.objects.get(organization=org)
    assert (saved.max_per_day, saved.max_per_week, saved.notify_user_id, saved.notify_by_text) == (
        2, 4, bob.pk, True,
    )  # fmt: skip
    assert AuditEvent.objects.filter(action="reminder_settings.updated", actor=alice).exists()


# --- beside the conversation, and the cancellation notice -----------------------------------------


def test_a_patients_question_shows_their_appointment_beside_the_conversation(
    org: Any,
    bob: Any,
    clinic: AppointmentType,
    pipeline: Any,
    sandbox_number: Any,
    text_in: Callable[..., Any],
) -> None:
    visit = _book(org, "ann", _local(2, 10), location="East clinic")
    _remind_now(pipeline, visit)
    question = text_in(sandbox_number, PATIENTS["ann"], "Is parking free?")
    assert question.conversation.status == "waiting"
    pane = _signed_in(bob).get(f"/conversations/{question.conversation_id}/").content.decode()
    beside = pane.split("data-appointments")[1].split("</section>")[0]
    assert f'href="/appointments/{visit.pk}/"' in beside
    assert "East clinic" in beside and "Dr. Ruiz" in beside and "Booked" in beside
    assert visit.starts_at.astimezone(TZ).strftime("%b %-d, %-I:%M %p") in beside
    # Someone with no appointment coming: nothing beside their conversation.
    other = text_in(sandbox_number, "+12125550188", "hello")
    assert (
        "data-appointments"
        not in _signed_in(bob).get(f"/conversations/{other.conversation_id}/").content.decode()
    )


def test_a_cancellation_by_text_reaches_the_member_chosen_in_the_settings(
    org: Any,
    alice: Any,
    bob: Any,
    clinic: AppointmentType,
    pipeline: Any,
    sandbox_number: Any,
    text_in: Callable[..., Any],
    published: list[dict[str, Any]],
) -> None:
    choose = {"max_per_day": "1", "max_per_week": "3", "notify_user": bob.pk}
    assert _signed_in(alice).post("/appointments/rules/", choose).status_code == 302
    visit = _book(org, "ben", _local(2, 10))
    _remind_now(pipeline, visit)
    text_in(sandbox_number, PATIENTS["ben"], "can't make it")
    notices = [e for e in published if e["type"] == "appointment.cancelled"]
    assert [(e["appointment_id"], e["notify_user_id"]) for e in notices] == [(visit.pk, bob.pk)]
    assert notices[0]["label"].startswith("Ben cancelled")
    assert event_visible(notices[0], user_id=bob.pk, can_manage=False)  # a counselor's socket
    # Bob's console knows who he is, has a place for toasts, and handles the event for
    # him alone, with a link to the appointment (a browser test drives it).
    page = _signed_in(bob).get(f"/appointments/{visit.pk}/").content.decode()
    assert f'data-user-id="{bob.pk}"' in page and 'id="toasts"' in page
    assert 'data-status="cancelled"' in page
    path = finders.find("console/console.js")
    assert isinstance(path, str)
    with open(path, encoding="utf-8") as script:
        source = script.read()
    handler = re.search(r'kind === "appointment\.cancelled".*?\n', source)
    assert handler and "notify_user_id" in handler.group(0) and "userId" in handler.group(0)
    assert '"/appointments/" + encodeURIComponent(event.appointment_id)' in source
