"""Broadcast benchmark (issue 15): preview and queue a broadcast to 100,000 people, and the
dispatcher's achieved rate against the sandbox carrier, on SQLite and on PostgreSQL.

    make bench-broadcast               # or: .venv/bin/python bench/broadcast.py
    .venv/bin/python bench/broadcast.py --quick              # 10,000 contacts, short runs
    .venv/bin/python bench/broadcast.py --database sqlite    # one backend
    .venv/bin/python bench/broadcast.py --rates 100 --durations 30 --profile always

Each backend gets a fresh database (SQLite: a temp var dir, the embedded profile;
PostgreSQL: the throw-away database `openline_bench_broadcast` on PG_URL, dropped afterwards,
with Redis at --redis-url as the server profile has it: the rate limiter, the channel layer
and the scheduler lock live there). The seed (bulk inserts): one organization, 100,000
contacts with distinct valid numbers over area codes in six US time zones (and a few
Canadian and British ones), names, 10 tags, the consent ledger (most opted in, some opted out,
some with an opt-out request waiting, some with none), landlines and VoIP numbers, credits
added by an admin, and 4 sandbox numbers.

Timed, in this order:
- **preview** (`broadcast_preview`) of an everyone audience and of a tag audience, with the
  default sending window and a fixed `now` at which some zones are closed (so the waiting
  groups are computed), then with the window open all day. Target: each under 1 s.
- **queue** (`broadcast_queue`: plans every recipient row and reserves the credits, in one
  transaction) of the everyone audience: rolled back --queue-repeats - 1 times, then
  committed. Target: each under 20 s.
- **dispatcher**: `openline run` (its worker child runs the runner's turns and the message
  dispatch tasks; the sandbox carrier records each text it accepts) sends the queued
  broadcast at each of --rates segments/s over the 4 numbers, one after the other (resume,
  run, pause, drain). The achieved rate is the carrier's records per second over the steady
  window (after --warmup s until the pause). Target: at least 0.95 x the configured rate.
  For a rate that misses, the worker is run once more under cProfile (--profile auto).

Writes bench/results/broadcast-<UTC time>.json (and a .pstats file per profile). See
bench/README.md for how to read it. The issue's 100,000-row CSV import is not measured here
(it did not exist when this was written).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import json
import os
import pstats
import random
import sqlite3
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import common
from common import fmt, log

BENCH_DB = "openline_bench_broadcast"
TARGET_PREVIEW_S = 1.0
TARGET_QUEUE_S = 20.0
TARGET_RATE_FRACTION = 0.95
SENDERS = 4
# The server profile's Redis, in a database of its own (the test suite uses 15).
REDIS_URL = "redis://127.0.0.1:6379/14"
# Short enough that name + footer stay one GSM-7 segment: segments/s = texts/s.
BODY = "Hi {first_name}, the food pantry is open Saturday 10am-2pm at 412 Main St."

# Area codes by the zone libphonenumber gives them, with the share of contacts in each
# zone. 907 (Alaska) spans several zones: those recipients get the organization's zone.
# fmt: off
ZONES = {
    "America/New_York": (0.44, ["212", "718", "202", "305", "404", "617", "215", "412", "704",
                                "813"]),
    "America/Chicago": (0.27, ["312", "773", "214", "713", "504", "612", "816", "901", "615"]),
    "America/Denver": (0.05, ["303", "801", "505", "406", "208"]),
    "America/Phoenix": (0.03, ["602"]),
    "America/Los_Angeles": (0.18, ["213", "310", "415", "206", "503", "702", "916"]),
    "Pacific/Honolulu": (0.01, ["808"]),
    "": (0.01, ["907"]),
}
FIRST_NAMES = [
    "Maria", "James", "Aisha", "Daniel", "Keisha", "Luis", "Emily", "Tyrone", "Sofia", "Michael",
    "Jasmine", "David", "Ana", "Kevin", "Fatima", "Robert", "Chloe", "Marcus", "Priya", "Anthony",
    "Grace", "Jamal", "Olivia", "Carlos", "Hannah", "Andre", "Mei", "Jose", "Destiny", "Brian",
    "Leticia", "Omar", "Rachel", "Darnell", "Vanessa", "Eric", "Imani", "Juan", "Megan",
    "Terrence", "Nadia", "Chris", "Lauren", "DeShawn", "Rosa", "Tyler", "Amara", "Kenji",
]
LAST_NAMES = [
    "Garcia", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson",
    "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez",
    "Nguyen", "Okafor", "Patel", "Kim", "Washington", "Chen", "Singh", "Mensah", "Kowalski",
]
TAGS = [
    "food pantry", "housing", "youth program", "seniors", "volunteers", "Spanish",
    "Saturday class", "newsletter", "donors", "board",
]
# fmt: on


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--preview-repeats", type=int, default=5)
    parser.add_argument(
        "--queue-repeats", type=int, default=3, help="queue runs; all but the last rolled back"
    )
    parser.add_argument(
        "--rates", default="10,100,1000", help="dispatcher rates (segments/s over 4 numbers)"
    )
    parser.add_argument("--durations", default="45,30,30", help="seconds each rate runs")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds left out at start")
    parser.add_argument("--drain-timeout", type=float, default=180.0)
    parser.add_argument(
        "--profile",
        choices=["auto", "always", "never"],
        default="auto",
        help="cProfile the queue and the worker: when they miss a target, always or never",
    )
    parser.add_argument("--profile-seconds", type=float, default=20.0)
    parser.add_argument(
        "--redis-url", default=REDIS_URL, help="Redis for the PostgreSQL run ('' for none)"
    )
    parser.add_argument("--quick", action="store_true", help="10,000 contacts, short runs")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    if args.quick:  # what was not given explicitly
        quick = {"contacts": 10_000, "preview_repeats": 3, "queue_repeats": 2, "rates": "10,100"}
        quick.update(durations="15,10", warmup=3.0, profile_seconds=8.0)
        for name, value in quick.items():
            if getattr(args, name) == parser.get_default(name):
                setattr(args, name, value)
    rates = [float(r) for r in args.rates.split(",")]
    durations = [float(d) for d in args.durations.split(",")]
    if len(durations) != len(rates):
        parser.error("give one duration per rate")
    backends = ["sqlite", "postgres"] if args.database == "both" else [args.database]

    report = common.Report("broadcast", sqlite=sqlite3.sqlite_version)
    results = report.results
    results.update(
        settings=vars(args),
        targets={
            "preview_s": TARGET_PREVIEW_S,
            "queue_s": TARGET_QUEUE_S,
            "rate_fraction": TARGET_RATE_FRACTION,
        },
        code=common.code_state(),
        not_measured="issue 15's 100,000-row CSV import (it did not exist when this was written)",
    )
    stamp = report.started.strftime("%Y%m%dT%H%M%SZ")
    for backend in backends:
        cfg = {
            "contacts": args.contacts,
            "preview_repeats": args.preview_repeats,
            "queue_repeats": args.queue_repeats,
            "rates": list(zip(rates, durations, strict=True)),
            "warmup": args.warmup,
            "drain_timeout": args.drain_timeout,
            "profile": args.profile,
            "profile_seconds": args.profile_seconds,
            "redis_url": args.redis_url if backend == "postgres" else "",
            "profile_prefix": str(common.RESULTS / f"broadcast-{stamp}-{backend}"),
        }
        log(f"{backend}: seeding {args.contacts:,} contacts, then preview, queue, dispatcher ...")
        try:
            child = [__file__, "--child", json.dumps(cfg)]
            results[backend] = common.run_child(backend, child, pg_database=BENCH_DB)
        except Exception as exc:  # noqa: BLE001 -- recorded, the other backend still runs
            results[backend] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    return report.conclude(summarize, print_summary, strict=args.strict)


# --- summary --------------------------------------------------------------------------------


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    checks: dict[str, bool] = {}
    for backend in ("sqlite", "postgres"):
        r = results.get(backend)
        if r is None:
            continue
        if "error" in r:
            checks[f"{backend}_ran"] = False
            continue
        checks[f"{backend}_preview"] = all(
            p["max_s"] < TARGET_PREVIEW_S for p in r["preview"].values()
        )
        checks[f"{backend}_queue"] = r["queue"]["max_s"] < TARGET_QUEUE_S
        for run in r["dispatcher"]["runs"]:
            checks[f"{backend}_rate_{run['rate']:g}"] = run["passed"]
    return {"checks": checks}


def print_summary(results: dict[str, Any], summary: dict[str, Any]) -> None:
    log("\n=== OpenLine broadcast benchmark ===")
    common.log_code(results.get("code", {}))
    for backend in ("sqlite", "postgres"):
        r = results.get(backend)
        if r is None:
            continue
        log(f"\n{backend}" + (f" {r.get('server_version', '')}" if "error" not in r else ""))
        if "error" in r:
            log(f"  FAILED: {r['error']}")
            continue
        s = r["seed"]
        log(
            f"  seeded {s['contacts']:,} contacts, {s['consent_events']:,} consent events,"
            f" {s['tag_links']:,} tag links in {s['seed_s']} s"
        )
        log(
            f"  {'preview':<34} {'first s':>8} {'median s':>9} {'max s':>7}  selected  eligible"
            "  waiting zones"
        )
        for name, p in r["preview"].items():
            verdict = "PASS" if p["max_s"] < TARGET_PREVIEW_S else "FAIL"
            log(
                f"  {name:<34} {p['first_s']:>8.3f} {p['median_s']:>9.3f} {p['max_s']:>7.3f}"
                f"  {p['selected']:>8,}  {p['eligible']:>8,}  {p['waiting_zones']:>13}"
                f"  {verdict} (< {TARGET_PREVIEW_S:g} s)  load {p['load']}"
            )
        q = r["queue"]
        verdict = "PASS" if q["max_s"] < TARGET_QUEUE_S else "FAIL"
        log(
            f"  queue: {q['recipients']:,} recipient rows, {q['credits']:,} credits reserved;"
            f" runs {', '.join(f'{t:.2f}' for t in q['runs_s'])} s (last committed)"
            f"  {verdict} (< {TARGET_QUEUE_S:g} s)  load {q['load']}"
        )
        b = q.get("breakdown")
        if b:
            log(
                f"    one more run, its queries timed: {b['wall_s']} s, of which SQL"
                f" {b['sql_s']} s in {b['queries']} queries (bulk insert {b['insert_s']} s,"
                f" the eligible query {b['select_s']} s), Python {b['python_s']} s"
            )
        d = r["dispatcher"]
        log(
            f"  dispatcher: `openline run` ({d['worker']}); runner turns up to"
            f" {d['design']['max_per_turn']} recipients, every"
            f" {d['design']['run_interval_s']} s + the turn"
            + (
                f", keeping {d['design']['ahead_s']:g} s of texts (at most"
                f" {d['design']['max_waiting']}) waiting for dispatch"
                if "ahead_s" in d["design"]
                else ""
            )
        )
        log(
            f"    {'rate/s':>7} {'achieved':>9} {'ratio':>6} {'sent':>6} {'window s':>8}"
            f" {'worker busy':>11} {'turns':>5} {'chains':>6} {'gap s':>5} {'turn ms p50/max':>16}"
            f" {'backlog':>7}"
            f" {'CPU server/db/other %':>22}"
        )
        for run in d["runs"]:
            cpu = run["cpu"]
            turns = run["tasks"].get("run_broadcast", {})
            verdict = "PASS" if run["passed"] else "FAIL"
            log(
                f"    {run['rate']:>7g} {run['achieved']:>9.1f} {run['ratio']:>6.2f}"
                f" {run['steady_sent']:>6} {run['window_s']:>8.1f}"
                f" {run['worker_busy_pct']:>10.0f}% {turns.get('count', 0):>5}"
                f" {run.get('chains', '-'):>6}"
                f" {fmt(run['turn_gap_s'], 2):>5}"
                f" {fmt(turns.get('p50_ms'), 0):>7}/{fmt(turns.get('max_ms'), 0):<8}"
                f" {run['backlog_at_pause']:>7}"
                f" {cpu.get('server_pct', 0):>7.0f}/{cpu.get('postgres_pct', 0):.0f}/"
                f"{cpu['other_pct']:.0f}  {verdict}  load {run['load']}"
            )
            log(
                "            task threads: "
                + ", ".join(
                    f"{name} {t['count']} x {t['mean_ms']:g} ms = {t['total_s']} s"
                    for name, t in run["tasks"].items()
                )
                + f" of {run['window_s']} s"
                + "; busy by queue: "
                + ", ".join(f"{q} {p:g}%" for q, p in run.get("busy_pct_by_queue", {}).items())
                + ("" if run["drain_s"] is not None else "; NOT drained: the next run overlaps")
            )
        for prof in r.get("profiles", []):
            log(f"  profile ({prof['what']}): {prof.get('pstats', prof.get('error', ''))}")
            if prof.get("queries_by_task"):
                log(f"    queries by task while profiled: {prof['queries_by_task']}")
            for line in prof.get("top", [])[:12]:
                log(f"    {line}")
    common.log_footer(results["machine"], summary["checks"])


# --- the child: seed, then time -------------------------------------------------------------


def child(cfg: dict[str, Any]) -> None:
    out: dict[str, Any] = common.child_django(redis_url=cfg["redis_url"])
    from django.db import connection

    t = time.monotonic()
    world = _seed(cfg["contacts"])
    if connection.vendor == "postgresql":
        # Autovacuum analyzes freshly loaded tables within about a minute; a broadcast
        # after an import meets the same statistics.
        with connection.cursor() as cur:
            cur.execute("ANALYZE")
    out["seed"] = {**world.pop("counts"), "seed_s": round(time.monotonic() - t, 1)}
    common.progress(f"seeded in {out['seed']['seed_s']} s: {out['seed']}")
    out["preview"] = _previews(world, cfg["preview_repeats"])
    broadcast = world["everyone"]
    out["queue"], profile = _queue(world, cfg)
    out["profiles"] = [profile] if profile else []
    out["dispatcher"] = _dispatcher(world, broadcast, cfg, out["profiles"])
    print(json.dumps(out, default=str))


def _phones(rng: random.Random, count: int) -> list[str]:
    """Distinct valid numbers: US over ZONES by their shares, 0.3% Canadian, 0.2% British.
    None ends in the sandbox's test suffixes (0666 opted out, 0999 undeliverable)."""
    import phonenumbers

    zones = list(ZONES.values())
    cum = list(_cumulative([share for share, _ in zones]))
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < count:
        r = rng.random()
        if r < 0.003:
            area = rng.choice(["416", "604", "514"])
            e164 = f"+1{area}{rng.randint(200, 999)}{rng.randint(0, 9999):04d}"
        elif r < 0.005:
            e164 = f"+447{rng.randint(400, 999)}{rng.randint(0, 999999):06d}"
        else:
            codes = rng.choices(zones, cum_weights=cum)[0][1]
            exchange = rng.randint(200, 999)
            if exchange % 100 == 11 or exchange == 555:
                continue
            e164 = f"+1{rng.choice(codes)}{exchange}{rng.randint(0, 9999):04d}"
        if e164 in seen or e164.endswith(("0666", "0999")):
            continue
        if not phonenumbers.is_valid_number(phonenumbers.parse(e164)):
            continue
        seen.add(e164)
        out.append(e164)
    return out


