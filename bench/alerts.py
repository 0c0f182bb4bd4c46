"""Alert sweep benchmark: the time of one sweep with 10,000 waiting conversations across 100
online inboxes, on SQLite and on PostgreSQL.

    make bench-alerts                       # or: .venv/bin/python bench/alerts.py
    .venv/bin/python bench/alerts.py --conversations 2000 --inboxes 20   # smaller
    .venv/bin/python bench/alerts.py --database sqlite                   # one backend

Each backend gets a fresh database (SQLite: a temp file; PostgreSQL: a throw-away database
`openline_bench_alerts` on the PG_URL server, dropped afterwards). The seed: 100 inboxes,
each with alerts on (reminders every 5 min, 3 reminders, escalation after 2 attempts), a
normal shift covering now with two people signed up who permit texts, and one organization-
wide on-call shift with one person; 10,000 waiting conversations spread over the last 40
minutes across the inboxes.

Timed, each 5 times (median and max reported):
- **steady**: every alert that is due has already been sent (the Alert rows exist, and a
  warm-up sweep sends what became due while seeding): the sweep's usual case, deciding that
  nothing (or the few conversations crossing a reminder time that second) is due.
- **due**: like steady, but 1% of the conversations (100) have just started waiting, so
  the sweep sends 200 "new conversation" texts through the send service; its figure
  includes those sends. The new alerts are deleted again between repeats.

Target: one sweep under 1 s. Writes bench/results/alerts-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from typing import Any

import common
from common import log

BENCH_DB = "openline_bench_alerts"
TARGET_SECONDS = 1.0
REPEATS = 5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--inboxes", type=int, default=100)
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    results = {}
    for backend in backends:
        child = [__file__, "--child", str(args.conversations), str(args.inboxes)]
        results[backend] = common.run_child(backend, child, pg_database=BENCH_DB)
    data = {"target_seconds": TARGET_SECONDS, "results": results}
    out = common.write_results("alerts", dt.datetime.now(dt.UTC), data)
    print(f"\nwrote {out.relative_to(common.ROOT)}")
    for backend, figures in results.items():
        for case in ("steady", "due"):
            worst = figures[case]["max_s"]
            verdict = "PASS" if worst < TARGET_SECONDS else "FAIL"
            print(
                f"{backend:9} {case:6} median {figures[case]['median_s'] * 1000:7.1f} ms"
                f"  max {worst * 1000:7.1f} ms  ({verdict}: target < {TARGET_SECONDS:.0f} s)"
            )
    return 0


# --- the child: seed, then time ---------------------------------------------------------


def child(conversations: int, inboxes: int) -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openline.settings")
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    now = _seed(conversations, inboxes)
    log(
        f"{connection.vendor}: seeded {conversations} waiting conversations, {inboxes} inboxes",
        stderr=True,  # stdout carries the figures to the parent
    )
    steady = _time_sweeps(now, new=0)
    due = _time_sweeps(now, new=conversations // 100)
    print(json.dumps({"vendor": connection.vendor, "steady": steady, "due": due}))


def _seed(conversations: int, inboxes: int) -> dt.datetime:  # noqa: PLR0914 -- one linear seed
    from datetime import timedelta

    from django.db import transaction
    from django.utils import timezone

    from openline.alerts.models import Alert, AlertPolicy, AlertProfile
    from openline.alerts.sweep import due_steps, policy_plan
    from openline.availability.models import Shift, ShiftKind, ShiftSignUp
    from openline.contacts.models import ConsentEvent, ConsentKind, ConsentSource, Contact
    from openline.core.models import Membership, User
    from openline.core.services import organization_create
    from openline.messaging.models import Conversation
    from openline.providers.models import Number

    now = timezone.now()
    org = organization_create(name="Bench", slug="bench", timezone_name="America/Chicago")
    with transaction.atomic():
        staff = User.objects.bulk_create(
            User(email=f"s{i}@bench.test", password="!") for i in range(2 * inboxes + 1)
        )
        Membership.objects.bulk_create(Membership(organization=org, user=u) for u in staff)
        numbers = Number.objects.bulk_create(
            Number(
                organization=org,
                provider="sandbox",
                e164=f"+1202555{i:04d}",
                name=f"Inbox {i}",
                webhook_key=f"bench-{i}",
            )
            for i in range(inboxes)
        )
        AlertPolicy.objects.bulk_create(
            AlertPolicy(
                organization=org,
                number=n,
                enabled=True,
                reminder_minutes=5,
                reminders=3,
                escalate_after=2,
            )
            for n in numbers
        )
        start = now - timedelta(hours=1)
        local = start.astimezone(dt.UTC)
        shifts = Shift.objects.bulk_create(
            Shift(
                organization=org,
                number=n,
                kind=ShiftKind.NORMAL if n else ShiftKind.ONCALL,
                timezone="UTC",
                start_date=local.date(),
                start_time=local.time(),
                duration_minutes=8 * 60,
                places=5,
                first_start=start,
                last_end=start + timedelta(hours=8),
            )
            for n in [*numbers, None]
        )
        ShiftSignUp.objects.bulk_create(
            ShiftSignUp(
                organization=org,
                shift=shift,
                occurrence_start=start,
                occurrence_end=start + timedelta(hours=8),
                user=staff[i],
            )
            for i, shift in [(i, shifts[i // 2]) for i in range(2 * inboxes)] + [(-1, shifts[-1])]
        )
        AlertProfile.objects.bulk_create(
            AlertProfile(
                organization=org,
                user=u,
                mobile=f"+1312555{i:04d}",
                confirmed_phone=f"+1312555{i:04d}",  # alerts go only to confirmed phones
                confirmed_at=now,
            )
            for i, u in enumerate(staff)
        )
        ConsentEvent.objects.bulk_create(
            ConsentEvent(
                organization=org,
                phone=f"+1312555{i:04d}",
                kind=ConsentKind.OPT_IN,
                source=ConsentSource.STAFF,
                evidence="bench",
                created_at=now - timedelta(days=1),
            )
            for i in range(len(staff))
        )
        contacts = Contact.objects.bulk_create(
            Contact(organization=org, phone=f"+1415{i:07d}") for i in range(conversations)
        )
        waiting = Conversation.objects.bulk_create(
            Conversation(
                organization=org,
                number=numbers[i % inboxes],
                contact=contact,
                last_message_at=now,
            )
            for i, contact in enumerate(contacts)
        )
    # Spread their start over the last 40 minutes (auto_now_add ignores a set value).
    ages = {
        c.pk: now - timedelta(seconds=(i * 2400) // conversations) for i, c in enumerate(waiting)
    }
    Conversation.objects.bulk_update(
        [Conversation(pk=pk, created_at=at) for pk, at in ages.items()], ["created_at"], 2000
    )
    # Everything due so far has been sent: the sweep's steady state.
    plan = policy_plan(AlertPolicy.objects.first())
    phones = {n.pk: [f"+1312555{i:04d}" for i in (2 * k, 2 * k + 1)] for k, n in enumerate(numbers)}
    oncall = [f"+1312555{len(staff) - 1:04d}"]
    number_of = {c.pk: c.number_id for c in waiting}
    rows = []
    for pk, started in ages.items():
        for step in due_steps(plan, (now - started).total_seconds() / 60):
            to = oncall if step.kind == "escalation" else phones[number_of[pk]]
            rows += [
                Alert(
                    organization=org,
                    conversation_id=pk,
                    phone=p,
                    kind=step.kind,
                    attempt=step.attempt,
                )
                for p in to
            ]
    Alert.objects.bulk_create(rows, batch_size=2000)
    log(f"seeded {len(rows)} alerts already sent", stderr=True)
    return now


def _time_sweeps(now: dt.datetime, *, new: int) -> dict[str, Any]:
    from django.utils import timezone

    from openline.alerts.models import Alert
    from openline.alerts.sweep import alerts_sweep
    from openline.messaging.models import Conversation, Message, MessageKind

    # The "new" ones: the youngest conversations, made to have just started waiting.
    waiting = Conversation.objects.filter(status="waiting").order_by("-created_at")
    youngest = list(waiting.values_list("pk", flat=True)[:new])
    # Seeding takes a while: a warm-up sweep sends what became due meanwhile, as the
    # scheduler's previous sweep would have.
    alerts_sweep(now=timezone.now())
    times, sent = [], []
    for _ in range(REPEATS):
        Alert.objects.filter(conversation_id__in=youngest).delete()
        Message.objects.filter(kind=MessageKind.ALERT).delete()
        Conversation.objects.filter(pk__in=youngest).update(created_at=timezone.now())
        started = time.perf_counter()
        result = alerts_sweep(now=timezone.now())
        times.append(time.perf_counter() - started)
        sent.append(result.sent)
    return {
        "median_s": statistics.median(times),
        "max_s": max(times),
        "runs_s": times,
        "sent_per_run": sent,
        "waiting": result.waiting,
        "now": now.isoformat(),
    }


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(int(sys.argv[2]), int(sys.argv[3]))
    else:
        sys.exit(main())
