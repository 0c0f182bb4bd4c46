"""Importing appointments from a CSV file through the pages: the upload, a preview of every
row with its problem (invalid phone, unknown time zone, past, unreadable date, the same
external id twice with other details), the import of the valid rows only once confirmed,
the summary, nothing changed by importing the same file again; bad files refused with a
message; the upload kept on the server for the organization only; managers only."""

from __future__ import annotations

import html
import zoneinfo
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from openline.campaigns import appointment_import
from openline.campaigns.appointment_import import columns_guess, parse_start
from openline.campaigns.models import (
    Appointment,
    AppointmentStatus,
    AppointmentType,
    AppointmentUpload,
    Reminder,
    ReminderRule,
    ReminderStatus,
    SendingWindow,
)
from openline.contacts.models import Contact
from openline.core.models import AuditEvent

HEADER = "Appt ID,Patient Name,Mobile Phone,Appt Date,Start,Provider,Location,Visit Type,Time Zone"


def _signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _day(org: Any, days: int) -> date:
    """A day counted from today in the organization's time zone."""
    return timezone.now().astimezone(zoneinfo.ZoneInfo(org.timezone)).date() + timedelta(days)


def _csv(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def _upload(client: Client, content: bytes, name: str = "tomorrow.csv") -> Any:
    return client.post("/appointments/import", {"file": SimpleUploadedFile(name, content)})


def _uploaded(client: Client, content: bytes) -> str:
    """Upload ``content``; the preview's address."""
    response = _upload(client, content)
    assert response.status_code == 302, response.content.decode()[:3000]
    return str(response["Location"])


def _said(response: Any) -> str:
    """The last message the response leaves for the next page."""
    return [str(m) for m in get_messages(response.wsgi_request)][-1]


def _stored() -> list[str]:
    """The tokens of the uploads kept (every organization's)."""
    return sorted(AppointmentUpload.objects.values_list("token", flat=True))


@pytest.fixture
def checkup(org: Any) -> AppointmentType:
    """A visit type with a reminder 2 hours before; texts may go at any hour."""
    SendingWindow.objects.create(organization=org, start=time(0, 0), end=time(23, 59, 59))
    kind = AppointmentType.objects.create(organization=org, name="Check-up")
    ReminderRule.objects.create(
        organization=org, appointment_type=kind, minutes_before=120, template="See you {time}."
    )
    return kind


def _clinic_file(org: Any) -> bytes:
    tomorrow, yesterday = _day(org, 1).isoformat(), _day(org, -1).isoformat()
    return _csv(
        HEADER,
        f"A1,Ann Lee,(212) 555-0110,{tomorrow},9:30 AM,Dr. Ruiz,Main St,Check-up,",
        f"A2,Ben Ortiz,555-12,{tomorrow},10:00 AM,Dr. Ruiz,Main St,Check-up,",
        f"A3,Cat Wu,212-555-0112,{tomorrow},10:30 AM,Dr. Ruiz,Main St,Check-up,Mars/Olympus",
        f"A4,Dan Roe,212-555-0113,{yesterday},11:00 AM,Dr. Ruiz,Main St,Check-up,",
        "A5,Eve Fox,212-555-0114,someday,11:30 AM,Dr. Ruiz,Main St,Check-up,",
        f"A6,Fay Kim,212-555-0115,{tomorrow},1:00 PM,Dr. Ruiz,Main St,Check-up,",
        f"A6,Fay Kim,212-555-0115,{tomorrow},3:00 PM,Dr. Ruiz,Main St,Check-up,",
        f"A7,=HYPERLINK(evil),212-555-0116,{tomorrow},2:00 PM,Dr. Lin,Elm St,Check-up,"
        "America/New_York",
        f",Hal Sun,212-555-0117,{tomorrow},4:00 PM,Dr. Lin,Elm St,,",
    )


def _problem(page: str, row: int) -> str:
    """The row ``row`` of the preview's table, unescaped."""
    start = page.index(f'data-row="{row}"')
    return html.unescape(page[start : page.index("</tr>", start)])


def test_a_manager_previews_every_row_with_its_problem_and_imports_only_the_valid_ones(
    org: Any, sue: Any, checkup: AppointmentType
) -> None:
    client = _signed_in(sue)
    preview = _uploaded(client, _clinic_file(org))

    page = client.get(preview)

    assert page.status_code == 200
    text = page.content.decode()
    assert "Not imported" not in _problem(text, 2)
    assert "not a valid phone number" in _problem(text, 3)
    assert "Unknown time zone 'Mars/Olympus'" in _problem(text, 4)
    assert "in the past" in _problem(text, 5)
    assert "The date 'someday' cannot be read" in _problem(text, 6)
    for row, other in ((7, 8), (8, 7)):
        assert f"is also in row {other} with other details" in _problem(text, row)
    assert "Not imported" not in _problem(text, 9) and "Not imported" not in _problem(text, 10)
    assert text.count('data-problem="true"') == 6
    assert "Import 3 valid rows" in text
    assert Appointment.objects.count() == 0  # nothing before someone confirms

    done = client.post(preview, {"action": "import"})

    assert done.status_code == 302
    assert done["Location"] == f"/appointments/?date={_day(org, 1).isoformat()}"
    said = _said(done)
    assert said.startswith("Imported “tomorrow.csv”: 3 new, 0 updated, 0 unchanged. 6 row(s)")
    assert "row 3: Mobile Phone" in said
    booked = {a.external_id: a for a in Appointment.objects.select_related("contact")}
    assert sorted(booked) == ["", "A1", "A7"]
    ann = booked["A1"]
    chicago = zoneinfo.ZoneInfo("America/Chicago")
    assert ann.starts_at == datetime.combine(_day(org, 1), time(9, 30), tzinfo=chicago)
    assert (ann.time_zone, ann.staff_name, ann.location) == (
        "America/Chicago",
        "Dr. Ruiz",
        "Main St",
    )
    assert ann.contact.phone == "+12125550110" and ann.contact.name == "Ann Lee"
    assert Reminder.objects.filter(appointment=ann, status=ReminderStatus.PLANNED).count() == 1
    assert booked["A7"].time_zone == "America/New_York"
    assert booked["A7"].contact.name == "=HYPERLINK(evil)"  # text, as written
    assert not Contact.objects.filter(phone="+12125550112").exists()  # its row was refused
    actions = list(
        AuditEvent.objects.filter(object_type="appointment_import").values_list("action", flat=True)
    )
    assert actions == ["appointment_import.upload", "appointment_import.run"]
    assert AuditEvent.objects.filter(action="appointment.created", actor=sue).count() == 3
    assert _stored() == []  # the file is gone once imported
    assert client.get(preview).status_code == 404


def test_importing_the_same_file_again_changes_nothing(
    org: Any, alice: Any, checkup: AppointmentType
) -> None:
    client = _signed_in(alice)
    content = _clinic_file(org)
    client.post(_uploaded(client, content), {"action": "import"})
    before = (Appointment.objects.count(), Reminder.objects.count(), Contact.objects.count())
    changed_at = sorted(Appointment.objects.values_list("updated_at", flat=True))

    again = client.post(_uploaded(client, content), {"action": "import"})

    assert _said(again).startswith("Imported “tomorrow.csv”: 0 new, 0 updated, 3 unchanged.")
    after = (Appointment.objects.count(), Reminder.objects.count(), Contact.objects.count())
    assert after == before
    assert sorted(Appointment.objects.values_list("updated_at", flat=True)) == changed_at


def test_a_moved_or_cancelled_row_updates_the_appointment_and_its_reminders(
    org: Any, alice: Any, checkup: AppointmentType
) -> None:
    client = _signed_in(alice)
    tomorrow = _day(org, 1).isoformat()
    line = "A1,Ann Lee,2125550110,{day},{at},Dr. Ruiz,Main St,Check-up,,{status}"
    header = f"{HEADER},Status"
    client.post(
        _uploaded(client, _csv(header, line.format(day=tomorrow, at="09:30", status=""))),
        {"action": "import"},
    )
    ann = Appointment.objects.get(external_id="A1")
    ann.status = AppointmentStatus.CONFIRMED  # the patient answered a reminder
    ann.save()

    preview = _uploaded(client, _csv(header, line.format(day=tomorrow, at="11:00", status="")))
    assert "Changes it" in _problem(client.get(preview).content.decode(), 2)
    client.post(preview, {"action": "import"})

    ann.refresh_from_db()
    assert ann.starts_at.astimezone(zoneinfo.ZoneInfo("America/Chicago")).hour == 11
    assert ann.status == AppointmentStatus.BOOKED  # a new time needs a new confirmation
    statuses = sorted(Reminder.objects.filter(appointment=ann).values_list("status", flat=True))
    assert statuses == ["planned", "withdrawn"]

    cancelled = line.format(day=tomorrow, at="11:00", status="Canceled")
    client.post(_uploaded(client, _csv(header, cancelled)), {"action": "import"})

    ann.refresh_from_db()
    assert ann.status == AppointmentStatus.CANCELLED
    assert not Reminder.objects.filter(appointment=ann, status=ReminderStatus.PLANNED).exists()


def test_a_file_without_a_status_column_keeps_a_patients_confirmation(
    org: Any, alice: Any, checkup: AppointmentType
) -> None:
    client = _signed_in(alice)
    row = f"A1,Ann Lee,2125550110,{_day(org, 1).isoformat()},09:30,Dr. Ruiz,Main St,Check-up,"
    client.post(_uploaded(client, _csv(HEADER, row)), {"action": "import"})
    Appointment.objects.filter(external_id="A1").update(status=AppointmentStatus.CONFIRMED)

    again = client.post(_uploaded(client, _csv(HEADER, row)), {"action": "import"})

    assert "0 new, 0 updated, 1 unchanged" in _said(again)
    assert Appointment.objects.get(external_id="A1").status == AppointmentStatus.CONFIRMED


def test_a_spreadsheets_own_ways_are_read(org: Any, alice: Any) -> None:
    """A byte-order mark, semicolons, first and last names, one start column written
    day first, a length, a formula-looking cell; rows without ids are not booked twice."""
    client = _signed_in(alice)
    day = _day(org, 2)
    dmy = f"{day.day:02d}/{day.month:02d}/{day.year}"
    lines = [
        "First name;Last name;Cell phone;Start;Duration (min);Clinic;Doctor",
        f"Ann;Lee;+1 212 555 0110;{dmy} 2:15 PM;45;Main St;'=Dr. Ruiz",
        f"Ben;Ortiz;2125550111;13/01/{day.year + 1} 09:00;20 min;Main St;Dr. Ruiz",
    ]
    content = "\ufeff".encode() + _csv(*lines)

    preview = _uploaded(client, content)
    text = client.get(preview).content.decode()
    assert 'data-problem="true"' not in text
    client.post(preview, {"action": "import"})

    ann = Appointment.objects.get(contact__phone="+12125550110")
    local = ann.starts_at.astimezone(zoneinfo.ZoneInfo("America/Chicago"))
    assert (local.date(), local.hour, local.minute) == (day, 14, 15)
    assert (ann.minutes, ann.location, ann.staff_name) == (45, "Main St", "=Dr. Ruiz")
    assert ann.contact.name == "Ann Lee"
    ben = Appointment.objects.get(contact__phone="+12125550111")
    assert ben.starts_at.astimezone(zoneinfo.ZoneInfo("America/Chicago")).date() == date(
        day.year + 1, 1, 13
    )

    again = client.post(_uploaded(client, content), {"action": "import"})

    assert "0 new, 0 updated, 2 unchanged" in _said(again)
    assert Appointment.objects.count() == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "The submitted file is empty."),
        ("Phone,Date,Time\n2125550110,2030-12-10,9:30\nJosé".encode("latin-1"), "not in the UTF-8"),
        (b"PK\x03\x04rest-of-a-workbook", "Excel workbook"),
        (b"Name,Date,Time\nAnn,2030-12-10,9:30\n", "No column holds the patients' phone"),
        (b"Name,Phone\nAnn,2125550110\n", "No column holds the appointments' dates"),
        (b"Phone,Date,Time\n", "no contacts under it"),
        (b"Phone,Date,Time\n" + b"2125550110,2030-12-10,9:30\n" * 3, "at most 2 can be"),
        (b"Phone,Date,Time\n" + b"x" * 600 + b"\n", "larger than"),
    ],
    ids=["empty", "latin-1", "xlsx", "no-phone", "no-date", "no-rows", "too-many", "too-big"],
)
def test_a_bad_file_gets_a_clear_message_and_nothing_is_kept(
    alice: Any, monkeypatch: pytest.MonkeyPatch, content: bytes, message: str
) -> None:
    monkeypatch.setattr(appointment_import, "MAX_ROWS", 2)
    monkeypatch.setattr("openline.contacts.csvfile.MAX_BYTES", 500)

    response = _upload(_signed_in(alice), content)

    assert response.status_code == 422
    assert message in response.content.decode().replace("&#x27;", "'")
    assert _stored() == []
    assert not AuditEvent.objects.filter(object_type="appointment_import").exists()