def _cumulative(weights: list[float]) -> Any:
    total = 0.0
    for w in weights:
        total += w
        yield total


def _seed(count: int) -> dict[str, Any]:  # noqa: C901 -- one linear seed
    from datetime import timedelta

    from django.db import transaction
    from django.utils import timezone

    from openline.billing.models import CreditKind
    from openline.billing.services import credits_add
    from openline.campaigns.services import broadcast_create
    from openline.contacts.models import (
        ConsentEvent,
        ConsentKind,
        ConsentSource,
        Contact,
        NumberType,
        Tag,
    )
    from openline.core.models import Membership, Role, User
    from openline.core.services import organization_create
    from openline.providers.services import number_add

    rng = random.Random(15)
    now = timezone.now()
    org = organization_create(name="Bench", slug="bench", timezone_name="America/Chicago")
    admin = User.objects.create(email="admin@bench.test", password="!")
    Membership.objects.create(organization=org, user=admin, role=Role.ADMIN)
    numbers = [
        number_add(
            organization=org,
            provider="sandbox",
            e164=f"+1202555{100 + i:04d}",
            name=f"Sender {i + 1}",
            segments_per_second=1.0,
        )
        for i in range(SENDERS)
    ]
    phones = _phones(rng, count)
    tag_weights = list(_cumulative([1.0 / (k + 1) for k in range(len(TAGS))]))
    stats = dict.fromkeys(
        ("landline", "voip", "no_consent", "opted_out", "opt_out_pending", "dismissed"), 0
    )
    with transaction.atomic():
        tags = Tag.objects.bulk_create(Tag(organization=org, name=name) for name in TAGS)
        contacts = []
        for phone in phones:
            r = rng.random()
            kind = NumberType.UNKNOWN  # what a NANP number's lookup gives
            if r < 0.03:
                kind = NumberType.LANDLINE
                stats["landline"] += 1
            elif r < 0.04:
                kind = NumberType.VOIP
                stats["voip"] += 1
            elif r < 0.30:
                kind = NumberType.MOBILE  # corrected by staff, or an import said so
            named = rng.random() < 0.93
            name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}" if named else ""
            contacts.append(Contact(organization=org, phone=phone, name=name, number_type=kind))
        contacts = Contact.objects.bulk_create(contacts, batch_size=2000)
        through = Contact.tags.through
        links = []
        for contact in contacts:
            k = rng.choices((0, 1, 2, 3), weights=(20, 40, 25, 15))[0]
            for tag in {rng.choices(tags, cum_weights=tag_weights)[0] for _ in range(k)}:
                links.append(through(contact_id=contact.pk, tag_id=tag.pk))
        through.objects.bulk_create(links, batch_size=5000)
        events = []

        def event(phone: str, kind: str, days_ago: float) -> None:
            events.append(
                ConsentEvent(
                    organization=org,
                    phone=phone,
                    kind=kind,
                    source=ConsentSource.IMPORT if kind == ConsentKind.OPT_IN else "keyword",
                    evidence="registration form" if kind == ConsentKind.OPT_IN else "",
                    created_at=now - timedelta(days=days_ago),
                )
            )

        for phone in phones:
            r = rng.random()
            age = rng.uniform(30, 700)
            if r < 0.06:
                stats["no_consent"] += 1
                if r < 0.01:
                    event(phone, ConsentKind.HELP, age)  # asked for help, never opted in
                continue
            event(phone, ConsentKind.OPT_IN, age)
            if r < 0.10:
                stats["opted_out"] += 1
                event(phone, ConsentKind.OPT_OUT, age / 2)
            elif r < 0.11:
                stats["opt_out_pending"] += 1
                event(phone, ConsentKind.OPT_OUT_REQUEST, age / 3)
            elif r < 0.12:
                stats["dismissed"] += 1
                event(phone, ConsentKind.OPT_OUT_REQUEST, age / 2)
                event(phone, ConsentKind.REQUEST_DISMISSED, age / 3)
            elif r < 0.125:  # opted out, then back in
                event(phone, ConsentKind.OPT_OUT, age / 2)
                event(phone, ConsentKind.OPT_IN, age / 4)
            elif r < 0.20:  # opted in twice (two sign-up forms)
                event(phone, ConsentKind.OPT_IN, age / 2)
        ConsentEvent.objects.bulk_create(events, batch_size=5000)
    credits_add(
        organization_id=org.pk,
        credits=10 * count,
        note="bench invoice",
        actor_id=admin.pk,
        kind=CreditKind.PURCHASE,
    )
    ids = [n.pk for n in numbers]
    everyone = broadcast_create(
        organization_id=org.pk,
        actor_id=admin.pk,
        name="Pantry hours (everyone)",
        body=BODY,
        audience={"everyone": True},
        number_ids=ids,
    )
    tagged = broadcast_create(
        organization_id=org.pk,
        actor_id=admin.pk,
        name="Pantry hours (tags)",
        body=BODY,
        audience={"include_tags": [t.pk for t in tags[:3]], "exclude_tags": [tags[9].pk]},
        number_ids=ids,
    )
    return {
        "org": org,
        "admin": admin,
        "numbers": numbers,
        "everyone": everyone,
        "tagged": tagged,
        "counts": {
            "contacts": len(contacts),
            "consent_events": len(events),
            "tag_links": len(links),
            **stats,
        },
    }


