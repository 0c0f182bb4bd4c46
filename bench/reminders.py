"""Appointment reminders benchmark (issue 16): 50,000 appointments with two reminders each,
planning a day's reminders and the scheduler's sweep, on SQLite and on PostgreSQL.

    make bench-reminders               # or: .venv/bin/python bench/reminders.py
    .venv/bin/python bench/reminders.py --quick              # 5,000 appointments
    .venv/bin/python bench/reminders.py --database sqlite    # one backend
    .venv/bin/python bench/reminders.py --profile always     # cProfile planning and sweep
    .venv/bin/python bench/reminders.py --variant fixed      # the scanning lookups fixed

Each backend gets a fresh database (common.run_child: SQLite in a temp var dir, the
embedded profile; PostgreSQL as the throw-away database `bench_reminders` on PG_URL, with
Redis at --redis-url as the server profile has it). The seed: one clinic organization
(America/New_York, sending hours 08:00-21:00, the default limits of one reminder a day and
three a week per patient), one sandbox number, four appointment types (TYPES: shares of the
visits) each with two rules ("2 days before at 10:00" and "2 hours before"), six locations
in New York, Chicago and Los Angeles time, and one opted-in patient per appointment. The
appointments are spread over --days days from three days ahead, 08:00-17:45 local in
15-minute slots; all days but the last are inserted in bulk with their reminders (due times
from the engine's own `rule_time` and `fit_earlier`), the last day is booked in the timed
phase below.

Timed, in this order:
- **book a day**: the last day's appointments (appointments / days) saved one by one with
  `appointment_save`, as the API or an import saves them; each plans its two reminders.
  No target: what one save costs (an API call, a CSV row).
- **move a day**: the same day pushed again with every visit 30 minutes later, one by one:
  each save withdraws the two planned reminders and plans two new ones.
- **push it unchanged**: the same again (a scheduling system re-sending its day): nothing
  changes, nothing is planned.
- **re-plan a day**: `reminders_plan` alone for each of the day's appointments, one at a
  time. Each of these four stops once --phase-budget has passed; the day's time is then
  projected from the appointments it did (and the day's rest is inserted in bulk).
- **plan a day in bulk**: the day's reminders deleted, then `reminders_plan_many` over the
  day, PLAN_BATCH appointments a transaction (the planner's bulk path, as a re-timed rule's
  task uses it). Target: under 5 s for the day.
- **move a day, re-plan in bulk**: the whole day moved 45 minutes by one UPDATE, then the same
  bulk path: every planned reminder withdrawn and planned again. Target: under 5 s.
- **a rule re-timed**: the rare type's "2 hours before" made "3 hours before" with
  `reminder_rule_save`, then the task it enqueues (`reminders_replan_type`) run by the task
  worker's loop: every upcoming appointment of the type planned again.
- **steady sweep**: `reminders_send_due`, the scheduler's job each round, with nothing due
  (--sweeps times), then with a few due (--few reminders made due before each of --sweeps
  runs; they are sent). Target: each under 1 s.
- **due batch**: --batch reminders made due at once (distinct patients); one sweep sends
  them (SENDS_PER_ROUND a round) through the send service, then the task worker's loop
  (`run_ready_tasks`) hands them to the sandbox carrier: both timed.

With --profile auto, a phase that misses its target is run again under cProfile (for a
planning phase, on --profile-sample of the day's appointments, moved once more) and its
.pstats file written beside the results. --variant (see VARIANT_INDEXES and UNORDERED) changes
the benchmark's own database and process only, to measure what a fix of the lookups that
scan on SQLite would give. Writes bench/results/reminders-<UTC time>.json; bench/README.md
says how to read it.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import datetime as dt
import json
import random
import statistics
import sys
import time
import zoneinfo
from collections.abc import Callable
from pathlib import Path
from typing import Any

import common
from common import log

BENCH_DB = "bench_reminders"
REDIS_URL = "redis://127.0.0.1:6379/10"  # the server profile's Redis, a database of its own
TARGET_PLAN_S = 5.0
TARGET_SWEEP_S = 1.0
ORG_ZONE = "America/New_York"
# (location, its time zone)
LOCATIONS = [
    ("Main St clinic", "America/New_York"),
    ("Harbor clinic", "America/New_York"),
    ("Eastside health center", "America/New_York"),
    ("Lakeview clinic", "America/Chicago"),
    ("Riverside clinic", "America/Chicago"),
    ("Sunset medical", "America/Los_Angeles"),
]
# Appointment types by share of the appointments (of 50): the rare one's rule is re-timed.
TYPES = {"Check-up": 22, "Follow-up": 17, "New patient": 10, "Flu shot": 1}
RETIMED = "Flu shot"
TYPE_CYCLE = [name for name, share in TYPES.items() for _ in range(share)]
RULES = [  # the two: "2 days before at 10:00" and "2 hours before"
    {"days_before": 2, "at_time": dt.time(10, 0)},
    {"minutes_before": 120},
]
TEMPLATE = "Hi {first_name}, a reminder of your visit {date} at {time} at {location}."
STAFF = ["Dr. Ruiz", "Dr. Okafor", "Dr. Chen", "Dr. Patel", "NP Kim", "Dr. Silva", "PA Rossi"]
FIRST = ["Ana", "Bo", "Chen", "Dee", "Eli", "Fay", "Gus", "Hana", "Ivan", "Jo", "Kai", "Lee"]
LAST = ["Lee", "Chen", "Diaz", "Okafor", "Smith", "Nguyen", "Khan", "Rossi", "Kim", "Silva"]
AREAS = ["212", "718", "917", "312", "773", "213", "310", "415", "617", "202"]
SLOTS = 40  # 08:00 to 17:45 local, every 15 minutes
# --variant indexes: what the lookups that scan on SQLite would cost with an index each. Not
# in the schema: the partial unique indexes on (organization, external_id) and
# (organization, phone) cannot serve `= ?` there (SQLite cannot prove the parameter is not
# ''), and reminders_plan's last query walks (status, due_at) for its ORDER BY.
VARIANT_INDEXES = [
    "CREATE INDEX bench_appointment_external ON campaigns_appointment"
    " (organization_id, external_id)",
    "CREATE INDEX bench_contact_phone ON contacts_contact (organization_id, phone)",
    "CREATE INDEX bench_reminder_start ON campaigns_reminder (appointment_id, for_start, status)",
]
# --variant unordered: Meta.ordering dropped in this process for these models, as
# `.order_by()` on the engine's lookups would (the sweep's own order_by stays).
UNORDERED = ["campaigns.Appointment", "campaigns.Reminder"]
FIRST_DAY = 3  # days from today: nothing planned is due while the benchmark runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--appointments", type=int, default=50_000)
    parser.add_argument("--days", type=int, default=5, help="the appointments' days")
    parser.add_argument("--sweeps", type=int, default=20, help="runs of each steady sweep")
    parser.add_argument("--few", type=int, default=5, help="reminders due in a 'few due' sweep")
    parser.add_argument("--batch", type=int, default=200, help="reminders due in the batch")
    parser.add_argument(
        "--profile",
        choices=["auto", "always", "never"],
        default="auto",
        help="cProfile a phase: when it misses its target, always or never",
    )
    parser.add_argument(
        "--phase-budget",
        type=float,
        default=30.0,
        help="seconds after which a planning phase stops and projects the day's time",
    )
    parser.add_argument("--profile-sample", type=int, default=300)
    parser.add_argument(
        "--variant",
        choices=["none", "indexes", "unordered", "fixed"],
        default="none",
        help="what the lookups that scan on SQLite would cost: with plain indexes"
        " (VARIANT_INDEXES), without the models' default ordering (UNORDERED), or both",
    )
    parser.add_argument(
        "--redis-url", default=REDIS_URL, help="Redis for the PostgreSQL run ('' for none)"
    )
    common.add_run_options(parser, quick="5,000 appointments")
    args = parser.parse_args()
    if args.quick:
        args.appointments = 5_000
    backends = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    report = common.Report("reminders")
    results = report.results
    results.update(
        settings=vars(args),
        targets={"plan_day_s": TARGET_PLAN_S, "sweep_s": TARGET_SWEEP_S},
        code=common.code_state(),
    )
    stamp = report.started.strftime("%Y%m%dT%H%M%SZ")
    for backend in backends:
        cfg = {
            **{k: getattr(args, k) for k in ("appointments", "days", "sweeps", "few", "batch")},
            "profile": args.profile,
            "profile_sample": args.profile_sample,
            "phase_budget": args.phase_budget,
            "variant": args.variant,
            "redis_url": args.redis_url if backend == "postgres" else "",
            "profile_prefix": str(common.RESULTS / f"reminders-{stamp}-{backend}"),
        }
        log(f"{backend}: seeding {args.appointments:,} appointments, then planning and sweeps ...")
        try:
            child = [__file__, "--child", json.dumps(cfg)]
            results[backend] = common.run_child(backend, child, pg_database=BENCH_DB)
        except Exception as exc:  # noqa: BLE001 -- recorded, the other backend still runs
            results[backend] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    return report.conclude(summarize, print_summary, strict=args.strict)


# --- summary --------------------------------------------------------------------------------

# The target ("planning a day's reminders < 5 s") is the planner's bulk path over a day's
# appointments; the one-at-a-time phases show what one save costs (an API call, a row).
PLAN_PHASES = ("plan_bulk", "move_bulk")
SWEEP_PHASES = ("steady", "few")


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    checks: dict[str, bool] = {}
    for backend in ("sqlite", "postgres"):
        r = results.get(backend)
        if r is None:
            continue
        if "error" in r:
            checks[f"{backend}_ran"] = False
            continue
        for name in PLAN_PHASES:
            checks[f"{backend}_{name}_day"] = r["plan"][name]["day_s"] < TARGET_PLAN_S
        for name in SWEEP_PHASES:
            checks[f"{backend}_sweep_{name}"] = r["sweep"][name]["max_s"] < TARGET_SWEEP_S
        checks[f"{backend}_batch_sent"] = r["sweep"]["batch"]["all_sent_once"]
    return {"checks": checks}


def print_summary(results: dict[str, Any], summary: dict[str, Any]) -> None:
    log("\n=== OpenLine appointment reminders benchmark ===")
    common.log_code(results.get("code", {}))
    for backend in ("sqlite", "postgres"):
        r = results.get(backend)
        if r is None:
            continue
        if "error" in r:
            log(f"\n{backend}: FAILED: {r['error']}")
            continue
        s = r["seed"]
        log(
            f"\n{backend} {r['server_version']}: seeded {s['appointments']:,} appointments"
            f" ({s['reminders']:,} reminders) in {s['seed_s']} s; a day is {s['per_day']:,}"
            + ("" if r["variant"] == "none" else f"; variant: {r['variant']}")
        )
        log(
            f"  {'planning a day':<31} {'day s':>7} {'ms each':>8} {'in plan':>8} {'SQL':>6}"
            f" {'queries':>7}"
        )
        for name, p in r["plan"].items():
            target = name in PLAN_PHASES
            verdict = ("PASS" if p["day_s"] < TARGET_PLAN_S else "FAIL") if target else ""
            verdict += f" (< {TARGET_PLAN_S:g} s)" if target else ""
            part = (
                ""
                if p["complete"]
                else f" (projected: {p['processed']:,} of {p['appointments']:,} in {p['s']} s)"
            )
            log(
                f"  {p['what']:<31} {p['day_s']:>7.2f} {p['ms_each']:>8.2f}"
                f" {common.fmt(p.get('plan_ms_each'), 2):>8} {p['sql_ms_each']:>6.2f}"
                f" {p['queries_each']:>7.1f}  {verdict}"
                f"{part}  load {p['load']}"
            )
            for st in p["slowest_statements"][:2]:
                log(f"      {st['ms_each']:>6.2f} ms each: {st['sql'][:90]}")
                for line in st.get("plan", [])[:3]:
                    log(f"               {line[:110]}")
        t = r["retime"]
        log(
            f"  a rule re-timed ({t['type']}, 2 h -> 3 h before): saved in {t['save_s']} s; the"
            f" task planned its {t['upcoming']:,} upcoming appointments again in"
            f" {t['replan_s']} s ({t['ms_each']} ms each), {t['planned']:,} planned"
            f"  load {t['load']}"
        )
        for name in SWEEP_PHASES:
            w = r["sweep"][name]
            verdict = "PASS" if w["max_s"] < TARGET_SWEEP_S else "FAIL"
            log(
                f"  sweep, {w['what']:<27} median {w['median_s'] * 1000:7.1f} ms, max"
                f" {w['max_s'] * 1000:7.1f} ms, {w['queries']} queries, settled"
                f" {w['settled']}  {verdict} (< {TARGET_SWEEP_S:g} s)  load {w['load']}"
            )
        b = r["sweep"]["batch"]
        log(
            f"  due batch of {b['due']}: one sweep {b['sweep_s']:.2f} s ({b['settled']} settled,"
            f" {b['sent']} sent, {b['ms_each']:.1f} ms each, {b['queries_each']:.1f} queries"
            f" each); the worker handed them to the carrier in {common.fmt(b['dispatch_s'], 2)} s,"
            f" all reported in {common.fmt(b['settled_s'], 2)} s;"
            f" {'each sent once' if b['all_sent_once'] else 'NOT each sent once'}"
        )
        for prof in r.get("profiles", []):
            log(f"  profile ({prof['what']}): {prof.get('pstats', '')}")
            for line in prof.get("top", [])[:14]:
                log(f"    {line}")
    common.log_footer(results["machine"], summary["checks"])


# --- the child: seed, then time -------------------------------------------------------------


def child(cfg: dict[str, Any]) -> None:
    out: dict[str, Any] = common.child_django(redis_url=cfg["redis_url"])
    from django.conf import settings
    from django.db import connection

    if settings.REDIS_URL:
        from openline.messaging.ratelimit import limiter

        limiter().reset()  # the bench's Redis database: nothing left from an earlier run
    t = time.monotonic()
    world = _seed(cfg)
    out["variant"] = cfg["variant"]
    if cfg["variant"] in ("unordered", "fixed"):
        from django.apps import apps

        for label in UNORDERED:
            apps.get_model(label)._meta.ordering = []
    with connection.cursor() as cur:
        for statement in VARIANT_INDEXES if cfg["variant"] in ("indexes", "fixed") else []:
            cur.execute(statement)
        if connection.vendor == "postgresql":
            cur.execute("ANALYZE")  # as autovacuum would within a minute of a bulk load
    out["seed"] = {**world.pop("counts"), "seed_s": round(time.monotonic() - t, 1)}
    common.progress(f"seeded in {out['seed']['seed_s']} s: {out['seed']}")
    out["profiles"] = []
    out["plan"] = _planning(world, cfg, out["profiles"])
    out["retime"] = _retime(world)
    out["sweep"] = _sweeps(world, cfg, out["profiles"])
    print(json.dumps(out, default=str))


def _day_slots(day: dt.date, count: int, first: int) -> list[dict[str, Any]]:
    """One day's `count` appointments for patients `first`...: where, when (local), what."""
    out = []
    for i in range(count):
        location, zone = LOCATIONS[i % len(LOCATIONS)]
        slot = (i // len(LOCATIONS)) % SLOTS
        local = dt.datetime.combine(day, dt.time(8, 0)) + dt.timedelta(minutes=15 * slot)
        out.append(
            {
                "patient": first + i,
                "local": local,
                "zone": zone,
                "location": location,
                "type": TYPE_CYCLE[(i * 7) % len(TYPE_CYCLE)],
                "staff": STAFF[(i * 7 + slot) % len(STAFF)],
            }
        )
    return out


def _seed(cfg: dict[str, Any]) -> dict[str, Any]:  # noqa: PLR0914 -- one linear seed
    from django.db import transaction
    from django.utils import timezone

    from openline.campaigns.models import (
        AppointmentType,
        ReminderRule,
        ReminderSettings,
        SendingWindow,
    )
    from openline.contacts.models import ConsentEvent, ConsentKind, ConsentSource, Contact
    from openline.core.models import Membership, Role, User
    from openline.core.services import organization_create
    from openline.providers.services import number_add

    rng = random.Random(16)
    now = timezone.now()
    org = organization_create(name="Bench clinic", slug="bench", timezone_name=ORG_ZONE)
    admin = User.objects.create(email="admin@bench.test", password="!")
    Membership.objects.create(organization=org, user=admin, role=Role.ADMIN)
    number = number_add(
        organization=org,
        provider="sandbox",
        e164="+12025550100",
        name="Reminders",
        segments_per_second=1000.0,  # the sweep is measured here, not the send rate
    )
    SendingWindow.objects.create(organization=org, start=dt.time(8, 0), end=dt.time(21, 0))
    ReminderSettings.objects.create(organization=org, max_per_day=1, max_per_week=3)
    types, rules = {}, {}
    for name in TYPES:
        types[name] = AppointmentType.objects.create(organization=org, name=name)
        rules[name] = [
            ReminderRule.objects.create(
                organization=org, appointment_type=types[name], template=TEMPLATE, **rule
            )
            for rule in RULES
        ]
    total, days = cfg["appointments"], cfg["days"]
    per_day = total // days
    phones = common.random_phones(rng, per_day * days, AREAS, avoid=("0666", "0999"))
    names = [f"{rng.choice(FIRST)} {rng.choice(LAST)}" for _ in phones]
    with transaction.atomic():
        contacts = Contact.objects.bulk_create(
            (
                Contact(organization=org, phone=p, name=n)
                for p, n in zip(phones, names, strict=True)
            ),
            batch_size=2000,
        )
        ConsentEvent.objects.bulk_create(
            (
                ConsentEvent(
                    organization=org,
                    phone=phone,
                    kind=ConsentKind.OPT_IN,
                    source=ConsentSource.IMPORT,
                    evidence="patient intake form",
                    created_at=now - dt.timedelta(days=rng.uniform(30, 700)),
                )
                for phone in phones
            ),
            batch_size=5000,
        )
    today = now.astimezone(zoneinfo.ZoneInfo(ORG_ZONE)).date()
    slots = [
        _day_slots(today + dt.timedelta(days=FIRST_DAY + d), per_day, d * per_day)
        for d in range(days)
    ]
    world = {"org": org, "number": number, "now": now, "contacts": contacts, "types": types}
    world.update(rules=rules, last_day=slots[-1])
    reminders = 0
    for day in slots[:-1]:  # the last day is booked in the timed phase
        reminders += _bulk_day(world, day)
    world["booked"] = [
        _data(slot, phones[slot["patient"]], names[slot["patient"]]) for slot in slots[-1]
    ]
    return {
        **world,
        "counts": {
            "appointments_bulk": per_day * (days - 1),
            "appointments": per_day * days,
            "per_day": per_day,
            "reminders_bulk": reminders,
            "reminders": reminders + 2 * per_day,
            "patients": len(contacts),
        },
    }


def _bulk_day(world: dict[str, Any], day: list[dict[str, Any]]) -> int:
    """A day's appointments and their planned reminders in bulk; how many reminders."""
    from django.db import transaction

    from openline.campaigns.models import Appointment, Reminder, ReminderStatus
    from openline.campaigns.reminders import fit_earlier, rule_time
    from openline.campaigns.window import sending_window

    org, contacts, types, rules = world["org"], world["contacts"], world["types"], world["rules"]
    window = sending_window(organization_id=org.pk)
    utc = zoneinfo.ZoneInfo("UTC")
    with transaction.atomic():
        appointments = Appointment.objects.bulk_create(
            (
                Appointment(
                    organization=org,
                    contact=contacts[s["patient"]],
                    appointment_type=types[s["type"]],
                    starts_at=s["local"]
                    .replace(tzinfo=zoneinfo.ZoneInfo(s["zone"]))
                    .astimezone(utc),
                    time_zone=s["zone"],
                    minutes=30,
                    staff_name=s["staff"],
                    location=s["location"],
                    external_id=f"EHR-{s['patient']}",
                )
                for s in day
            ),
            batch_size=2000,
        )
        planned = []
        for appointment, s in zip(appointments, day, strict=True):
            for rule in rules[s["type"]]:
                wanted = rule_time(rule, starts_at=appointment.starts_at, zone=s["zone"])
                due = fit_earlier(wanted, window=window, zone=s["zone"])
                assert due > world["now"], "a seeded reminder is due already: raise FIRST_DAY"
                planned.append(
                    Reminder(
                        organization=org,
                        appointment=appointment,
                        rule=rule,
                        for_start=appointment.starts_at,
                        due_at=due,
                        status=ReminderStatus.PLANNED,
                    )
                )
        Reminder.objects.bulk_create(planned, batch_size=5000)
    return len(planned)


def _data(slot: dict[str, Any], phone: str, name: str) -> Any:
    from openline.campaigns.appointments import AppointmentData

    return AppointmentData(
        phone=phone,
        starts_at=slot["local"],
        time_zone=slot["zone"],
        minutes=30,
        staff_name=slot["staff"],
        location=slot["location"],
        type_name=slot["type"],
        external_id=f"EHR-{slot['patient']}",
        name=name,
    )


# --- planning a day -------------------------------------------------------------------------


class PlanTimer:
    """The time spent inside `reminders_plan` while it is installed where
    `appointment_save` looks it up (a perf_counter pair per call)."""

    def __init__(self) -> None:
        from openline.campaigns import appointments

        self.module = appointments
        self.plan = appointments.reminders_plan
        self.seconds = 0.0

    def __enter__(self) -> PlanTimer:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return self.plan(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        self.module.reminders_plan = timed  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        self.module.reminders_plan = self.plan


def _save(org: Any) -> Callable[[Any], int]:
    """appointment_save of one AppointmentData: 1 if it changed something."""
    from openline.campaigns.appointments import appointment_save

    return lambda data: int(appointment_save(organization_id=org.pk, data=data)[1])


def _replan(appointment: Any) -> int:
    """reminders_plan in its own transaction, as appointment_save calls it: planned ones."""
    from django.db import transaction

    from openline.campaigns.reminders import reminders_plan

    with transaction.atomic():
        return reminders_plan(appointment)


def _timed_phase(
    what: str, items: list[Any], step: Callable[[Any], int], budget_s: float
) -> dict[str, Any]:
    """`step` for each of `items`, in order, timed, with every query timed too and the time
    inside reminders_plan; it stops early once `budget_s` has passed (the day's time is then
    projected from the appointments done)."""
    from django.db import connection

    from openline.campaigns.appointments import AppointmentError

    load = common.load()
    timer = common.QueryTimer(lambda sql: sql.startswith("SELECT"))
    processed = done = errors = 0
    with PlanTimer() as plan, connection.execute_wrapper(timer):
        started = time.perf_counter()
        deadline = started + budget_s
        for item in items:
            try:
                done += step(item)
            except AppointmentError:
                errors += 1
            processed += 1
            if time.perf_counter() > deadline:
                break
        seconds = time.perf_counter() - started
    complete = processed == len(items)
    day_s = seconds if complete else seconds * len(items) / processed
    common.progress(
        f"{what}: {seconds:.2f} s for {processed:,} of {len(items):,}"
        + ("" if complete else f" (stopped at the budget; the day: {day_s:.0f} s)")
        + f", {done:,} done, {errors} errors"
    )
    return {
        "what": what,
        "day_s": round(day_s, 3),
        "complete": complete,
        "s": round(seconds, 3),
        "appointments": len(items),
        "processed": processed,
        "done": done,
        "errors": errors,
        "ms_each": round(1000 * seconds / max(processed, 1), 3),
        "plan_ms_each": round(1000 * plan.seconds / max(processed, 1), 3) if plan.seconds else None,
        "queries": len(timer.queries),
        "queries_each": round(len(timer.queries) / max(processed, 1), 1),
        "sql_ms_each": round(1000 * timer.total_s() / max(processed, 1), 3),
        "slowest_statements": _by_statement(timer, processed),
        "load": load,
    }


def _by_statement(timer: common.QueryTimer, count: int, top: int = 5) -> list[dict[str, Any]]:
    """The statements that took the most time in all: ms per appointment, runs, and for a
    SELECT the database's plan for it."""
    total: dict[str, list[float]] = {}
    for seconds, sql in timer.queries:
        total.setdefault(sql, []).append(seconds)
    params = {}
    for sql, args in timer.captured:
        params.setdefault(sql, args)
    ranked = sorted(total.items(), key=lambda kv: sum(kv[1]), reverse=True)[:top]
    return [
        {
            "ms_each": round(1000 * sum(times) / max(count, 1), 3),
            "runs": len(times),
            "sql": sql[:600],
            **({"plan": _explain(sql, params[sql])} if sql in params else {}),
        }
        for sql, times in ranked
    ]


def _explain(sql: str, params: Any) -> list[str]:
    from django.db import connection

    sqlite = connection.vendor == "sqlite"
    with connection.cursor() as cur:
        cur.execute(("EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN ") + sql, params)
        return [str(row[-1] if sqlite else row[0]) for row in cur.fetchall()]


def _planning(world: dict[str, Any], cfg: dict[str, Any], profiles: list[dict]) -> dict[str, Any]:
    from openline.campaigns.models import Appointment, Reminder, ReminderStatus

    org, booked, budget = world["org"], world["booked"], cfg["phase_budget"]
    save = _save(org)
    out = {"book": _timed_phase("book a day (new)", booked, save, budget)}
    if not out["book"]["complete"]:  # the rest of the day in bulk: the sweeps see them all
        _bulk_day(world, world["last_day"][out["book"]["processed"] :])
    later = [
        dataclasses.replace(d, starts_at=d.starts_at + dt.timedelta(minutes=30)) for d in booked
    ]
    ids = list(
        Appointment.objects.filter(external_id__in=[d.external_id for d in booked]).values_list(
            "pk", flat=True
        )
    )
    planned = Reminder.objects.filter(appointment_id__in=ids, status=ReminderStatus.PLANNED)
    out["book"]["planned"] = planned.count()
    out["move"] = _timed_phase("move a day (+30 min)", later, save, budget)
    out["move"]["planned"] = planned.count()
    moved = out["move"]["processed"]
    current = later[:moved] + booked[moved:]  # the day as it is now
    out["unchanged"] = _timed_phase("push it unchanged", current, save, budget)
    day = list(Appointment.objects.filter(pk__in=ids).order_by("pk"))
    out["replan"] = _timed_phase("re-plan a day (reminders_plan)", day, _replan, budget)
    out["replan"]["planned"] = planned.count()
    out.update(_bulk_phases(ids, budget))
    missed = [name for name in PLAN_PHASES if out[name]["day_s"] >= TARGET_PLAN_S]
    if cfg["profile"] == "always" or (cfg["profile"] == "auto" and missed):
        sample = [
            dataclasses.replace(d, starts_at=d.starts_at + dt.timedelta(minutes=15))
            for d in current[: cfg["profile_sample"]]
        ]
        prof = cProfile.Profile()
        started = time.perf_counter()
        prof.enable()
        for data in sample:
            save(data)
        prof.disable()
        took = time.perf_counter() - started
        path = Path(f"{cfg['profile_prefix']}-move.pstats")
        profiles.append(
            {
                "what": f"appointment_save moving {len(sample):,} appointments"
                f" ({took:.2f} s under cProfile)",
                **common.save_profile(prof, path),
            }
        )
    return out


def _bulk_phases(ids: list[int], budget: float) -> dict[str, dict[str, Any]]:
    """The day planned by reminders_plan_many, PLAN_BATCH appointments per transaction:
    first from nothing (its reminders deleted, as after a bulk load), then moved 45 min
    by one UPDATE (every planned reminder withdrawn and planned again)."""
    from django.db import transaction
    from django.db.models import F

    from openline.campaigns.models import Appointment, Reminder, ReminderStatus
    from openline.campaigns.reminders import PLAN_BATCH, reminders_plan_many

    chunks = [ids[i : i + PLAN_BATCH] for i in range(0, len(ids), PLAN_BATCH)]

    def plan(chunk: list[int]) -> int:
        with transaction.atomic():
            return reminders_plan_many(list(Appointment.objects.filter(pk__in=chunk)))

    planned = Reminder.objects.filter(appointment_id__in=ids, status=ReminderStatus.PLANNED)
    Reminder.objects.filter(appointment_id__in=ids).delete()
    out = {"plan_bulk": _timed_phase("plan a day in bulk", chunks, plan, budget)}
    out["plan_bulk"]["planned"] = planned.count()
    Appointment.objects.filter(pk__in=ids).update(
        starts_at=F("starts_at") + dt.timedelta(minutes=45)
    )
    out["move_bulk"] = _timed_phase("move a day, re-plan in bulk", chunks, plan, budget)
    out["move_bulk"]["planned"] = planned.count()
    return out


def _retime(world: dict[str, Any]) -> dict[str, Any]:
    """The rare type's "2 hours before" rule made "3 hours before" (reminder_rule_save:
    its planned reminders withdrawn, a task enqueued), then the task worker's loop runs the
    task (reminders_replan_type: every upcoming appointment of the type planned again)."""
    from django.utils import timezone

    from openline.campaigns.models import Appointment, Reminder, ReminderStatus
    from openline.campaigns.reminders import reminder_rule_save
    from openline.runtime.worker import run_ready_tasks

    rule = world["rules"][RETIMED][1]
    upcoming = Appointment.objects.filter(
        appointment_type_id=rule.appointment_type_id, starts_at__gt=timezone.now()
    ).count()
    load = common.load()
    started = time.perf_counter()
    reminder_rule_save(
        organization_id=world["org"].pk,
        actor_id=None,
        rule=rule,
        type_id=None,
        new_type="",
        fields={"minutes_before": 180},
    )
    saved = time.perf_counter()
    tasks = run_ready_tasks()
    done = time.perf_counter()
    planned = Reminder.objects.filter(rule=rule, status=ReminderStatus.PLANNED).count()
    common.progress(
        f"re-timed a rule: saved in {saved - started:.2f} s, its {upcoming:,} appointments"
        f" planned again in {done - saved:.2f} s ({tasks} task(s)); {planned:,} planned"
    )
    return {
        "type": RETIMED,
        "upcoming": upcoming,
        "save_s": round(saved - started, 3),
        "replan_s": round(done - saved, 3),
        "tasks": tasks,
        "planned": planned,
        "ms_each": round(1000 * (done - saved) / max(upcoming, 1), 2),
        "load": load,
    }


# --- the scheduler's sweep ------------------------------------------------------------------


def _sweep_once() -> tuple[float, int, int]:
    """One reminders_send_due as the scheduler runs it: (seconds, settled, queries)."""
    from django.db import connection

    from openline.campaigns.reminders import reminders_send_due

    timer = common.QueryTimer()
    with connection.execute_wrapper(timer):
        started = time.perf_counter()
        settled = reminders_send_due()
        seconds = time.perf_counter() - started
    return seconds, settled, len(timer.queries)


def _make_due(reminder_ids: list[int]) -> None:
    from django.utils import timezone

    from openline.campaigns.models import Reminder

    Reminder.objects.filter(pk__in=reminder_ids).update(
        due_at=timezone.now() - dt.timedelta(seconds=1)
    )


def _sweep_runs(what: str, runs: int, before: Callable[[int], None]) -> dict[str, Any]:
    load = common.load()
    times, settled, queries = [], 0, 0
    for i in range(runs):
        before(i)
        seconds, done, count = _sweep_once()
        times.append(seconds)
        settled += done
        queries = max(queries, count)
    common.progress(f"sweep, {what}: {[round(t * 1000, 1) for t in times]} ms, settled {settled}")
    return {
        "what": what,
        "runs_ms": [round(t * 1000, 2) for t in times],
        "median_s": round(statistics.median(times), 4),
        "max_s": round(max(times), 4),
        "settled": settled,
        "queries": queries,
        "load": load,
    }


def _sweeps(world: dict[str, Any], cfg: dict[str, Any], profiles: list[dict]) -> dict[str, Any]:
    from openline.campaigns.models import Reminder, ReminderStatus

    # One reminder per patient (the "2 days before" one), soonest first: a patient gets one
    # text here, under the limits.
    candidates = list(
        Reminder.objects.filter(status=ReminderStatus.PLANNED, rule__days_before__isnull=False)
        .order_by("due_at", "pk")
        .values_list("pk", flat=True)[: cfg["few"] * cfg["sweeps"] + cfg["batch"]]
    )
    few = [candidates[i * cfg["few"] : (i + 1) * cfg["few"]] for i in range(cfg["sweeps"])]
    batch = candidates[cfg["few"] * cfg["sweeps"] :]
    out = {
        "planned": Reminder.objects.filter(status=ReminderStatus.PLANNED).count(),
        "steady": _sweep_runs("nothing due", cfg["sweeps"], lambda i: None),
        "few": _sweep_runs(f"{cfg['few']} due", cfg["sweeps"], lambda i: _make_due(few[i])),
    }
    out["batch"] = _batch(world, batch)
    missed = [name for name in SWEEP_PHASES if out[name]["max_s"] >= TARGET_SWEEP_S]
    if cfg["profile"] == "always" or (cfg["profile"] == "auto" and missed):
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(cfg["sweeps"]):
            _sweep_once()
        prof.disable()
        path = Path(f"{cfg['profile_prefix']}-sweep.pstats")
        what = f"{cfg['sweeps']} sweeps with nothing due"
        profiles.append({"what": what, **common.save_profile(prof, path)})
    return out


def _batch(world: dict[str, Any], reminder_ids: list[int]) -> dict[str, Any]:
    from collections import Counter

    from openline.campaigns.models import Reminder, ReminderStatus
    from openline.messaging.models import Message, MessageKind
    from openline.providers.sandbox.models import SandboxMessage
    from openline.runtime.worker import run_ready_tasks

    load = common.load()
    before = SandboxMessage.objects.count()
    _make_due(reminder_ids)
    seconds, settled, queries = _sweep_once()
    sent = Reminder.objects.filter(pk__in=reminder_ids, status=ReminderStatus.SENT).count()
    started = time.perf_counter()
    dispatch_s = settled_s = None
    deadline = started + 300
    while time.perf_counter() < deadline:
        ran = run_ready_tasks()
        if dispatch_s is None and SandboxMessage.objects.count() - before >= sent:
            dispatch_s = time.perf_counter() - started
        if not ran and dispatch_s is not None:
            settled_s = time.perf_counter() - started
            break
        if not ran:
            time.sleep(0.05)
    phones = Reminder.objects.filter(pk__in=reminder_ids).values_list(
        "appointment__contact__phone", flat=True
    )
    carrier = Counter(
        SandboxMessage.objects.filter(to__in=list(phones)).values_list("to", flat=True)
    )
    texts = Counter(
        Message.objects.filter(
            kind=MessageKind.REMINDER, conversation__contact__phone__in=list(phones)
        ).values_list("conversation__contact__phone", flat=True)
    )
    once = len(reminder_ids) == sent and set(carrier.values()) == {1} == set(texts.values())
    common.progress(
        f"due batch: sweep {seconds:.2f} s ({settled} settled, {sent} sent), carrier has them"
        f" after {dispatch_s} s, all reported after {settled_s} s"
    )
    return {
        "due": len(reminder_ids),
        "sweep_s": round(seconds, 3),
        "settled": settled,
        "sent": sent,
        "ms_each": round(1000 * seconds / max(settled, 1), 2),
        "queries": queries,
        "queries_each": round(queries / max(settled, 1), 1),
        "dispatch_s": None if dispatch_s is None else round(dispatch_s, 2),
        "settled_s": None if settled_s is None else round(settled_s, 2),
        "carrier_texts": sum(carrier.values()),
        "all_sent_once": once and len(carrier) == sent,
        "load": load,
    }


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(json.loads(sys.argv[2]))
    else:
        sys.exit(main())
