"""Appointment reminders in Chromium (issue 16), as a clinic runs them: an admin imports
tomorrow's list from a CSV file (the preview names the row whose phone is wrong, the others
are imported) and lands on the day view with four reminders planned; the reminders go out
and reach four phones; one patient confirms with "Y", one cancels with "can't make it" (and
is not unsubscribed by it), one asks a question that waits in a counselor's queue with the
appointment beside it, one texts STOP (opted out, the appointment left as it was); the day
view then shows each state, and filters by it.

The real ASGI app, the inbound processor and the task worker run live; the test drives the
browsers. The live server does not run the scheduler (its loop sends due reminders), so the
test sends them itself with ``reminders_send_due()``, as the scheduler would, and the live
worker hands them to the sandbox carrier. The rule is "two days before, sent late if booked
late": tomorrow's visits were booked after that time, so their reminders are planned for
now, and the sending window is open all day, so the time of day does not matter.

Screenshots go to test-artifacts/<the test's name>/."""

from __future__ import annotations

import os
import zoneinfo
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from conftest import ARTIFACTS, wait_for
from openline.campaigns.tests import browsing

pytestmark = pytest.mark.browser

LIVE = 5_000  # ms: what reaches a screen (socket, the simulator's 1 s poll), on a slow machine
Page = Any
Shot = Callable[[Page, str], None]

CLINIC = "Elm Street clinic"
PROVIDER = "Dr. Okafor"
RULE = "Hi {first_name}, your check-up at {location} is on {date} at {time}."
HINT = "Reply C to confirm, X to cancel, R to reschedule. STOP ends all texts."
QUESTION = "Is there parking nearby?"
# The four patients, the order of the file: who they are and when they come tomorrow.
PATIENTS = {
    "rosa": ("Rosa Mendes", "+12025550171", time(9, 0)),  # texts "Y"
    "omar": ("Omar Haddad", "+12025550172", time(9, 30)),  # texts "can't make it"
    "lena": ("Lena Brooks", "+12025550173", time(10, 0)),  # asks a question
    "theo": ("Theo Wagner", "+12025550174", time(10, 30)),  # texts STOP
}


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Shot:
    """Full-page screenshots into test-artifacts/<test name>/<name>.png."""
    folder = os.path.join(ARTIFACTS, request.node.name)
    os.makedirs(folder, exist_ok=True)

    def take(page: Page, name: str) -> None:
        page.screenshot(path=os.path.join(folder, f"{name}.png"), full_page=True)

    return take


@pytest.fixture
def live(
    browser: Any,
    live_asgi: str,
    background_workers: None,
    alice: Any,
    bob: Any,
    caplog: pytest.LogCaptureFixture,
) -> Iterator[dict[str, Any]]:
    """Signed-in console pages and phone simulators; no server errors meanwhile."""

    def sign_in(email: str, password: str) -> Page:
        return browsing.sign_in(browser, live_asgi, email, password)

    def phone(number: Any, sender: str) -> Page:
        return browsing.phone(browser, live_asgi, number, sender)

    yield {"sign_in": sign_in, "phone": phone, "url": live_asgi}
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert not errors, errors


@pytest.fixture
def clinic(org: Any, alice: Any, sandbox_number: Any) -> Any:
    """A "Check-up" with one reminder two days before, sent late for late bookings; texts
    may go at any hour; the four patients opted in on their intake form (reminders go only
    to people who may be texted). Their contacts are made by the import."""
    from openline.campaigns.models import AppointmentType, ReminderRule, SendingWindow
    from openline.contacts.models import ConsentSource
    from openline.contacts.services.consent import consent_record_opt_in

    SendingWindow.objects.create(organization=org, start=time(0, 0), end=time(23, 59, 59, 999_999))
    checkup = AppointmentType.objects.create(organization=org, name="Check-up")
    ReminderRule.objects.create(
        organization=org, appointment_type=checkup, minutes_before=2 * 24 * 60,
        template=RULE, send_when_booked_late=True,
    )  # fmt: skip
    for _, phone, _ in PATIENTS.values():
        consent_record_opt_in(
            organization_id=org.pk, phone=phone, source=ConsentSource.STAFF,
            evidence="signed the intake form", actor_id=alice.pk,
        )  # fmt: skip
    return checkup