# --- preview --------------------------------------------------------------------------------


def _previews(world: dict[str, Any], repeats: int) -> dict[str, Any]:
    from django.utils import timezone

    from openline.campaigns.models import SendingWindow

    # 14:30 UTC: open in New York and Chicago, closed from Denver westwards (08:00-21:00).
    now = timezone.now().replace(hour=14, minute=30, second=0, microsecond=0)
    out = {
        "everyone, default window": _time_preview(world["everyone"], now, repeats),
        "tags 3 in 1 out, default window": _time_preview(world["tagged"], now, repeats),
    }
    SendingWindow.objects.create(
        organization=world["org"], start=dt.time(0, 0), end=dt.time(23, 59, 59, 999999)
    )
    out["everyone, window open all day"] = _time_preview(world["everyone"], now, repeats)
    return out


def _time_preview(broadcast: Any, now: dt.datetime, repeats: int) -> dict[str, Any]:
    from openline.campaigns.services import broadcast_preview

    times, preview = [], None
    load = common.load()
    for _ in range(repeats):
        started = time.perf_counter()
        preview = broadcast_preview(broadcast=broadcast, now=now)
        times.append(time.perf_counter() - started)
    assert preview is not None
    common.progress(f"preview {broadcast.name}: {[round(t, 3) for t in times]} s")
    data = preview.as_dict()
    # One more, its queries timed (on SQLite a SELECT's time stops at its first rows).
    from django.db import connection

    timer = common.QueryTimer()
    with connection.execute_wrapper(timer):
        broadcast_preview(broadcast=broadcast, now=now)
    slowest = sorted(timer.queries, reverse=True)[:3]
    return {
        "first_s": round(times[0], 4),
        "median_s": round(statistics.median(times), 4),
        "max_s": round(max(times), 4),
        "runs_s": [round(t, 4) for t in times],
        "selected": data["selected"],
        "eligible": data["eligible"],
        "waiting_zones": len(data["waiting"]),
        "queries": len(timer.queries),
        "slowest_queries": [[round(t * 1000, 1), sql[:300]] for t, sql in slowest],
        "preview": data,
        "load": load,
    }