def test_the_upload_stays_on_the_server_for_its_organization_and_expires(
    org: Any, alice: Any, charlie: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _signed_in(alice)
    preview = _uploaded(client, _clinic_file(org))
    token = preview.rstrip("/").rsplit("/", 1)[1]
    (kept,) = _stored()
    assert kept == token and len(token) == 32
    assert AppointmentUpload.objects.get().organization_id == org.pk

    intruder = _signed_in(charlie)
    assert intruder.get(preview).status_code == 404
    assert intruder.post(preview, {"action": "import"}).status_code == 404
    assert intruder.post(preview, {"action": "discard"}).status_code == 404
    assert client.get("/appointments/import/" + "A" * 32).status_code == 404
    assert client.get("/appointments/import/..%2F..%2Fsecret_key").status_code == 404
    assert Appointment.objects.count() == 0 and _stored() == [kept]

    monkeypatch.setattr(appointment_import, "EXPIRES_AFTER", timedelta(0))  # time passed

    assert client.get(preview).status_code == 404
    assert _stored() == []


def test_discarding_keeps_nothing(org: Any, alice: Any) -> None:
    client = _signed_in(alice)
    preview = _uploaded(client, _clinic_file(org))

    response = client.post(preview, {"action": "discard"})

    assert response.status_code == 302 and response["Location"] == "/appointments/import"
    assert _stored() == [] and Appointment.objects.count() == 0
    assert AuditEvent.objects.filter(action="appointment_import.discard", actor=alice).exists()


def test_counselors_cannot_import(org: Any, alice: Any, bob: Any) -> None:
    preview = _uploaded(_signed_in(alice), _clinic_file(org))
    counselor = _signed_in(bob)

    assert counselor.get("/appointments/import").status_code == 403
    assert _upload(counselor, _clinic_file(org)).status_code == 403
    assert counselor.get(preview).status_code == 403
    assert counselor.post(preview, {"action": "import"}).status_code == 403
    assert Appointment.objects.count() == 0
    assert Client().get("/appointments/import").status_code == 302  # to sign in


def test_the_upload_form_names_the_columns_it_reads(alice: Any) -> None:
    page = _signed_in(alice).get("/appointments/import")

    assert page.status_code == 200
    text = page.content.decode()
    assert 'enctype="multipart/form-data"' in text and "Time zone" in text


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            ["Appt ID", "Patient ID", "Patient Name", "Mobile", "Appt Date", "Start", "Reason"],
            {"external_id": 0, "name": 2, "phone": 3, "date": 4, "time": 5},
        ),
        (
            ["Phone number", "Start time", "Length", "Site", "Provider name", "TZ", "Status"],
            {
                "phone": 0,
                "datetime": 1,
                "minutes": 2,
                "location": 3,
                "staff_name": 4,
                "time_zone": 5,
                "status": 6,
            },
        ),  # fmt: skip
        (
            ["First name", "Surname", "Tel", "Date", "Time", "Visit type"],
            {"first_name": 0, "last_name": 1, "phone": 2, "date": 3, "time": 4, "type": 5},
        ),
    ],
)
def test_columns_are_guessed_from_their_names(headers: list[str], expected: dict[str, int]) -> None:
    assert columns_guess(headers) == expected


