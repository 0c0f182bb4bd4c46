"""Appointment reminders with real processes (issue 16, "Reliability"): the scheduler fires
each reminder once with two scheduler processes started by mistake, and across a restart.

Real ``openline scheduler`` and ``openline worker`` processes on the suite's test database
(SQLite file, or PostgreSQL when DATABASE_URL is set), as in test_broadcast_crash; the
scheduler's round is 1 s here. Each test runs without Redis (the embedded profile: no
scheduler lock, so both schedulers really run ``reminders_send_due`` over the same due
reminders, and only ``reminders._send_one``'s claim keeps one from going twice) and with
REDIS_URL (the suite's Redis: the schedulers take turns by the Redis lock, and a killed
one's lock runs out before its successor sends). The sandbox carrier's own record
(SandboxMessage, one row per text it accepted) is counted beside OpenLine's messages.

Without its two conditions on ``status = planned`` (the read and the UPDATE), every
reminder goes twice here on both databases. Without the UPDATE's alone it goes twice on
PostgreSQL, not on SQLite: there each write transaction (BEGIN IMMEDIATE) waits for the other
to end, so the read already sees the first scheduler's claim.

The sending window is per organization and read in each appointment's time zone. The
restart test fixes it at 09:00-17:00 and places its patients in fixed-offset zones
(``Etc/GMT-N``) where it is now about 13:00 (open) or about 01:00 (closed), whatever the
time of day the test runs at."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from conftest import redis_for_tests, shared_database_url, wait_for
from openline.campaigns.tests.test_broadcast_crash import Processes

SCHEDULER_SECONDS = 1
PATIENTS = 30  # two reminders each, both due at once: a round of 60 sends
LOCK_KEY = "openline:scheduler-lock"  # runtime.scheduler's
TEMPLATES = {
    "days": "Hi {first_name}, your check-up is {date} at {time}.",
    "hours": "Hi {first_name}, see you at {time} today.",
}


def _phone(i: int) -> str:
    # 555-1000 onwards: clear of the sandbox's test suffixes (0666 opted out, 0999).
    return f"+1212555{1000 + i}"


@pytest.fixture(params=["without-redis", "with-redis"])
def redis_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """'' (the embedded profile), or the suite's Redis with no scheduler lock left in it."""
    if request.param == "without-redis":
        yield ""
        return
    import redis
    from django.conf import settings

    url = settings.REDIS_URL or redis_for_tests()  # skips without one, except in CI
    client = redis.Redis.from_url(url)
    client.delete(LOCK_KEY)
    try:
        yield url
    finally:
        client.delete(LOCK_KEY)
        client.close()