# --- queue ----------------------------------------------------------------------------------


def _reads_the_ledger(sql: str) -> bool:
    """The SELECTs that read the consent ledger (the plan's eligible query)."""
    return sql.startswith("SELECT") and "consentevent" in sql


def _fetch_all_s(statements: list[tuple[str, Any]]) -> float:
    """The time to run these statements again and fetch every row."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cur:
        for sql, params in statements:
            cur.execute(sql, params)
            cur.fetchall()
    return time.perf_counter() - started


def _queue(world: dict[str, Any], cfg: dict[str, Any]) -> tuple[dict[str, Any], dict | None]:
    from django.db import connection, transaction

    from openline.campaigns.models import BroadcastRecipient
    from openline.campaigns.services import broadcast_queue

    broadcast, admin = world["everyone"], world["admin"]
    times: list[float] = []
    load = common.load()

    def once(commit: bool) -> tuple[float, int, int]:
        with transaction.atomic():
            started = time.perf_counter()
            queued = broadcast_queue(broadcast=broadcast, actor_id=admin.pk)
            took = time.perf_counter() - started
            rows = BroadcastRecipient.objects.filter(broadcast=broadcast).count()
            credits = queued.reservation.credits
            if not commit:
                transaction.set_rollback(True)  # the draft as it was; nothing enqueued
        return took, rows, credits

    # One more rolled-back run first with every query timed: where the time goes.
    timer = common.QueryTimer(_reads_the_ledger)
    started = time.perf_counter()
    with connection.execute_wrapper(timer):
        once(commit=False)
    wall = time.perf_counter() - started
    inserts = sum(t for t, sql in timer.queries if sql.startswith('INSERT INTO "campaigns_'))
    others = sum(
        t
        for t, sql in timer.queries
        if not sql.startswith('INSERT INTO "campaigns_') and "consentevent" not in sql
    )
    # The plan's query of who is eligible, run again and fetched in full: its full cost on
    # SQLite too.
    select = _fetch_all_s(timer.captured)
    breakdown = {
        "wall_s": round(wall, 2),
        "queries": len(timer.queries),
        "insert_s": round(inserts, 2),  # recipients and sticky senders, bulk
        "select_s": round(select, 2),  # the eligible query fetched in full, timed apart
        "select_statements": len(timer.captured),
        "other_sql_s": round(others, 2),
        "sql_s": round(inserts + select + others, 2),
        "python_s": round(wall - inserts - select - others, 2),
    }
    common.progress(f"queue breakdown: {breakdown}")
    for i in range(cfg["queue_repeats"]):
        took, rows, credits = once(commit=i == cfg["queue_repeats"] - 1)
        times.append(took)
        common.progress(f"queue run {i + 1}: {took:.2f} s, {rows:,} rows, {credits:,} credits")
    result = {
        "runs_s": [round(t, 3) for t in times],
        "median_s": round(statistics.median(times), 3),
        "max_s": round(max(times), 3),
        "recipients": rows,
        "credits": credits,
        "breakdown": breakdown,
        "load": load,
        "load_at_end": common.load(),
    }
    profile = None
    if cfg["profile"] == "always" or (cfg["profile"] == "auto" and max(times) >= TARGET_QUEUE_S):
        # The committed broadcast is queued now: a rolled-back run of a second draft of
        # the same audience (its people have a sticky sender already) under cProfile.
        from openline.campaigns.services import broadcast_create

        draft = broadcast_create(
            organization_id=world["org"].pk,
            actor_id=admin.pk,
            name="Pantry hours (profiled)",
            body=BODY,
            audience={"everyone": True},
            number_ids=[n.pk for n in world["numbers"]],
        )
        prof = cProfile.Profile()
        with transaction.atomic():
            prof.enable()
            broadcast_queue(broadcast=draft, actor_id=admin.pk)
            prof.disable()
            transaction.set_rollback(True)
        path = Path(f"{cfg['profile_prefix']}-queue.pstats")
        profile = {"what": "queue (rolled back; a second broadcast: sticky senders exist)"}
        profile.update(common.save_profile(prof, path))
    return result, profile


# --- the dispatcher -------------------------------------------------------------------------


def _dispatcher(
    world: dict[str, Any], broadcast: Any, cfg: dict[str, Any], profiles: list[dict]
) -> dict[str, Any]:
    from django.conf import settings

    from openline.campaigns import services as campaigns
    from openline.campaigns.services import broadcast_pause
    from openline.messaging.services import dispatch
    from openline.runtime.worker import TaskWorker

    admin = world["admin"]
    broadcast_pause(broadcast=broadcast, actor_id=admin.pk)  # the first turn waits for us
    var_dir = Path(settings.VAR_DIR)
    port = common.free_port()
    env = {**os.environ, "PORT": str(port), "OPENLINE_PUBLIC_URL": f"http://{common.HOST}:{port}"}
    if settings.REDIS_URL:
        from openline.messaging.ratelimit import limiter

        limiter().reset()  # the bench's Redis database: no slots left from an earlier run
    server = common.Server("openline", [str(common.OPENLINE), "run"], env, port, var_dir / "ol.log")
    out: dict[str, Any] = {
        "worker": "a worker child: a task thread for the dispatch queue and one for the"
        " rest, with the scheduler"
        + (", rate limiter in Redis" if settings.REDIS_URL else ", rate limiter in memory"),
        "design": {
            "run_interval_s": campaigns.RUN_INTERVAL,
            "max_per_turn": campaigns.MAX_PER_TURN,
            "ahead_s": campaigns.AHEAD_SECONDS,
            "max_waiting": campaigns.MAX_WAITING,
            "chunk": campaigns.CHUNK,
            "max_inline_wait_s": dispatch.MAX_INLINE_WAIT,
            "task_poll_s": TaskWorker.POLL_SECONDS,
        },
        "runs": [],
    }
    missed: list[float] = []
    try:
        server.start()
        out["server"] = server.startup
        # The turn queuing enqueued must have run (and found the broadcast paused) before
        # the first resume: a resume while a turn is still waiting starts a second chain
        # of turns (see bench/README.md).
        out["server"]["idle_after_s"] = _drain(cfg["drain_timeout"])
        if out["server"]["idle_after_s"] is None:
            raise RuntimeError("the worker did not run the first turn")
        for rate, duration in cfg["rates"]:
            run = _rate_run(world, broadcast, server, rate, duration, cfg)
            out["runs"].append(run)
            if not run["passed"]:
                missed.append(rate)
    except Exception as exc:  # noqa: BLE001 -- recorded with the figures so far
        out["error"] = f"{type(exc).__name__}: {exc}"[:500]
        server.note_failure(out)
    finally:
        server.stop()
        out["server_log_errors"] = _log_errors(var_dir / "ol.log")
    if cfg["profile"] == "always":
        missed = [r for r, _ in cfg["rates"]]
    if cfg["profile"] != "never" and "error" not in out:
        for rate in missed:
            profiles.append(_profile_worker(world, broadcast, rate, cfg, env))
    return out


def _log_errors(path: Path) -> list[str]:
    with contextlib.suppress(OSError):
        lines = path.read_text(errors="replace").splitlines()
        return [line[:300] for line in lines if "ERROR" in line or "Traceback" in line][:20]
    return []


def _set_rate(numbers: list[Any], rate: float) -> None:
    from openline.providers.models import Number

    Number.objects.filter(pk__in=[n.pk for n in numbers]).update(
        segments_per_second=rate / len(numbers)
    )


def _pg_pids() -> list[int]:
    """The PostgreSQL backends serving this database's other connections (the server's)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cur:
        cur.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        )
        return [row[0] for row in cur.fetchall()]