@pytest.mark.parametrize(
    ("day", "at", "expected"),
    [
        ("2030-12-10", "9:30 AM", datetime(2030, 12, 10, 9, 30)),
        ("12/10/2030", "14:00", datetime(2030, 12, 10, 14, 0)),
        ("Wed, Dec 10, 2030", "2 PM", datetime(2030, 12, 10, 14, 0)),
        ("10 December 2030 12:15 am", "", datetime(2030, 12, 10, 0, 15)),
        ("10.12.2030", "0930", datetime(2030, 12, 10, 9, 30)),
        (
            "2030-12-10T09:30:00-05:00",
            "",
            datetime(2030, 12, 10, 14, 30, tzinfo=zoneinfo.ZoneInfo("UTC")),
        ),
    ],
)
def test_dates_and_times_are_read_as_spreadsheets_write_them(
    day: str, at: str, expected: datetime
) -> None:
    assert parse_start(day, at) == expected


@pytest.mark.parametrize(
    ("day", "at", "problem"),
    [
        ("", "9:30", "it has no date"),
        ("2030-02-30", "9:30", "cannot be read"),
        ("2030-12-10", "", "has no time of day"),
        ("2030-12-10", "9", "cannot be read"),
        ("2030-12-10", "13:00 PM", "cannot be read"),
    ],
)
def test_an_unreadable_start_says_why(day: str, at: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_start(day, at)