@pytest.fixture
def processes(tmp_path: Path, transactional_db: None, redis_url: str) -> Iterator[Processes]:
    from django.conf import settings

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.pop("OPENLINE_TESTING", None)
    env.update(
        OPENLINE_VAR_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="openline.settings",
        DATABASE_URL=shared_database_url(),
        SECRET_KEY=settings.SECRET_KEY,  # one deployment: one secret
        OPENLINE_SCHEDULER_INTERVAL_SECONDS=str(SCHEDULER_SECONDS),
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    running = Processes(tmp_path, env)
    try:
        yield running
    finally:
        running.stop_all()


@pytest.fixture
def clinic(org: Any, alice: Any, sandbox_number: Any) -> Any:
    """A visit type with the issue's two rules, limits that let both go the same day, and
    opted-in patients."""
    from openline.campaigns.models import AppointmentType, ReminderRule, ReminderSettings
    from openline.contacts.models import ConsentSource
    from openline.contacts.services.consent import consent_record_opt_in

    ReminderSettings.objects.create(organization=org, max_per_day=5, max_per_week=10)
    checkup = AppointmentType.objects.create(organization=org, name="Check-up")
    for kw in ({"days_before": 2, "at_time": clock_time(10, 0)}, {"minutes_before": 120}):
        ReminderRule.objects.create(
            organization=org,
            appointment_type=checkup,
            template=TEMPLATES["days" if "days_before" in kw else "hours"],
            **kw,
        )
    for i in range(PATIENTS):
        consent_record_opt_in(
            organization_id=org.pk, phone=_phone(i), source=ConsentSource.STAFF,
            evidence="patient intake form", actor_id=alice.pk,
        )  # fmt: skip
    return checkup


def _book(org: Any, i: int, zone: str, days: int = 3) -> Any:
    """Patient i's check-up in ``days`` days at 15:00 in ``zone``, saved as the API saves
    it (its two reminders planned for later)."""
    from openline.campaigns.appointments import AppointmentData, appointment_save

    day = timezone.now().astimezone(ZoneInfo(zone)).date() + timedelta(days=days)
    data = AppointmentData(
        phone=_phone(i), starts_at=datetime.combine(day, clock_time(15, 0)), time_zone=zone,
        location="Main St clinic", type_name="Check-up", external_id=f"EHR-{i}",
        name=f"Pat{i} Doe",
    )  # fmt: skip
    return appointment_save(organization_id=org.pk, data=data)[0]


def _scheduling(processes: Processes, name: str) -> Callable[[], bool]:
    """The process's scheduler thread has started (Django set up, the loop running)."""

    def check() -> bool:
        processes.check_alive()
        pid = processes.running[name].pid
        return len(list(Path(f"/proc/{pid}/task").iterdir())) >= 2

    return check


def _texts() -> tuple[Counter[str], Counter[tuple[str, str]], Counter[str]]:
    """OpenLine's reminder texts per phone and per (phone, text), and the carrier's per
    phone."""
    from openline.messaging.models import Message, MessageKind
    from openline.providers.sandbox.models import SandboxMessage

    sent = Message.objects.filter(kind=MessageKind.REMINDER).values_list(
        "conversation__contact__phone", "body"
    )
    carrier = SandboxMessage.objects.values_list("to", flat=True)
    return Counter(p for p, _ in sent), Counter(sent), Counter(carrier)


def _story(processes: Processes) -> str:
    """What the database and the carrier say now, briefly, and the processes' logs."""
    from django.db.models import Count

    from openline.campaigns.models import Reminder

    statuses = dict(Reminder.objects.values_list("status").annotate(n=Count("pk")).order_by())
    per_phone, per_text, carrier = _texts()
    return (
        f"reminders: {statuses}\n"
        f"phones by reminder texts: {dict(Counter(per_phone.values()))}, by the carrier's:"
        f" {dict(Counter(carrier.values()))}; texts sent more than once:"
        f" {sum(1 for n in per_text.values() if n > 1)}\n{processes.tails()}"
    )


def _until(processes: Processes, predicate: Callable[[], Any], timeout: float, what: str) -> None:
    def check() -> Any:
        processes.check_alive()
        return predicate()

    try:
        wait_for(check, timeout, what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_story(processes)}") from None


def _rounds_passed(rounds: int) -> Callable[[], bool]:
    """A predicate that holds once ``rounds`` scheduler rounds have passed from now."""
    end = time.monotonic() + rounds * SCHEDULER_SECONDS + 0.5
    return lambda: time.monotonic() >= end


def _no_failed_tasks() -> None:
    from django_tasks_db.models import DBTaskResult

    failed = DBTaskResult.objects.filter(status="FAILED")
    assert not failed.exists(), list(failed.values_list("task_path", "traceback"))


def test_two_schedulers_started_at_once_send_each_reminder_once(
    processes: Processes, org: Any, clinic: Any, redis_url: str
) -> None:
    from openline.campaigns.models import Reminder, ReminderStatus, SendingWindow
    from openline.providers.sandbox.models import SandboxMessage

    SendingWindow.objects.create(
        organization=org, start=clock_time(0, 0), end=clock_time(23, 59, 59, 999_999)
    )
    for i in range(PATIENTS):
        _book(org, i, "America/New_York")
    reminders = Reminder.objects.filter(appointment__organization=org)
    assert reminders.filter(status=ReminderStatus.PLANNED).count() == 2 * PATIENTS

    processes.start("worker", "worker")
    for name in ("scheduler-a", "scheduler-b"):
        processes.start(name, "scheduler")
    for name in ("scheduler-a", "scheduler-b"):
        _until(processes, _scheduling(processes, name), 60, f"{name} to start its rounds")
    # Every reminder due at once: both schedulers find the same 60 in their next rounds.
    reminders.update(due_at=timezone.now())
    _until(
        processes,
        lambda: (
            SandboxMessage.objects.count() >= 2 * PATIENTS
            and not reminders.filter(status=ReminderStatus.PLANNED).exists()
        ),
        90,
        "every reminder sent and handed to the carrier",
    )
    # A few more rounds of both: a late second send would show now.
    carried = SandboxMessage.objects.count()
    _until(processes, _rounds_passed(3), 30, "three more scheduler rounds")
    processes.check_alive()
    story = _story(processes)

    assert set(reminders.values_list("status", flat=True)) == {ReminderStatus.SENT}, story
    linked = list(reminders.values_list("message_id", flat=True))
    assert None not in linked and len(set(linked)) == 2 * PATIENTS, story
    per_phone, per_text, carrier = _texts()
    patients = {_phone(i) for i in range(PATIENTS)}
    assert set(per_phone) == patients and set(per_phone.values()) == {2}, story
    assert len(per_text) == 2 * PATIENTS and set(per_text.values()) == {1}, story
    assert set(carrier) == patients and set(carrier.values()) == {2}, story
    assert SandboxMessage.objects.count() == carried == 2 * PATIENTS, story
    _no_failed_tasks()


def _etc_zone(local_hour: int) -> str:
    """A fixed-offset zone where it is now ``local_hour`` o'clock (the minutes as in UTC)."""
    offset = (local_hour - timezone.now().astimezone(ZoneInfo("UTC")).hour) % 24
    offset = offset - 24 if offset > 14 else offset  # Etc/GMT-14 .. Etc/GMT+12
    # POSIX signs: Etc/GMT-5 is five hours *ahead* of UTC.
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


def test_after_a_restart_a_reminder_due_meanwhile_goes_once_or_is_missed(
    processes: Processes, org: Any, clinic: Any, redis_url: str
) -> None:
    from openline.campaigns.models import Appointment, Reminder, ReminderStatus, SendingWindow
    from openline.campaigns.reminders import LATE_AFTER
    from openline.providers.sandbox.models import SandboxMessage

    SendingWindow.objects.create(organization=org, start=clock_time(9, 0), end=clock_time(17, 0))
    open_zone, closed_zone = _etc_zone(13), _etc_zone(1)
    window = (clock_time(9, 0), clock_time(17, 0))
    assert window[0] <= timezone.now().astimezone(ZoneInfo(open_zone)).time() < window[1]
    now_there = timezone.now().astimezone(ZoneInfo(closed_zone)).time()
    assert not window[0] <= now_there < window[1]

    def first_reminder(appointment: Any) -> Any:
        return Reminder.objects.filter(appointment=appointment, rule__days_before=2).get()

    # Before the restart: one reminder goes out while the scheduler runs.
    sent_before = first_reminder(_book(org, 0, open_zone))
    processes.start("worker", "worker")
    processes.start("scheduler-1", "scheduler")
    _until(processes, _scheduling(processes, "scheduler-1"), 60, "the scheduler to start")
    Reminder.objects.filter(pk=sent_before.pk).update(due_at=timezone.now())
    _until(
        processes,
        lambda: SandboxMessage.objects.filter(to=_phone(0)).exists(),
        30,
        "the first reminder handed to the carrier",
    )
    processes.kill("scheduler-1")

    # While no scheduler runs, three reminders pass their time by more than LATE_AFTER.
    late = timezone.now() - LATE_AFTER - timedelta(minutes=30)
    ahead_open = first_reminder(_book(org, 1, open_zone))  # goes out on start
    ahead_closed = first_reminder(_book(org, 2, closed_zone))  # window shut: missed
    over = _book(org, 3, open_zone)  # the visit began 10 minutes ago: missed
    started = timezone.now() - timedelta(minutes=10)
    Appointment.objects.filter(pk=over.pk).update(starts_at=started)
    over_reminder = first_reminder(over)
    Reminder.objects.filter(pk=over_reminder.pk).update(for_start=started)
    Reminder.objects.filter(pk__in=[ahead_open.pk, ahead_closed.pk, over_reminder.pk]).update(
        due_at=late
    )

    processes.start("scheduler-2", "scheduler")
    watched = Reminder.objects.filter(pk__in=[ahead_open.pk, ahead_closed.pk, over_reminder.pk])
    _until(
        processes,
        lambda: (
            not watched.filter(status=ReminderStatus.PLANNED).exists()
            and SandboxMessage.objects.filter(to=_phone(1)).exists()
        ),
        60,
        "the restarted scheduler to settle the late reminders",
    )
    _until(processes, _rounds_passed(3), 30, "three more scheduler rounds")
    processes.check_alive()
    story = _story(processes)

    statuses = dict(
        Reminder.objects.filter(
            pk__in=[sent_before.pk, ahead_open.pk, ahead_closed.pk, over_reminder.pk]
        ).values_list("pk", "status")
    )
    assert statuses == {
        sent_before.pk: ReminderStatus.SENT,
        ahead_open.pk: ReminderStatus.SENT,
        ahead_closed.pk: ReminderStatus.MISSED,
        over_reminder.pk: ReminderStatus.MISSED,
    }, story
    missed = Reminder.objects.filter(status=ReminderStatus.MISSED)
    assert set(missed.values_list("reason", flat=True)) == {"due while OpenLine was not running"}
    per_phone, per_text, carrier = _texts()
    assert per_phone == {_phone(0): 1, _phone(1): 1}, story
    assert set(per_text.values()) == {1}, story
    assert carrier == {_phone(0): 1, _phone(1): 1}, story
    # Nothing else is due: every other reminder is still planned for later.
    others = Reminder.objects.exclude(pk__in=list(statuses))
    assert set(others.values_list("status", flat=True)) == {ReminderStatus.PLANNED}, story
    assert not others.filter(due_at__lte=timezone.now()).exists()
    _no_failed_tasks()