def _rate_run(
    world: dict[str, Any],
    broadcast: Any,
    server: common.Server,
    rate: float,
    duration: float,
    cfg: dict[str, Any],
) -> dict[str, Any]:
    from django.utils import timezone

    from openline.campaigns.services import broadcast_pause, broadcast_resume

    admin = world["admin"]
    assert server.proc is not None
    _set_rate(world["numbers"], rate)
    load = common.load()
    meter = common.CpuMeter(
        {"server": common.with_children({server.proc.pid}), "postgres": _pg_pids()}
    )
    t0 = timezone.now()
    broadcast_resume(broadcast=broadcast, actor_id=admin.pk)
    time.sleep(duration)
    t_stop = timezone.now()
    cpu = meter.stop()
    broadcast_pause(broadcast=broadcast, actor_id=admin.pk)
    backlog = _backlog()
    drained_s = _drain(cfg["drain_timeout"])
    run = _measure(world, rate, t0, t_stop, cfg["warmup"])
    cpu_dict = cpu.as_dict(per_cpu=True)
    turns = _turns(t0, t_stop)
    run.update(
        turns=turns,
        # Turns enqueued to run at once after the resume: each starts a chain of turns (the
        # resume's own, and any other: see bench/README.md).
        chains=sum(1 for t in turns if t[0] is not None and t[0] >= 0 and t[0] == t[1]),
        duration_s=duration,
        backlog_at_pause=backlog,
        drain_s=drained_s,
        cpu=cpu_dict,
        load=load,
        load_at_end=common.load(),
    )
    common.progress(
        f"rate {rate:g}/s: achieved {run['achieved']}/s ({run['steady_sent']} in"
        f" {run['window_s']} s), worker busy {run['worker_busy_pct']}%, backlog {backlog},"
        f" drained in {drained_s} s, cpu {cpu_dict}"
    )
    return run