def _tomorrow(org: Any) -> date:
    return timezone.now().astimezone(zoneinfo.ZoneInfo(org.timezone)).date() + timedelta(days=1)


def _csv(path: Path, day: date) -> Path:
    """Tomorrow's list as a scheduling system exports it, with one phone number mistyped."""
    lines = ["Appointment ID,Patient,Phone,Date,Time,Provider,Location,Type"]
    rows = [(name, phone, at) for name, phone, at in PATIENTS.values()]
    rows.insert(2, ("Max Fell", "555-01", time(9, 45)))  # row 4: no phone number
    for index, (name, phone, at) in enumerate(rows, 1):
        national = f"({phone[2:5]}) {phone[5:8]}-{phone[8:]}" if phone.startswith("+1") else phone
        lines.append(
            f"EHR-{index:03d},{name},{national},{day:%m/%d/%Y},{at:%I:%M %p},"
            f"{PROVIDER},{CLINIC},Check-up"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _when(day: date, at: time) -> tuple[str, str]:
    """A visit's day and time as the texts write them: ("Fri Jan 10", "9:00 AM")."""
    moment = datetime.combine(day, at)
    return f"{moment:%a} {moment:%b} {moment.day}", moment.strftime("%I:%M %p").lstrip("0")


def _row(page: Page, name: str) -> Any:
    return page.locator("table.appointments tbody tr", has_text=name)


def _text(phone: Page, body: str) -> None:
    phone.fill("#body", body)
    phone.click("#send")


def test_staff_import_tomorrow_and_the_day_view_shows_each_patients_answer(
    live: dict[str, Any],
    org: Any,
    bob: Any,
    clinic: Any,
    sandbox_number: Any,
    put_online: Callable[..., Any],
    shot: Shot,
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    from openline.campaigns.models import Appointment, AppointmentStatus, Reminder
    from openline.campaigns.reminders import reminders_send_due
    from openline.contacts.models import ConsentEvent, ConsentKind
    from openline.contacts.selectors import consent_state
    from openline.messaging.models import Message, MessageKind, MessageStatus
    from openline.providers.sandbox.models import SandboxMessage

    url = live["url"]
    day = _tomorrow(org)
    put_online(sandbox_number, bob)  # the counselor who answers the queue is on shift
    admin = live["sign_in"]("alice@example.org", "alice-pass-1")

    # 1. Import tomorrow's list: the preview reads five rows, four ready and one refused
    # with its reason; nothing is saved before the admin confirms.
    admin.goto(f"{url}/appointments/")
    admin.get_by_role("link", name="Import").click()
    expect(admin.locator("h1")).to_have_text("Import appointments")
    admin.get_by_label("CSV file").set_input_files(_csv(tmp_path / "tomorrow.csv", day))
    admin.get_by_role("button", name="Upload and check").click()
    expect(admin.locator("h1")).to_have_text("Import of “tomorrow.csv”")
    for count, value in (("rows", "5"), ("valid", "4"), ("new", "4"), ("errors", "1")):
        expect(admin.locator(f"dd[data-count={count}]")).to_have_text(value)
    bad = admin.locator("table.import-rows tr[data-problem=true]")
    expect(bad).to_have_count(1)
    expect(bad).to_have_attribute("data-row", "4")
    expect(bad).to_contain_text("Max Fell")
    expect(bad).to_contain_text("Not imported: Phone: '555-01' is not a valid phone number")
    first = admin.locator("table.import-rows tr[data-row='2']")
    expect(first).to_contain_text("Rosa Mendes")
    expect(first).to_contain_text(f"{day:%a} {day.day} {day:%b %Y}, 9:00 AM")
    expect(first).to_contain_text(PROVIDER)
    expect(first.locator("td").last).to_have_text("New")
    assert not Appointment.objects.exists()
    shot(admin, "01-import-preview")

    # 2. Import the valid rows: the day view of tomorrow, each reminder planned.
    admin.get_by_role("button", name="Import 4 valid rows").click()
    expect(admin).to_have_url(f"{url}/appointments/?date={day.isoformat()}")
    expect(admin.locator("body")).to_contain_text(
        "Imported “tomorrow.csv”: 4 new, 0 updated, 0 unchanged. 1 row(s) not imported "
        "(row 4: Phone: '555-01' is not a valid phone number)."
    )
    expect(admin.locator("h1 time")).to_have_attribute("datetime", day.isoformat())
    expect(admin.locator(".location-group h2")).to_have_text(f"{CLINIC} (4)")
    expect(admin.locator("dd[data-count=total]")).to_have_text("4")
    expect(admin.locator("dd[data-count=no_answer]")).to_have_text("4")
    for name, _, at in PATIENTS.values():
        row = _row(admin, name)
        expect(row).to_have_attribute("data-status", "booked")
        expect(row.locator("td").first).to_contain_text(at.strftime("%I:%M %p").lstrip("0"))
        expect(row.locator("[data-reminder]")).to_have_attribute("data-reminder", "planned")
        expect(row.locator("[data-reply]")).to_have_text("No answer")
    expect(admin.locator("table.appointments")).not_to_contain_text("Max Fell")
    shot(admin, "02-day-view-before")
    visits = {
        key: Appointment.objects.get(contact__phone=phone)
        for key, (_, phone, _) in PATIENTS.items()
    }
    assert {v.status for v in visits.values()} == {AppointmentStatus.BOOKED}

    # 3. The reminders go out (the scheduler's call) and reach the four phones.
    phones = {key: live["phone"](sandbox_number, phone) for key, (_, phone, _) in PATIENTS.items()}
    assert reminders_send_due() == 4
    for key, (name, _, at) in PATIENTS.items():
        on_the_day, at_time = _when(day, at)
        first_name = name.split()[0]
        reminder = phones[key].locator(".bubble.received")
        expect(reminder).to_have_text(
            f"Hi {first_name}, your check-up at {CLINIC} is on {on_the_day} at {at_time}. {HINT}",
            timeout=LIVE,
        )
        expect(reminder).to_contain_text("Reply C to confirm")
    shot(phones["rosa"], "03-phone-reminder")

    # 4. The answers. Rosa confirms with "Y".
    rosa_day, rosa_time = _when(day, PATIENTS["rosa"][2])
    _text(phones["rosa"], "Y")
    expect(phones["rosa"].locator(".bubble.received").last).to_have_text(
        f"Thanks, you're confirmed for {rosa_day} at {rosa_time}. See you then!", timeout=LIVE
    )
    shot(phones["rosa"], "04-confirmed")

    # Omar can't make it: his visit is cancelled, and he is told how to stop all texts
    # (cancelling a visit does not unsubscribe him).
    omar_day, omar_time = _when(day, PATIENTS["omar"][2])
    _text(phones["omar"], "can't make it")
    expect(phones["omar"].locator(".bubble.received").last).to_have_text(
        f"Your appointment on {omar_day} at {omar_time} is cancelled. "
        "To stop all texts from us, reply STOP.",
        timeout=LIVE,
    )
    shot(phones["omar"], "05-cancelled")

    # Lena asks a question: no answer to the reminder, so it waits for a counselor, who
    # sees her appointment beside the conversation.
    counselor = live["sign_in"]("bob@example.org", "bob-pass-12")
    _text(phones["lena"], QUESTION)
    waiting = counselor.locator("#queue .queue-row", has_text="Lena Brooks")
    expect(waiting).to_contain_text(QUESTION, timeout=LIVE)
    expect(waiting).to_contain_text("Waiting")
    expect(waiting).not_to_contain_text("After hours")
    for name in ("Rosa Mendes", "Omar Haddad"):  # their answers were handled
        expect(counselor.locator("#queue .queue-row", has_text=name)).to_have_count(0)
    waiting.locator("a.conv-row").click()
    pane = counselor.locator(".pane")
    expect(pane.locator(".thread")).to_contain_text(QUESTION, timeout=LIVE)
    beside = pane.locator("[data-appointments]")
    expect(beside.locator(f"[data-appointment='{visits['lena'].pk}']")).to_have_count(1)
    for what in (CLINIC, PROVIDER, "Booked", "Check-up"):
        expect(beside).to_contain_text(what)
    shot(counselor, "06-question-in-queue")

    # Theo texts STOP: opted out, confirmed once; his appointment is left as it was.
    _text(phones["theo"], "STOP")
    theo_received = phones["theo"].locator(".bubble.received")
    expect(theo_received.last).to_contain_text("you're unsubscribed", timeout=LIVE)
    expect(theo_received).to_have_count(2)  # the reminder, then the confirmation
    shot(phones["theo"], "07-stop")

    # 5. The day view shows each state; every reminder was delivered.
    reminder_texts = Message.objects.filter(kind=MessageKind.REMINDER)
    wait_for(
        lambda: not reminder_texts.exclude(status=MessageStatus.DELIVERED).exists(),
        what="the reminders' delivery receipts",
    )
    admin.goto(f"{url}/appointments/?date={day.isoformat()}")
    expected = {
        "rosa": ("confirmed", "Confirmed", "confirmed", "Confirmed"),
        "omar": ("cancelled", "Cancelled", "cancelled", "Cancelled"),
        "lena": ("booked", "Booked", "no_answer", "No answer"),
        "theo": ("booked", "Booked", "no_answer", "No answer"),
    }
    for key, (status, status_label, reply, reply_label) in expected.items():
        row = _row(admin, PATIENTS[key][0])
        expect(row).to_have_attribute("data-status", status)
        expect(row.locator(".badge.appt-" + status)).to_have_text(status_label)
        expect(row.locator("[data-reply]")).to_have_attribute("data-reply", reply)
        expect(row.locator("[data-reply]")).to_have_text(reply_label)
        expect(row.locator("[data-reminder]")).to_have_attribute("data-reminder", "delivered")
    for state, shown in (
        ("confirmed", "1"),
        ("cancelled", "1"),
        ("no_answer", "2"),
        ("total", "4"),
    ):
        expect(admin.locator(f"dd[data-count={state}]")).to_have_text(shown)
    shot(admin, "08-day-view-after")

    # Filtered by state, from the page's own controls and links.
    admin.get_by_label("State", exact=True).select_option(label="Confirmed")
    admin.get_by_role("button", name="Show").click()
    expect(admin).to_have_url(
        f"{url}/appointments/?date={day.isoformat()}&location=&state=confirmed"
    )
    rows = admin.locator("table.appointments tbody tr")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("Rosa Mendes")
    admin.locator("dl.day-counts").get_by_role("link", name="Cancelled").click()
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("Omar Haddad")
    admin.locator("dl.day-counts").get_by_role("link", name="No answer").click()
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Lena Brooks")
    expect(rows.nth(1)).to_contain_text("Theo Wagner")
    shot(admin, "09-day-view-no-answer")
    # The day view does not say who opted out; Theo's contact page does.
    _row(admin, "Theo Wagner").get_by_role("link", name="Theo Wagner").click()
    expect(admin.locator("h1")).to_have_text("Theo Wagner")
    expect(admin.locator(".consent-panel")).to_have_attribute("data-consent", "opted_out")
    shot(admin, "10-stop-contact-page")

    # 6. The records: statuses, the consent ledger, one reminder text per patient.
    for visit in visits.values():
        visit.refresh_from_db()
    assert (visits["rosa"].status, visits["rosa"].answer) == ("confirmed", "confirmed")
    assert (visits["omar"].status, visits["omar"].answer) == ("cancelled", "cancelled")
    assert (visits["lena"].status, visits["lena"].answer) == ("booked", "")
    assert (visits["theo"].status, visits["theo"].answer) == ("booked", "")

    def opted(key: str) -> str:
        return consent_state(organization_id=org.pk, phone=PATIENTS[key][1]).status

    assert {key: opted(key) for key in PATIENTS} == {
        "rosa": "opted_in", "omar": "opted_in", "lena": "opted_in", "theo": "opted_out",
    }  # fmt: skip
    opt_outs = ConsentEvent.objects.filter(kind=ConsentKind.OPT_OUT)
    assert list(opt_outs.values_list("phone", flat=True)) == [PATIENTS["theo"][1]]

    for key, visit in visits.items():
        reminders = Reminder.objects.filter(appointment=visit)
        assert [r.status for r in reminders] == ["sent"], key
        assert reminder_texts.filter(conversation__contact=visit.contact).count() == 1, key
        carried = SandboxMessage.objects.filter(to=visit.contact.phone, body__contains=HINT)
        assert carried.count() == 1, key
