"""A broadcast survives ``kill -9`` of its worker (issue 15): nobody is texted twice, nobody
is skipped, and the credits settle.

Real processes on the suite's test database (SQLite file, or PostgreSQL when DATABASE_URL
is set), as in test_scaled_out: an ``openline scheduler`` and an ``openline worker``; the
worker is SIGKILLed (its whole process group) and replaced by a fresh one, at least twice.
A broadcast to 300 people through a sandbox number at 20 segments a second takes the
runner about fifteen short turns (it keeps only about 2 s of texts waiting for dispatch),
so the kills land part-way:

1. early, in the middle of a runner's turn (a moment after it marked the turn started,
   while it claims and queues a chunk of recipients): the chunk's transaction dies with
   the process, and so does the runner's chain of turns, until the scheduler restarts a
   runner that has not turned for OPENLINE_BROADCAST_STALLED_SECONDS (30 s; 8 s here,
   with a 2 s scheduler round, waited for in real time). A kill that lands elsewhere (a
   dispatch, the carrier's report) is a crash too, and the next turn is tried, up to five;
2. late, once every recipient is queued, while the worker dispatches the texts and the
   sandbox carrier reports their statuses.

Right after each kill the database must already be consistent: every queued recipient
has its message and every broadcast message belongs to a queued recipient (the recipient
row is the unit of work). What a dead worker had in hand (a dispatch task's enqueue that
never happened, a text claimed for sending but not yet answered) is the reconciliation
sweep's job, which looks only LOST_AFTER (2 min) and STUCK_AFTER (5 min) later: each time
the processes have nothing left to do and texts are still open, the test runs a sweep as
the scheduler would run it that much later (as test_send_once_crash does), and lets the
worker carry on. A text nothing can move on any more fails the test, with what the killed
workers left behind for it.

Then, from the database and from the sandbox carrier's own record (one SandboxMessage per
text it accepted): every eligible person has exactly one broadcast message and the
carrier took exactly one text for each, nobody else got anything, and the reservation is
settled with a debit of exactly the texts the carrier took. Nothing is mocked."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, shared_database_url, wait_for

PEOPLE = 300  # eligible recipients
RATE = 20.0  # the sandbox number's segments per second: the runner queues ~20 a turn
BODY = "Hi {first_name}, the pool is closed today."
CREDITS = 1000
# The runner restarts STALLED_SECONDS after its last turn, at the scheduler's next round.
STALLED_SECONDS, SCHEDULER_SECONDS = 8, 2
RESTART_SECONDS = STALLED_SECONDS + SCHEDULER_SECONDS + 20
# How long after a turn starts the early kill comes, a different moment each try.
EARLY_KILL_DELAYS = (0.05, 0.0, 0.1, 0.02, 0.15, 0.05, 0.0, 0.1)


class Processes:
    """``openline`` commands started in their own process groups, logging to files."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.tmp_path, self.env = tmp_path, env
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}

    def start(self, name: str, *args: str) -> None:
        self.logs[name] = self.tmp_path / f"{name}.log"
        with self.logs[name].open("wb") as log:
            self.running[name] = subprocess.Popen(  # noqa: S603 (our own command)
                [sys.executable, "-m", "openline.runtime.cli", *args],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self, name: str) -> None:
        """``kill -9``, to its whole process group (any children die with it)."""
        proc = self.running.pop(name)
        assert proc.poll() is None, f"{name} had ended before it was killed\n{self.tails()}"
        os.killpg(proc.pid, signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL

    def check_alive(self) -> None:
        for name, proc in self.running.items():
            assert proc.poll() is None, f"{name} ended on its own\n{self.tails()}"

    def stop_all(self) -> None:
        for proc in self.running.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        for proc in self.running.values():
            proc.wait(10)
        self.running.clear()

    def tails(self) -> str:
        return "\n".join(
            f"--- {name} ---\n{path.read_text(errors='replace')[-3000:]}"
            for name, path in self.logs.items()
            if path.exists()
        )


@pytest.fixture
def processes(tmp_path: Path, transactional_db: None) -> Iterator[Processes]:
    from django.conf import settings

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.pop("OPENLINE_TESTING", None)
    env.update(
        OPENLINE_VAR_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="openline.settings",
        DATABASE_URL=shared_database_url(),
        # One deployment: one secret (sandbox phone tokens, field encryption).
        SECRET_KEY=settings.SECRET_KEY,
        OPENLINE_BROADCAST_STALLED_SECONDS=str(STALLED_SECONDS),
        OPENLINE_SCHEDULER_INTERVAL_SECONDS=str(SCHEDULER_SECONDS),
        OPENLINE_SANDBOX_RING_SECONDS="0",  # a call is answered as soon as it rings
    )
    running = Processes(tmp_path, env)
    try:
        yield running
    finally:
        running.stop_all()


def _audience(org: Any, admin: Any, people: int = PEOPLE, **kw: Any) -> tuple[list[str], list[str]]:
    """``people`` opted-in people in New York, plus a few nobody may text or call: never
    opted in, or opted in and then out. Returns (eligible phones, ineligible phones)."""
    from openline.contacts.models import ConsentSource
    from openline.contacts.services.consent import consent_record_opt_in, consent_record_opt_out
    from openline.contacts.services.contacts import contact_create

    never = {i for i in range(people + 11) if i % 40 == 7}  # 8 never opted in (300 people)
    stopped = {11, 111, 211} & set(range(people))  # 3 opted in, then texted STOP
    eligible: list[str] = []
    ineligible: list[str] = []
    for i in range(people + len(never) + len(stopped)):
        # 555-1000 onwards: clear of the sandbox's test suffixes (0666 opted out, 0999).
        phone = f"+1212555{1000 + i}"
        contact = contact_create(organization_id=org.pk, phone=phone, name=f"P{i}", **kw)
        if i not in never:
            consent_record_opt_in(
                organization_id=org.pk,
                phone=contact.phone,
                source=ConsentSource.STAFF,
                evidence="signed the class registration form",
                actor_id=admin.pk,
            )
        if i in stopped:
            consent_record_opt_out(
                organization_id=org.pk,
                phone=contact.phone,
                source=ConsentSource.KEYWORD,
                text="STOP",
            )
        (ineligible if i in never | stopped else eligible).append(contact.phone)
    return eligible, ineligible


def _counts(qs: Any, field: str) -> dict[str, int]:
    from django.db.models import Count

    return dict(qs.values_list(field).annotate(n=Count("pk")).order_by())


def _task_counts() -> list[tuple[str, str, int]]:
    from django.db.models import Count
    from django_tasks_db.models import DBTaskResult

    return sorted(
        (path.rsplit(".", 1)[-1], status, n)
        for path, status, n in DBTaskResult.objects.values_list("task_path", "status")
        .annotate(n=Count("pk"))
        .order_by()
    )


def _snapshot(broadcast_id: int) -> dict[str, Any]:
    """What the database says now, for progress checks and failure messages."""
    from openline.campaigns.models import Broadcast, BroadcastRecipient
    from openline.messaging.models import Message, MessageKind
    from openline.providers.sandbox.models import SandboxMessage

    broadcast = Broadcast.objects.get(pk=broadcast_id)
    return {
        "broadcast": broadcast.status,
        "last_run_at": broadcast.last_run_at,
        "recipients": _counts(
            BroadcastRecipient.objects.filter(broadcast_id=broadcast_id), "status"
        ),
        "messages": _counts(Message.objects.filter(kind=MessageKind.BULK), "status"),
        "carrier": SandboxMessage.objects.count(),
        "tasks": _task_counts(),
    }


def _interrupted(dead: set[str]) -> list[str]:
    """The tasks left RUNNING by the worker just killed (not by one killed before, whose
    ``dead`` ids it adds to): what it had in hand. Nothing takes them up again."""
    from django_tasks_db.models import DBTaskResult

    found = []
    for pk, path, args in DBTaskResult.objects.filter(status="RUNNING").values_list(
        "pk", "task_path", "args_kwargs"
    ):
        if str(pk) not in dead:
            dead.add(str(pk))
            found.append(f"{path.rsplit('.', 1)[-1]}{tuple(args['args'])}")
    return found


def _runner_died(interrupted: list[str]) -> bool:
    """The kill ended a runner's turn before it enqueued the next one: the broadcast has
    no runner until the scheduler restarts it."""
    from django_tasks_db.models import DBTaskResult

    path = "openline.campaigns.tasks.run_broadcast"
    waiting = DBTaskResult.objects.filter(task_path=path, status="READY").exists()
    return any(task.startswith("run_broadcast") for task in interrupted) and not waiting


def _assert_consistent(broadcast_id: int, unit: str = "message") -> None:
    """Each recipient is pending with no ``unit`` (its message, or its call), or queued with
    exactly its own."""
    from openline.campaigns.models import BroadcastRecipient, RecipientStatus
    from openline.messaging.models import Call, Message, MessageKind

    recipients = BroadcastRecipient.objects.filter(broadcast_id=broadcast_id)
    statuses = set(recipients.values_list("status", flat=True))
    assert statuses <= {RecipientStatus.PENDING, RecipientStatus.QUEUED}, statuses
    skipped = recipients.filter(status=RecipientStatus.QUEUED, **{f"{unit}__isnull": True})
    assert not skipped.exists(), f"queued without a {unit}: {list(skipped.values('pk'))}"
    early = recipients.filter(status=RecipientStatus.PENDING, **{f"{unit}__isnull": False})
    assert not early.exists(), f"pending with a {unit}: {list(early.values('pk'))}"
    linked = set(recipients.exclude(**{unit: None}).values_list(f"{unit}_id", flat=True))
    units = Call.objects.all() if unit == "call" else Message.objects.filter(kind=MessageKind.BULK)
    made = set(units.values_list("pk", flat=True))
    assert made == linked, f"{unit}s without a queued recipient: {sorted(made - linked)}"


def _stuck() -> list[dict[str, Any]]:
    """The broadcast's texts not yet settled, with what the carrier has of each and the
    tasks about them that a killed worker left RUNNING (nothing runs those again)."""
    from django_tasks_db.models import DBTaskResult

    from openline.messaging.models import UNSETTLED_STATUSES, Message, MessageKind
    from openline.providers.sandbox.models import SandboxMessage

    orphans = DBTaskResult.objects.filter(status="RUNNING").values_list("task_path", "args_kwargs")
    found = []
    for message in Message.objects.filter(kind=MessageKind.BULK, status__in=UNSETTLED_STATUSES):
        carrier = SandboxMessage.objects.filter(provider_message_id=message.provider_message_id)
        held = [
            path.rsplit(".", 1)[-1]
            for path, args in orphans
            if args["args"][:1] in ([message.pk], [message.provider_message_id])
        ]
        found.append(
            {
                "message": message.pk,
                "status": message.status,
                "provider_id": bool(message.provider_message_id),
                "carrier_status": carrier.values_list("status", flat=True).first(),
                "left_running_by_a_killed_worker": held,
            }
        )
    return found


def _bulk_unsettled() -> int:
    from openline.messaging.models import UNSETTLED_STATUSES, Message, MessageKind

    return Message.objects.filter(kind=MessageKind.BULK, status__in=UNSETTLED_STATUSES).count()


def _text_states() -> list[Any]:
    """The broadcast's texts by status: how many, with a provider id, attempts, last change."""
    from django.db.models import Count, Max, Q, Sum

    from openline.messaging.models import Message, MessageKind

    return list(
        Message.objects.filter(kind=MessageKind.BULK)
        .values_list("status")
        .annotate(
            n=Count("pk"),
            with_provider_id=Count("pk", filter=~Q(provider_message_id="")),
            attempts=Sum("attempts"),
            changed=Max("status_changed_at"),
        )
        .order_by("status")
    )


def _call_states() -> list[Any]:
    from django.db.models import Count, Max

    from openline.messaging.models import Call

    return list(
        Call.objects.values_list("status")
        .annotate(n=Count("pk"), changed=Max("status_changed_at"))
        .order_by("status")
    )


def _settled_down(
    states: Callable[[], list[Any]] = _text_states, seconds: float = 2.0
) -> Callable[[], bool]:
    """A predicate: no dispatch or carrier task waits, and ``states`` (the texts, or the
    calls) did not change for ``seconds`` (the runner may still turn: it only looks)."""
    from django_tasks_db.models import DBTaskResult

    seen: dict[str, Any] = {"state": None, "since": time.monotonic()}

    def check() -> bool:
        waiting = DBTaskResult.objects.filter(status="READY").exclude(
            task_path="openline.campaigns.tasks.run_broadcast"
        )
        state = (waiting.exists(), states())
        if state != seen["state"]:
            seen["state"], seen["since"] = state, time.monotonic()
            return False
        return not state[0] and time.monotonic() - seen["since"] >= seconds

    return check


def _sweep_as_the_scheduler_would_later() -> int:
    """One reconciliation round as the scheduler runs it STUCK_AFTER + UNKNOWN_GRACE from
    now: a dispatch task that never got enqueued (past LOST_AFTER) and a text claimed but
    never answered (past STUCK_AFTER) are looked at. Only while the processes are idle, so
    nothing in progress is mistaken for lost."""
    from django.db import transaction
    from django.utils import timezone

    from openline.messaging.services.reconcile import (
        STUCK_AFTER,
        UNKNOWN_GRACE,
        messages_reconcile,
    )

    with transaction.atomic():  # its enqueues go out on commit, as in the scheduler
        return messages_reconcile(now=timezone.now() + STUCK_AFTER + UNKNOWN_GRACE)


def test_a_broadcast_whose_worker_is_killed_twice_texts_everyone_exactly_once(
    processes: Processes, org: Any, alice: Any
) -> None:
    from django_tasks_db.models import DBTaskResult

    from openline.billing.models import CreditEntry, CreditKind
    from openline.billing.services import credit_balance, credit_ledger_balance, credits_add
    from openline.campaigns.models import (
        Broadcast,
        BroadcastRecipient,
        BroadcastStatus,
        RecipientStatus,
        SendingWindow,
    )
    from openline.campaigns.services import broadcast_create, broadcast_queue
    from openline.messaging.models import Direction, Message, MessageKind, MessageStatus
    from openline.providers.sandbox.models import SandboxMessage
    from openline.providers.services import number_add

    SendingWindow.objects.create(
        organization=org, start=clock_time(0, 0), end=clock_time(23, 59, 59)
    )
    number = number_add(
        organization=org,
        provider="sandbox",
        e164="+12025550142",
        name="Main line",
        segments_per_second=RATE,
    )
    eligible, ineligible = _audience(org, alice)
    assert (len(eligible), len(ineligible)) == (PEOPLE, 11)
    credits_add(
        organization_id=org.pk,
        credits=CREDITS,
        note="invoice 7",
        actor_id=alice.pk,
        kind=CreditKind.PURCHASE,
    )
    broadcast = broadcast_create(
        organization_id=org.pk,
        actor_id=alice.pk,
        name="Pool closed",
        body=BODY,
        audience={"everyone": True},
        number_ids=[number.pk],
    )
    recipients = BroadcastRecipient.objects.filter(broadcast=broadcast)
    queued = recipients.filter(status=RecipientStatus.QUEUED)
    pending = recipients.filter(status=RecipientStatus.PENDING)

    def state() -> str:
        return f"{_snapshot(broadcast.pk)}\nunsettled: {_stuck()}\n{processes.tails()}"

    def until(predicate: Callable[[], Any], timeout: float, what: str) -> None:
        """wait_for, checking the processes are up, and saying what the database says."""

        def check() -> Any:
            processes.check_alive()
            return predicate()

        try:
            wait_for(check, timeout, what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nkills: {kills}\n{state()}") from None

    def turned(since: Any) -> Callable[[], bool]:
        return lambda: Broadcast.objects.get(pk=broadcast.pk).last_run_at != since

    kills: list[tuple[str, list[str], dict[str, Any]]] = []

    processes.start("scheduler", "scheduler")
    processes.start("worker-1", "worker")
    broadcast_queue(broadcast=broadcast, actor_id=alice.pk)
    started = time.monotonic()
    times: dict[str, float] = {}

    def mark(what: str) -> None:
        times[what] = round(time.monotonic() - started, 1)

    assert recipients.count() == len(eligible)
    assert credit_balance(organization_id=org.pk).reserved == len(eligible)

    # 1. Early, in the middle of a runner's turn: once the first turn has queued some, a
    # moment after a turn has marked itself started (it commits last_run_at before it
    # claims anyone). A kill that lands elsewhere (dispatch, the carrier) is a crash too;
    # the next turn is tried, until one dies with the runner's chain of turns.
    until(queued.exists, 60, "a first turn")
    dead: set[str] = set()
    worker = 1
    for delay in EARLY_KILL_DELAYS:
        until(turned(Broadcast.objects.get(pk=broadcast.pk).last_run_at), 15, "a turn")
        time.sleep(delay)
        processes.kill(f"worker-{worker}")
        mark(f"early kill {len(kills) + 1}")
        kills.append(("early", _interrupted(dead), _snapshot(broadcast.pk)))
        _assert_consistent(broadcast.pk)
        assert pending.exists(), f"the early kills came too late\n{kills}\n{state()}"
        worker += 1
        processes.start(f"worker-{worker}", "worker")
        if _runner_died(kills[-1][1]):
            break
    else:
        pytest.fail(f"no kill landed in a runner's turn\n{kills}")

    # 2. Late: everyone is queued; the worker is dispatching and the carrier reporting.
    until(
        lambda: not pending.exists(),
        RESTART_SECONDS + 30,
        "every recipient queued (the scheduler restarts the stalled runner)",
    )
    mark("all queued")
    # The runner keeps only about 2 s of texts waiting for dispatch (backpressure): slow the
    # sender so that the kill lands while they are still going out, however fast this
    # machine sends (dispatch reads the number's rate for each text).
    number.__class__.objects.filter(pk=number.pk).update(segments_per_second=3.0)
    taken = SandboxMessage.objects.count()
    until(lambda: SandboxMessage.objects.count() >= taken + 3, 30, "the carrier taking texts")
    processes.kill(f"worker-{worker}")
    mark("late kill")
    kills.append(("late", _interrupted(dead), _snapshot(broadcast.pk)))
    _assert_consistent(broadcast.pk)
    assert _bulk_unsettled(), f"the late kill came too late\n{state()}"
    worker += 1
    processes.start(f"worker-{worker}", "worker")

    # 3. Whatever the killed workers had in hand is reconciled; the broadcast finishes.
    sweeps: list[int] = []
    for _ in range(4):
        until(_settled_down(), 60, "the worker to run out of work")
        if not _bulk_unsettled():
            break
        mark(f"sweep {len(sweeps) + 1}")
        sweeps.append(_sweep_as_the_scheduler_would_later())
        if not sweeps[-1]:
            break
    story = f"kills: {kills}\nsweeps: {sweeps}\ntimes: {times}"
    until(
        lambda: Broadcast.objects.get(pk=broadcast.pk).finished_at is not None,
        30,
        f"the broadcast to finish (sweeps: {sweeps})",
    )
    processes.check_alive()
    mark("finished")

    # Everyone eligible has exactly one message, nobody pending, nobody refused.
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.FINISHED
    assert dict(Counter(recipients.values_list("status", flat=True))) == {
        RecipientStatus.QUEUED: len(eligible)
    }
    messages = Message.objects.filter(kind=MessageKind.BULK, direction=Direction.OUTBOUND)
    per_person = Counter(messages.values_list("conversation__contact__phone", flat=True))
    assert sorted(per_person) == sorted(eligible), story
    assert set(per_person.values()) == {1}, [p for p, n in per_person.items() if n > 1]
    linked = recipients.values_list("phone", "message__conversation__contact__phone")
    assert all(mine == theirs for mine, theirs in linked)
    assert Message.objects.filter(direction=Direction.OUTBOUND).count() == len(eligible)
    statuses = Counter(messages.values_list("status", flat=True))
    assert set(statuses) <= {MessageStatus.SENT, MessageStatus.DELIVERED}, f"{statuses}\n{story}"

    # The carrier took exactly one text per person, the one OpenLine recorded.
    carrier = SandboxMessage.objects.filter(number=number)
    per_phone = Counter(carrier.values_list("to", flat=True))
    assert sorted(per_phone) == sorted(eligible), story
    assert set(per_phone.values()) == {1}, [p for p, n in per_phone.items() if n > 1]
    assert SandboxMessage.objects.count() == len(eligible)
    assert set(carrier.values_list("provider_message_id", flat=True)) == set(
        messages.values_list("provider_message_id", flat=True)
    )
    assert not set(ineligible) & set(per_phone)

    # The credits settle: nothing stays reserved; the debit is the texts the carrier took.
    assert credit_balance(organization_id=org.pk).reserved == 0
    assert credit_balance(organization_id=org.pk).available == CREDITS - len(eligible)
    assert credit_ledger_balance(organization_id=org.pk) == credit_balance(organization_id=org.pk)
    debits = CreditEntry.objects.filter(organization_id=org.pk, kind=CreditKind.DEBIT)
    assert list(debits.values_list("settles_id", "credits")) == [
        (broadcast.reservation_id, carrier.count())
    ]
    assert not CreditEntry.objects.filter(kind=CreditKind.REFUND).exists()

    # No task failed, and the scheduler restarted the runner the early kill stopped.
    failed = DBTaskResult.objects.filter(status="FAILED")
    assert not failed.exists(), list(failed.values_list("task_path", "traceback"))
    log = processes.logs["scheduler"].read_text()
    assert log.count("runner stalled; restarting it") >= 1, story
    print(f"kills: {kills}\nsweeps: {sweeps}\ntimes: {times}")  # under -s


# --- a voice broadcast ------------------------------------------------------------------------

CALLERS = 60  # eligible people to call
CALLS_PER_SECOND = 3.0  # the number's call slots: placing everyone takes about 20 s


def _voice_snapshot(broadcast_id: int) -> dict[str, Any]:
    from openline.campaigns.models import BroadcastRecipient
    from openline.messaging.models import Call
    from openline.providers.sandbox.models import SandboxCall

    return {
        "recipients": _counts(
            BroadcastRecipient.objects.filter(broadcast_id=broadcast_id), "status"
        ),
        "calls": _counts(Call.objects.all(), "status"),
        "carrier": _counts(SandboxCall.objects.all(), "status"),
        "tasks": _task_counts(),
    }


def _calls_open() -> int:
    from openline.messaging.models import CALL_FINAL_STATUSES, Call

    return Call.objects.exclude(status__in=CALL_FINAL_STATUSES).count()


def _sweep_calls_as_the_scheduler_would_later() -> int:
    """One call reconciliation round as the scheduler runs it a call's time limit plus
    CALL_STUCK_AFTER from now (still short of CALL_NO_REPORT_AFTER): a lost dispatch, a
    call claimed and never answered, a call whose carrier died with the worker (the
    sandbox carrier runs in the worker; a real one does not) are each looked at."""
    from datetime import timedelta

    from django.db import transaction
    from django.db.models import Max
    from django.utils import timezone

    from openline.messaging.models import Call
    from openline.messaging.services.calls import CALL_STUCK_AFTER, calls_reconcile

    limit = Call.objects.aggregate(limit=Max("time_limit"))["limit"] or 0
    later = timezone.now() + timedelta(seconds=limit) + CALL_STUCK_AFTER + timedelta(seconds=5)
    with transaction.atomic():  # its enqueues go out on commit, as in the scheduler
        return calls_reconcile(now=later)


def test_a_voice_broadcast_whose_worker_is_killed_calls_everyone_exactly_once(
    processes: Processes, org: Any, alice: Any
) -> None:
    """The same promise for calls: the worker is killed twice while it places calls (and
    while the sandbox carrier it runs answers them); every eligible person is called
    exactly once, by the carrier's own record, and the credits settle to what was billed."""
    from django_tasks_db.models import DBTaskResult

    from openline.billing.models import CreditEntry, CreditKind
    from openline.billing.services import credit_balance, credit_ledger_balance, credits_add
    from openline.campaigns.models import (
        Broadcast,
        BroadcastRecipient,
        BroadcastStatus,
        RecipientStatus,
        SendingWindow,
    )
    from openline.campaigns.services import broadcast_create, broadcast_queue
    from openline.contacts.models import NumberType
    from openline.messaging.models import Call, CallStatus
    from openline.providers.sandbox.models import SandboxCall
    from openline.providers.services import number_add

    SendingWindow.objects.create(
        organization=org, start=clock_time(0, 0), end=clock_time(23, 59, 59)
    )
    number = number_add(
        organization=org,
        provider="sandbox",
        e164="+12025550142",
        name="Main line",
        segments_per_second=RATE,
    )
    number.__class__.objects.filter(pk=number.pk).update(calls_per_second=CALLS_PER_SECOND)
    # Mobiles: one never opted in may not get a prerecorded call either.
    eligible, ineligible = _audience(org, alice, CALLERS, number_type=NumberType.MOBILE)
    assert (len(eligible), len(ineligible)) == (CALLERS, 3)
    credits_add(
        organization_id=org.pk,
        credits=CREDITS,
        note="invoice 8",
        actor_id=alice.pk,
        kind=CreditKind.PURCHASE,
    )
    broadcast = broadcast_create(
        organization_id=org.pk,
        actor_id=alice.pk,
        name="Pool closed (call)",
        body="The pool is closed today.",
        audience={"everyone": True},
        number_ids=[number.pk],
        channel="voice",
    )
    recipients = BroadcastRecipient.objects.filter(broadcast=broadcast)
    pending = recipients.filter(status=RecipientStatus.PENDING)
    kills: list[tuple[str, list[str], dict[str, Any]]] = []

    def until(predicate: Callable[[], Any], timeout: float, what: str) -> None:
        def check() -> Any:
            processes.check_alive()
            return predicate()

        try:
            wait_for(check, timeout, what)
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}\nkills: {kills}\n{_voice_snapshot(broadcast.pk)}\n{processes.tails()}"
            ) from None

    processes.start("scheduler", "scheduler")
    processes.start("worker-1", "worker")
    broadcast_queue(broadcast=broadcast, actor_id=alice.pk)
    assert recipients.count() == len(eligible)
    reserved = credit_balance(organization_id=org.pk).reserved
    assert reserved == len(eligible)  # one started minute each, one credit a minute (US)

    # Two kills while calls are being placed and answered: early and late in the list.
    dead: set[str] = set()
    for worker, carried in ((1, 6), (2, 30)):
        until(lambda n=carried: SandboxCall.objects.count() >= n, 60, f"{carried} calls placed")
        processes.kill(f"worker-{worker}")
        kills.append((f"after {carried}", _interrupted(dead), _voice_snapshot(broadcast.pk)))
        _assert_consistent(broadcast.pk, "call")
        processes.start(f"worker-{worker + 1}", "worker")
    assert pending.exists() or _calls_open(), f"the kills came too late\n{kills}"

    until(
        lambda: not pending.exists(),
        RESTART_SECONDS + 60,
        "every recipient queued (the scheduler restarts a stalled runner)",
    )
    sweeps: list[int] = []
    for _ in range(4):
        until(_settled_down(_call_states), 90, "the worker to run out of work")
        if not _calls_open():
            break
        sweeps.append(_sweep_calls_as_the_scheduler_would_later())
        if not sweeps[-1]:
            break
    story = f"kills: {kills}\nsweeps: {sweeps}\n{_voice_snapshot(broadcast.pk)}"
    until(
        lambda: Broadcast.objects.get(pk=broadcast.pk).finished_at is not None,
        30,
        f"the broadcast to finish (sweeps: {sweeps})",
    )
    processes.check_alive()

    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.FINISHED
    assert dict(Counter(recipients.values_list("status", flat=True))) == {
        RecipientStatus.QUEUED: len(eligible)
    }
    # Each eligible person has exactly one call, and it was answered.
    per_person = Counter(Call.objects.values_list("phone", flat=True))
    assert sorted(per_person) == sorted(eligible), story
    assert set(per_person.values()) == {1}, [p for p, n in per_person.items() if n > 1]
    statuses = Counter(Call.objects.values_list("status", flat=True))
    assert statuses == {CallStatus.COMPLETED: len(eligible)}, story
    # The carrier placed exactly one call to each, the one OpenLine recorded.
    carrier = SandboxCall.objects.filter(number=number)
    per_phone = Counter(carrier.values_list("to", flat=True))
    assert sorted(per_phone) == sorted(eligible), story
    assert set(per_phone.values()) == {1}, [p for p, n in per_phone.items() if n > 1]
    assert set(carrier.values_list("provider_call_id", flat=True)) == set(
        Call.objects.values_list("provider_call_id", flat=True)
    )
    assert not set(ineligible) & set(per_phone)

    # The credits settle to what the calls were billed: nothing stays reserved.
    billed = sum(Call.objects.values_list("credits", flat=True))
    assert billed == len(eligible), story  # each under a minute
    assert credit_balance(organization_id=org.pk).reserved == 0
    assert credit_balance(organization_id=org.pk).available == CREDITS - billed
    assert credit_ledger_balance(organization_id=org.pk) == credit_balance(organization_id=org.pk)
    debits = CreditEntry.objects.filter(organization_id=org.pk, kind=CreditKind.DEBIT)
    assert list(debits.values_list("settles_id", "credits")) == [(broadcast.reservation_id, billed)]
    failed = DBTaskResult.objects.filter(status="FAILED")
    assert not failed.exists(), list(failed.values_list("task_path", "traceback"))
    print(story)  # under -s