def _backlog() -> int:
    from openline.messaging.models import Message, MessageKind, MessageStatus

    return Message.objects.filter(
        kind=MessageKind.BULK, status__in=(MessageStatus.QUEUED, MessageStatus.SENDING)
    ).count()


def _drain(timeout: float) -> float | None:
    """Wait until every handed-over text reached the carrier and no task is waiting or
    running, a runner's next turn included (due later or not): a turn still waiting when
    the broadcast is resumed would start a second chain of turns. None: timed out."""
    from django_tasks_db.models import DBTaskResult

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        waiting = DBTaskResult.objects.filter(status__in=("READY", "RUNNING")).exists()
        if not waiting and not _backlog():
            return round(time.monotonic() - started, 1)
        time.sleep(0.5)
    return None


def _measure(
    world: dict[str, Any], rate: float, t0: dt.datetime, t_stop: dt.datetime, warmup: float
) -> dict[str, Any]:
    """Texts the carrier accepted per second over [t0 + warmup, t_stop], per number and per
    second, and what the worker thread did meanwhile (its task rows)."""
    from django.db.models import Max, Min

    from openline.messaging.models import Message, MessageKind
    from openline.providers.sandbox.models import SandboxMessage

    start = t0 + dt.timedelta(seconds=warmup)
    window = (t_stop - start).total_seconds()
    rows = list(
        SandboxMessage.objects.filter(created_at__gte=t0, created_at__lt=t_stop).values_list(
            "created_at", "number_id"
        )
    )
    steady = [(at, n) for at, n in rows if at >= start]
    per_number: dict[int, int] = {}
    for _, n in steady:
        per_number[n] = per_number.get(n, 0) + 1
    per_second: dict[int, int] = {}
    for at, _ in rows:
        second = int((at - t0).total_seconds())
        per_second[second] = per_second.get(second, 0) + 1
    segments = Message.objects.filter(kind=MessageKind.BULK).aggregate(
        lo=Min("segments"), hi=Max("segments")
    )
    achieved = len(steady) / window if window > 0 else 0.0
    first = min((at for at, _ in rows), default=None)
    return {
        "rate": rate,
        "per_number_configured": rate / SENDERS,
        "window_s": round(window, 2),
        "steady_sent": len(steady),
        "sent_from_resume": len(rows),
        "first_send_after_s": round((first - t0).total_seconds(), 2) if first else None,
        "achieved": round(achieved, 2),
        "ratio": round(achieved / rate, 3),
        "passed": achieved >= TARGET_RATE_FRACTION * rate,
        "per_number": {
            str(n.pk): round(per_number.get(n.pk, 0) / window, 2) for n in world["numbers"]
        },
        "segments_per_text": [segments["lo"], segments["hi"]],
        "per_second": [per_second.get(s, 0) for s in range(int((t_stop - t0).total_seconds()))],
        **_tasks(start, t_stop, window),
    }


def _tasks(start: dt.datetime, stop: dt.datetime, window: float) -> dict[str, Any]:
    """The task rows the worker ran in the window: count, and time each kind took (clipped
    to the window); their sum over the window is how busy the task threads were (all of
    them: up to 100 % each), also per queue (a thread each)."""
    from django_tasks_db.models import DBTaskResult

    rows = DBTaskResult.objects.filter(
        started_at__lt=stop, finished_at__gt=start, finished_at__isnull=False
    ).values_list("task_path", "started_at", "finished_at", "queue_name")
    kinds: dict[str, list[float]] = {}
    busy = 0.0
    by_queue: dict[str, float] = {}
    turn_starts = []
    for path, began, ended, queue in rows:
        took = max((min(ended, stop) - max(began, start)).total_seconds(), 0.0)
        busy += took
        by_queue[queue] = by_queue.get(queue, 0.0) + took
        name = path.rsplit(".", 1)[-1]
        kinds.setdefault(name, []).append((ended - began).total_seconds())
        if name == "run_broadcast":
            turn_starts.append(began)
    tasks = {}
    for name, took in kinds.items():
        took.sort()
        tasks[name] = {
            "count": len(took),
            "total_s": round(sum(took), 2),
            "mean_ms": round(1000 * statistics.fmean(took), 1),
            "p50_ms": round(1000 * common.percentile(took, 50), 1),
            "max_ms": round(1000 * took[-1], 1),
        }
    turn_starts.sort()
    gaps = [(b - a).total_seconds() for a, b in zip(turn_starts, turn_starts[1:], strict=False)]
    return {
        "tasks": tasks,
        "worker_busy_pct": round(100 * busy / window, 1) if window > 0 else 0.0,
        # A thread per queue (runtime.worker.task_workers): how busy each was.
        "busy_pct_by_queue": {
            queue: round(100 * took / window, 1) if window > 0 else 0.0
            for queue, took in sorted(by_queue.items())
        },
        "turn_gap_s": round(statistics.fmean(gaps), 2) if gaps else None,
    }


def _turns(t0: dt.datetime, stop: dt.datetime) -> list[list[float | None]]:
    """The runner's turns enqueued from a minute before `t0` to `stop`: seconds from `t0`
    when each was enqueued, due and started, and how long it ran."""
    from django_tasks_db.models import DBTaskResult, get_date_max

    rows = DBTaskResult.objects.filter(
        task_path__endswith=".run_broadcast",
        enqueued_at__gte=t0 - dt.timedelta(seconds=60),
        enqueued_at__lt=stop,
    ).values_list("enqueued_at", "run_after", "started_at", "finished_at")
    out = []
    for enqueued, run_after, began, ended in rows:
        due = enqueued if run_after == get_date_max() else run_after
        at = [round((x - t0).total_seconds(), 3) if x else None for x in (enqueued, due, began)]
        out.append(at + [round((ended - began).total_seconds(), 3) if ended and began else None])
    return sorted(out, key=lambda t: t[0] or 0)


def _profile_worker(
    world: dict[str, Any], broadcast: Any, rate: float, cfg: dict[str, Any], env: dict[str, str]
) -> dict[str, Any]:
    """The task threads of `openline run`'s worker child (runtime.worker.task_workers) in
    a process of their own, every task they run under cProfile for --profile-seconds while
    the broadcast sends at `rate`; then, unprofiled, they drain what was handed over."""
    from django.utils import timezone

    from openline.campaigns.services import broadcast_pause, broadcast_resume

    admin = world["admin"]
    _set_rate(world["numbers"], rate)
    path = Path(f"{cfg['profile_prefix']}-worker-{rate:g}.pstats")
    path.parent.mkdir(parents=True, exist_ok=True)
    seconds = cfg["profile_seconds"]
    var_dir = Path(env["OPENLINE_VAR_DIR"])
    proc = common.ClientProcess(
        Path(__file__),
        "--profile-worker",
        {"out": str(path), "seconds": seconds},
        var_dir / "profile-worker.json",
        var_dir / "profile-worker.log",
    )
    what = f"the task threads at {rate:g}/s for {seconds:g} s under cProfile"
    try:
        proc.line("READY", 60)
        t0 = timezone.now()
        broadcast_resume(broadcast=broadcast, actor_id=admin.pk)
        proc.line("PROFILED", seconds + 60)
        t_stop = timezone.now()
        broadcast_pause(broadcast=broadcast, actor_id=admin.pk)
        drained = _drain(cfg["drain_timeout"])
    except RuntimeError as exc:
        return {"what": what, "error": str(exc)[-2000:]}
    finally:
        proc.stop()
    run = _measure(world, rate, t0, t_stop, cfg["warmup"])
    common.progress(
        f"profiled the worker at {rate:g}/s: achieved {run['achieved']}/s under cProfile"
    )
    if not run["steady_sent"]:
        common.progress(f"the profiled worker sent nothing; its log:\n{proc.tail()}")
    return {
        "what": f"{what} (achieved {run['achieved']}/s while profiled)",
        "rate": rate,
        "achieved_while_profiled": run["achieved"],
        "tasks": run["tasks"],
        "drain_s": drained,
        "queries_by_task": _queries_by_task(Path(f"{path}.queries.json")),
        **common.save_profile(None, path),
    }


def _queries_by_task(path: Path) -> dict[str, Any]:
    """Per kind of task: how many ran and their queries; for the runner, per text queued."""
    with contextlib.suppress(OSError, ValueError):
        counts = json.loads(path.read_text())
        for c in counts.values():
            per = c["messages_inserted"] or c["tasks"]
            c["queries_per_text" if c["messages_inserted"] else "queries_per_task"] = round(
                c["queries"] / max(per, 1), 1
            )
        return counts
    return {}


def profile_worker(cfg_path: str) -> None:
    """The task threads `openline run`'s worker child and `openline worker` run
    (openline.runtime.worker.task_workers), with every task they run (worker.run_one) under
    cProfile for the first `seconds`, one profiler per thread, merged into one file; they
    go on unprofiled until SIGTERM."""
    import signal

    cfg = json.loads(Path(cfg_path).read_text())
    import django

    django.setup()
    from openline.runtime import worker as runtime_worker

    profiles: dict[int, cProfile.Profile] = {}
    profiling = threading.Event()
    in_task = threading.Lock()  # held while a profiled task runs; dumping waits for none
    busy = [0]
    run_one = runtime_worker.run_one

    def profiled_run_one(worker: Any, **kwargs: Any) -> bool:
        if not profiling.is_set():
            return run_one(worker, **kwargs)
        prof = profiles.setdefault(threading.get_ident(), cProfile.Profile())
        with in_task:
            busy[0] += 1
        prof.enable()  # in the worker's own thread: it profiles that thread only
        try:
            return run_one(worker, **kwargs)
        finally:
            prof.disable()
            with in_task:
                busy[0] -= 1

    runtime_worker.run_one = profiled_run_one  # the name TaskWorker.run looks up
    sys.setswitchinterval(0.001)  # as `openline worker` (runtime.cli.cmd_worker)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    workers = runtime_worker.task_workers()
    # Queries per kind of task while profiled, and the texts the runner's turns inserted.
    queries: dict[str, dict[str, int]] = {}
    for worker in workers:
        worker.worker.run_task = _counted(worker.worker.run_task, queries, profiling)  # type: ignore[method-assign]
    profiling.set()
    for worker in workers:
        worker.start()
    print("READY", flush=True)
    time.sleep(cfg["seconds"])
    profiling.clear()
    while True:  # the tasks under way have finished
        with in_task:
            if not busy[0]:
                break
        time.sleep(0.01)
    merged = pstats.Stats(*profiles.values()) if profiles else None
    if merged is not None:
        merged.dump_stats(cfg["out"])
    Path(cfg["out"] + ".queries.json").write_text(json.dumps(queries))
    print("PROFILED", flush=True)
    stop.wait()
    for worker in workers:
        worker.stop()
    for worker in workers:
        worker.join(timeout=30)


def _counted(run_task: Any, queries: dict[str, dict[str, int]], profiling: Any) -> Any:
    """``run_task``, counting each kind of task's queries while profiling."""
    lock = threading.Lock()

    def counted_run_task(result: Any) -> None:
        from django.db import connection

        if not profiling.is_set():
            return run_task(result)
        with lock:
            counts = queries.setdefault(
                result.task_path.rsplit(".", 1)[-1],
                dict.fromkeys(("tasks", "queries", "messages_inserted"), 0),
            )
            counts["tasks"] += 1

        def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            with lock:
                counts["queries"] += 1
                counts["messages_inserted"] += sql.startswith('INSERT INTO "messaging_message"')
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            return run_task(result)

    return counted_run_task


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(json.loads(sys.argv[2]))
    elif len(sys.argv) == 3 and sys.argv[1] == "--profile-worker":
        profile_worker(sys.argv[2])
    else:
        sys.exit(main())
