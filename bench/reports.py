"""Reports benchmark (issue 18): every report of the reports page at 100,000 conversations,
on SQLite and on PostgreSQL.

    make bench-reports                     # or: .venv/bin/python bench/reports.py
    .venv/bin/python bench/reports.py --quick               # 10,000 conversations, 3 repeats
    .venv/bin/python bench/reports.py --database sqlite     # one backend
    .venv/bin/python bench/reports.py --only answered,response_times --explain

Each backend gets a fresh database (SQLite: a temp var dir, the embedded profile, with no
ANALYZE since a deployment never runs one; PostgreSQL: the throw-away database
`benchreports` on PG_URL, dropped afterwards, with Redis db 8 as the server profile has it,
and ANALYZE after the seed as autovacuum would). The seed, bulk inserts in batches
(`Inserter`): one organization (America/Chicago), 3 inboxes, 24 members, 100,000
conversations over the last 12 months (SMS and web chat, more in the evenings; answered,
abandoned, a few still waiting or active; offline texts with their automatic reply; raised
priorities with their reason and risk levels), about 5 messages each with personal replies,
staff alerts (with their texts in the alert conversations) for the conversations that
waited, the consent ledger's opt-outs and opt-ins, a contact form in 2 versions answered for
~60 % of the answered conversations (choice, multiple choice, number), risk screener
responses, one broadcast to 10,000 people (its recipients, bulk texts in the closed system
conversations the send service makes, its credit reservation) and the credit ledger's debits
for every text sent.

Timed: every report in openline.reports.base.REPORTS, for the last 30 days and for the whole
year, all inboxes and one inbox: run once (warm), then --repeats times; the median counts.
Also the CSV of the report with the most rows. Target: each under 1 s
(`--strict` exits 1 when one misses). For a report over the target (or every one with
--explain) the results keep the plan of its slowest statements (EXPLAIN QUERY PLAN on SQLite,
EXPLAIN ANALYZE on PostgreSQL). Writes bench/results/reports-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import common
from common import log

BENCH_DB = "benchreports"
REDIS_URL = "redis://127.0.0.1:6379/8"
TARGET_S = 1.0
TZ = "America/Chicago"
CASES = [  # (label, days, one inbox)
    ("30d all", 30, False),
    ("30d inbox", 30, True),
    ("year all", 365, False),
    ("year inbox", 365, True),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated report keys")
    parser.add_argument("--explain", action="store_true", help="plans for every report")
    parser.add_argument(
        "--sqlite-analyze", action="store_true", help="run ANALYZE on SQLite after the seed"
    )
    parser.add_argument("--redis-url", default=REDIS_URL, help="Redis for PostgreSQL ('' none)")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument(
        "--variant",
        choices=["as-is", "native-tz"],
        default="as-is",
        help="native-tz: local dates and hours with Django's TruncDate/Extract(tzinfo=) on"
        " SQLite too (a Python function per row), as before reports.queries.local_date",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the seeded database (SQLite: /tmp/benchreports-sqlite; PostgreSQL: the"
        " benchreports database) and time it again next time instead of seeding: for trying"
        " a fix (a new migration is applied to it); BENCH_REPORTS_DIR=<dir> for another",
    )
    common.add_run_options(parser, quick="10,000 conversations, 3 repeats")
    args = parser.parse_args()
    if args.quick:
        args.conversations = min(args.conversations, 10_000)
        args.repeats = min(args.repeats, 3)
    backends = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    report = common.Report("reports")
    report.results["settings"] = {
        "conversations": args.conversations,
        "repeats": args.repeats,
        "only": args.only,
        "sqlite_analyze": args.sqlite_analyze,
        "variant": args.variant,
        "target_s": TARGET_S,
        "cases": [c[0] for c in CASES],
    }
    report.results["code"] = common.code_state()
    common.log_code(report.results["code"])
    results = report.results["backends"] = {}
    for backend in backends:
        log(f"{backend}: seeding {args.conversations:,} conversations, then timing")
        cfg = {
            "conversations": args.conversations,
            "repeats": args.repeats,
            "only": [k for k in args.only.split(",") if k],
            "explain": args.explain,
            "analyze": backend == "postgres" or args.sqlite_analyze,
            "redis_url": args.redis_url if backend == "postgres" else "",
            "seed": args.seed,
            "variant": args.variant,
        }
        results[backend] = run_backend(backend, cfg, reuse=args.reuse)
    return report.conclude(summarize, print_summary, strict=args.strict)


def run_backend(backend: str, cfg: dict[str, Any], *, reuse: bool) -> dict[str, Any]:
    """The child on a fresh database (common.run_child), or with --reuse on the kept one."""
    child = [__file__, "--child"]
    if not reuse:
        return common.run_child(backend, [*child, json.dumps(cfg)], pg_database=BENCH_DB)
    chosen = os.environ.get("BENCH_REPORTS_DIR", "")
    var_dir = Path(chosen) if chosen else Path(tempfile.gettempdir(), f"{BENCH_DB}-{backend}")
    var_dir.mkdir(exist_ok=True)
    env = common.bench_env(var_dir)
    if backend == "postgres":
        import psycopg

        with psycopg.connect(common.PG_URL, autocommit=True) as conn:
            if not conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]
            ).fetchone():
                conn.execute(f"CREATE DATABASE {BENCH_DB}")
        env["DATABASE_URL"] = common.PG_URL.rsplit("/", 1)[0] + "/" + BENCH_DB
    cfg = {**cfg, "seed_file": str(var_dir / "seed.json")}
    done = subprocess.run(  # its progress lines (stderr) show as they come
        [sys.executable, *child, json.dumps(cfg)], env=env, cwd=common.ROOT,
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    if done.returncode:
        print(done.stdout)
        raise SystemExit(f"{backend} child failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    checks: dict[str, bool] = {}
    worst: dict[str, Any] = {}
    for backend, data in results["backends"].items():
        for key, cases in data["reports"].items():
            medians = [c.get("median_s") for c in cases.values()]
            ok = all(m is not None and m < TARGET_S for m in medians)
            checks[f"{backend}:{key}"] = ok
            worst[f"{backend}:{key}"] = max((m for m in medians if m is not None), default=None)
        for label, page in data.get("pages", {}).items():
            if label.startswith("csv"):  # the page's CSV of the largest report: a target too
                checks[f"{backend}:csv"] = page.get("status") == 200 and page["median_s"] < TARGET_S
    if not checks:
        checks["reports_registered"] = False
    return {"checks": checks, "worst_median_s": worst}


def print_summary(results: dict[str, Any], summary: dict[str, Any]) -> None:
    for backend, data in results["backends"].items():
        seed = data["seed"]
        log(
            f"\n{backend} {data['database']['server_version']}: {seed['conversations']:,}"
            f" conversations, {seed['messages']:,} messages, {seed['form_answers']:,} form"
            f" answers; seeded in {seed['seed_s']} s"
        )
        head = f"  {'report':24}" + "".join(f"{label:>18}" for label, _, _ in CASES)
        log(head + "   queries  rows")
        for key, cases in data["reports"].items():
            cells = []
            for label, _, _ in CASES:
                case = cases.get(label, {})
                if not case:
                    cells.append(f"{'-':>18}")
                    continue
                if "error" in case:
                    cells.append(f"{'ERROR':>18}")
                    continue
                med, cpu = case["median_s"] * 1000, case.get("cpu_s", 0) * 1000
                flag = " " if case["median_s"] < TARGET_S else "!"
                cells.append(f"{med:8.0f} ({cpu:5.0f}){flag}"[-18:].rjust(18))
            year = cases.get("year all", {})
            log(
                f"  {key:24}"
                + "".join(cells)
                + f"   {year.get('queries', '-'):>7}  {year.get('rows', '-'):>4}"
            )
        for label, page in data.get("pages", {}).items():
            if "median_s" not in page:
                log(f"  {label}: {page}")
                continue
            log(
                f"  {label:36} HTTP {page['status']}, {page['bytes']:>9,} bytes: median"
                f" {page['median_s'] * 1000:7.1f} ms, max {page['max_s'] * 1000:7.1f} ms"
            )
        for key, error in data.get("errors", {}).items():
            log(f"  ERROR {key}: {error}")
    log(
        "\n  cells: median wall ms of the timed runs (this process's CPU ms: on SQLite nearly"
        " all the work, on PostgreSQL the client's share); ! = median over the 1 s target"
    )
    common.log_footer(results["machine"], summary["checks"])


# --- the child: seed, then time ---------------------------------------------------------


def child(cfg: dict[str, Any]) -> None:
    database = common.child_django(redis_url=cfg["redis_url"])
    if cfg.get("variant") == "native-tz":
        from openline.reports import queries

        queries._Local.as_sqlite = queries._Local.as_sql  # type: ignore[method-assign]
    seed_file = Path(cfg["seed_file"]) if cfg.get("seed_file") else None
    kept = json.loads(seed_file.read_text()) if seed_file and seed_file.exists() else None
    if kept and kept["conversations"] == cfg["conversations"] and kept["seed"] == cfg["seed"]:
        seeded = kept
        common.progress(f"reusing the database seeded at {seeded['now']}")
    else:
        if kept:
            raise SystemExit(f"{seed_file}: seeded with other settings; remove the database")
        t0 = time.monotonic()
        seeded = seed(cfg["conversations"], seed_value=cfg["seed"], analyze=cfg["analyze"])
        seeded["seed_s"] = round(time.monotonic() - t0, 1)
        seeded["seed"] = cfg["seed"]
        common.progress(f"seeded in {seeded['seed_s']} s: {seeded}")
        if seed_file:
            seed_file.write_text(json.dumps(seeded))
    out = {"database": database, "seed": seeded}
    out.update(time_reports(seeded, cfg))
    print(json.dumps(out, default=str))


class Inserter:
    """INSERTs of many rows into one model's table: `attnames` are given per row (raw
    values; datetimes aware), every other NOT NULL column gets its field's default (so a
    new column with a default needs no change here; one without fails loudly). SQLite:
    executemany in batches; PostgreSQL: multi-row VALUES."""

    def __init__(self, model: Any, attnames: list[str]) -> None:
        from django.db import connection
        from django.db.models import NOT_PROVIDED, DateField, DateTimeField, JSONField

        self.connection = connection
        meta = model._meta
        by_attname = {f.attname: f for f in meta.concrete_fields}
        unknown = [a for a in attnames if a not in by_attname]
        if unknown:
            raise SystemExit(f"{meta.db_table}: no column {unknown}; update bench/reports.py")
        self.converters: list[Any] = []
        for name in attnames:
            field = by_attname[name]
            if isinstance(field, DateTimeField):
                self.converters.append(connection.ops.adapt_datetimefield_value)
            elif isinstance(field, DateField):
                self.converters.append(connection.ops.adapt_datefield_value)
            elif isinstance(field, JSONField):
                self.converters.append(lambda v, f=field: f.get_db_prep_save(v, connection))
            else:
                self.converters.append(None)
        self.constants: list[Any] = []
        constant_cols: list[str] = []
        for field in meta.concrete_fields:
            if field.attname in attnames or field.primary_key or field.null:
                continue
            if field.db_default is not NOT_PROVIDED:
                continue
            if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                raise SystemExit(f"{meta.db_table}.{field.column}: give it in the seed")
            default = field.get_default()
            if default is None:
                raise SystemExit(
                    f"{meta.db_table}.{field.column} is NOT NULL without a default; "
                    "update the seed in bench/reports.py"
                )
            constant_cols.append(field.column)
            self.constants.append(field.get_db_prep_save(default, connection))
        self.columns = [by_attname[a].column for a in attnames] + constant_cols
        self.table = meta.db_table
        self.count = 0

    def insert(self, rows: Iterable[tuple]) -> int:
        quote = self.connection.ops.quote_name
        cols = ", ".join(quote(c) for c in self.columns)
        one = "(" + ", ".join(["%s"] * len(self.columns)) + ")"
        sqlite = self.connection.vendor == "sqlite"
        chunk = 5000 if sqlite else max(1, 30_000 // len(self.columns))
        consts = tuple(self.constants)
        conv = self.converters
        batch: list[tuple] = []
        count = 0

        def flush() -> None:
            with self.connection.cursor() as cur:
                if sqlite:
                    cur.executemany(f"INSERT INTO {quote(self.table)} ({cols}) VALUES {one}", batch)
                else:
                    values = ", ".join([one] * len(batch))
                    flat = [v for row in batch for v in row]
                    cur.execute(f"INSERT INTO {quote(self.table)} ({cols}) VALUES {values}", flat)

        for row in rows:
            batch.append(
                tuple(v if c is None or v is None else c(v) for c, v in zip(conv, row, strict=True))
                + consts
            )
            if len(batch) >= chunk:
                flush()
                count += len(batch)
                batch.clear()
        if batch:
            flush()
            count += len(batch)
        self.count += count
        return count


FIRST_TEXTS = [
    "Hi, is anyone there?",
    "I need to talk to someone",
    "hey",
    "can I talk to someone please",
    "I don't know who else to text",
    "is this the crisis line",
]
IN_TEXTS = [*common.INBOUND_TEXTS]
OUT_TEXTS = [
    "Hi, thanks for reaching out. I'm here to listen. What's going on tonight?",
    "That sounds really hard. How are you feeling right now?",
    "Thank you for telling me. Are you safe right now?",
    "I'm glad you texted. What would help most right now?",
    "Can you tell me more about that?",
    "It makes sense that you feel that way.",
    "Is there someone you trust who you could reach out to tonight?",
    "Take your time, I'm here.",
    "Thanks for talking with me tonight. You can text us any time.",
]
AUTO_REPLY = "We're closed right now and will reply when we open at 8 am."
# Local hour weights: quiet mornings, busy evenings and nights.
HOUR_WEIGHTS = [4, 3, 2, 1, 1, 1, 2, 3, 4, 5, 5, 5, 5, 5, 6, 6, 7, 8, 9, 10, 10, 9, 7, 5]
AGE_GROUPS = [("under_18", "Under 18"), ("18_24", "18–24"), ("25_34", "25–34"),
              ("35_54", "35–54"), ("55_plus", "55 and over")]  # fmt: skip
REASONS = [("mental_health", "Mental health"), ("relationships", "Relationships"),
           ("housing", "Housing"), ("food", "Food"), ("substance_use", "Substance use"),
           ("abuse", "Abuse"), ("other", "Other")]  # fmt: skip
LONELINESS = ("loneliness", "Loneliness")
GENDERS = [("woman", "Woman"), ("man", "Man"), ("nonbinary", "Non-binary"),
           ("not_said", "Prefer not to say")]  # fmt: skip


def contact_form_schemas() -> tuple[dict[str, Any], dict[str, Any]]:
    """The contact form's two versions: v2 asks for gender and adds a reason."""

    def opts(pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
        return [{"value": v, "label": label} for v, label in pairs]

    def fields(reasons: list[tuple[str, str]], gender: bool) -> list[dict[str, Any]]:
        out = [
            {"key": "age_group", "label": "Age group", "kind": "choice", "required": True,
             "options": opts(AGE_GROUPS)},
            {"key": "reason", "label": "Reason for contact", "kind": "multi_choice",
             "required": True, "options": opts(reasons)},
            {"key": "household", "label": "People in the household", "kind": "number",
             "min": 1, "max": 20},
            {"key": "housing_note", "label": "Housing situation", "kind": "text",
             "show_if": {"field": "reason", "values": ["housing"]}},
        ]  # fmt: skip
        if gender:
            out.insert(1, {"key": "gender", "label": "Gender", "kind": "choice",
                           "options": opts(GENDERS)})  # fmt: skip
        return out

    v1 = {
        "sections": [
            {"key": "about", "title": "About the contact", "fields": fields(REASONS, False)}
        ]
    }
    v2 = {
        "sections": [
            {"key": "about", "title": "About the contact",
             "fields": fields([*REASONS[:-1], LONELINESS, REASONS[-1]], True)}
        ]
    }  # fmt: skip
    return v1, v2


def seed(conversations: int, *, seed_value: int, analyze: bool) -> dict[str, Any]:  # noqa: C901, PLR0912, PLR0915 -- one linear seed
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from django.core.management.color import no_style
    from django.db import connection, transaction
    from django.utils import timezone

    from openline.alerts.models import Alert, AlertKind
    from openline.billing.models import CreditAccount, CreditEntry
    from openline.campaigns.models import Broadcast, BroadcastRecipient
    from openline.contacts.models import ConsentEvent, Contact
    from openline.core.models import Membership, User
    from openline.core.services import organization_create
    from openline.forms import cssrs
    from openline.forms.models import (
        Form,
        FormAnswer,
        FormKind,
        FormResponse,
        FormUse,
        FormVersion,
    )
    from openline.forms.schema import schema_load
    from openline.messaging.models import Conversation, Message
    from openline.providers.models import Number

    rng = random.Random(seed_value)
    now = timezone.now().replace(microsecond=0)
    tz = ZoneInfo(TZ)
    year_start = now - timedelta(days=365)
    timings: dict[str, float] = {}
    t = time.monotonic()

    org = organization_create(name="Bench", slug="bench", timezone_name=TZ)
    oid = org.pk
    staff = User.objects.bulk_create(
        User(email=f"m{i}@bench.test", password="!", display_name=f"Member {i}") for i in range(24)
    )
    Membership.objects.bulk_create(
        Membership(
            organization=org,
            user=u,
            role="admin" if i == 0 else "supervisor" if i < 4 else "counselor",
        )  # fmt: skip
        for i, u in enumerate(staff)
    )
    counselors = [u.pk for u in staff[1:]]
    numbers = Number.objects.bulk_create(
        Number(
            organization=org,
            provider="sandbox",
            e164=f"+1312555{i:04d}",
            name=name,
            webhook_key=f"bench-reports-{i}",
        )  # fmt: skip
        for i, name in enumerate(["Crisis line", "Youth line", "Veterans line"])
    )
    inbox_ids = [n.pk for n in numbers]
    inbox_weights = [0.6, 0.3, 0.1]
    chat_share = [0.2, 0.45, 0.1]  # web chat per inbox

    v1_schema, v2_schema = contact_form_schemas()
    schema_load(v1_schema)
    schema_load(v2_schema)
    form = Form.objects.create(organization=org, name="Contact form")
    v1 = FormVersion.objects.create(organization=org, form=form, number=1, schema=v1_schema)
    v2 = FormVersion.objects.create(organization=org, form=form, number=2, schema=v2_schema)
    form.current_version = v2
    form.save(update_fields=["current_version"])
    screener = Form.objects.create(
        organization=org, name="Risk screener", kind=FormKind.RISK_SCREENER
    )
    sv = FormVersion.objects.create(organization=org, form=screener, number=1, schema=cssrs.SCHEMA)
    screener.current_version = sv
    screener.save(update_fields=["current_version"])
    FormUse.objects.bulk_create(
        [
            FormUse(organization=org, number=n, purpose="contact", form=form, required=True)
            for n in numbers
        ]
        + [FormUse(organization=org, number=n, purpose="risk", form=screener) for n in numbers]
    )
    v2_from = now - timedelta(days=120)

    # 1. Plan the conversations, oldest first (ids follow creation time as in production).
    def started() -> dt.datetime:
        day = year_start + timedelta(days=rng.randrange(366))
        local = day.astimezone(tz).replace(hour=0, minute=0, second=0)
        hour = rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
        at = (local + timedelta(hours=hour, seconds=rng.randrange(3600))).astimezone(dt.UTC)
        return min(at, now - timedelta(seconds=30))

    starts = sorted(started() for _ in range(conversations))
    # Texters: one-time and returning (a few write often), by phone; chat visitors are new
    # contacts each time.
    sms_people = max(10, int(conversations * 0.55))
    phones = [
        f"+1{rng.choice(['312', '773', '872', '630'])}{2000000 + i * 7:07d}"
        for i in range(sms_people)
    ]
    timings["plan_s"] = time.monotonic() - t
    t = time.monotonic()

    contact_ins = Inserter(
        Contact, ["id", "organization_id", "name", "phone", "created_at", "updated_at"]
    )
    conv_ins = Inserter(
        Conversation,
        ["id", "organization_id", "number_id", "contact_id", "channel", "status", "priority",
         "priority_reason", "risk_level", "assigned_to_id", "assigned_at", "opened_offline",
         "last_message_at", "created_at", "closed_at"],
    )  # fmt: skip
    msg_cols = ["id", "organization_id", "conversation_id", "direction", "kind", "body",
                "segments", "encoding", "status", "sender_id", "created_at", "sent_at",
                "status_changed_at", "received_offline", "provider_message_id"]  # fmt: skip
    msg_ins = Inserter(Message, msg_cols)
    resp_ins = Inserter(
        FormResponse,
        ["id", "organization_id", "form_id", "version_id", "purpose", "channel",
         "conversation_id", "contact_id", "status", "answered_by_id", "risk_level",
         "created_at", "updated_at", "completed_at"],
    )  # fmt: skip
    ans_ins = Inserter(
        FormAnswer,
        ["organization_id", "response_id", "form_id", "field_key", "value", "label", "number",
         "position"],
    )  # fmt: skip
    alert_ins = Inserter(
        Alert,
        ["organization_id", "conversation_id", "user_id", "phone", "kind", "attempt",
         "message_id", "created_at"],
    )  # fmt: skip
    credit_ins = Inserter(
        CreditEntry, ["organization_id", "kind", "credits", "purpose", "message_id", "created_at"]
    )
    consent_ins = Inserter(
        ConsentEvent,
        ["organization_id", "phone", "number_id", "kind", "source", "text", "created_at"],
    )

    with transaction.atomic():
        # Contacts: the texters, then one per chat conversation, staff phones for alerts.
        sms_contact_ids = list(range(1, sms_people + 1))
        first_seen = {}
        contact_ins.insert(
            (i + 1, oid, "", p, year_start, year_start) for i, p in enumerate(phones)
        )
        next_contact = sms_people + 1
        staff_phones = {u: f"+1773555{n:04d}" for n, u in enumerate(counselors[:8])}
        staff_contact = {}
        for u in staff_phones:
            staff_contact[u] = next_contact
            next_contact += 1
        contact_ins.insert(
            (staff_contact[u], oid, "", p, year_start, year_start) for u, p in staff_phones.items()
        )

        conv_rows: list[tuple] = []
        msg_rows: list[tuple] = []
        chat_contacts: list[tuple] = []
        resp_rows: list[tuple] = []
        ans_rows: list[tuple] = []
        alert_plan: list[tuple] = []  # (conversation, number, created, assigned_at, priority)
        credit_rows: list[tuple] = []
        open_pairs: set[tuple[int, int]] = set()
        next_msg = 1
        next_resp = 1
        counts = {"waiting": 0, "active": 0, "closed": 0, "abandoned": 0, "chat": 0}
        weights = [1.0 / (k + 1) ** 0.9 for k in range(sms_people)]
        cum = list(_cumulative(weights))
        conv_id = 0

        def add_message(cid: int, direction: str, kind: str, body: str, at: dt.datetime,
                        chat: bool, sender: int | None, offline: bool = False) -> int:  # fmt: skip
            nonlocal next_msg
            mid = next_msg
            next_msg += 1
            if direction == "in":
                status, sent, changed = "received", None, None
            else:
                status = "sent" if chat else "delivered"
                sent, changed = at, at + timedelta(seconds=rng.uniform(1, 6))
            msg_rows.append(
                (
                    mid,
                    oid,
                    cid,
                    direction,
                    kind,
                    body,
                    0 if chat else 1 + (len(body) > 160),
                    "" if chat else "GSM-7",
                    status,
                    sender,
                    at,
                    sent,
                    changed,
                    offline,
                    "" if chat else f"SM{seed_value:04d}{mid:026x}",
                )  # fmt: skip
            )
            if direction == "out" and not chat and kind != "bulk":
                credit_rows.append(
                    (
                        oid,
                        "debit",
                        1,
                        "alert"
                        if kind == "alert"
                        else "auto_reply"
                        if kind == "automated"
                        else "sms",
                        mid,
                        at,
                    )
                )
            return mid

        def flush_rows(final: bool = False) -> None:
            if final or len(msg_rows) >= 50_000:
                if chat_contacts:
                    contact_ins.insert(chat_contacts)
                    chat_contacts.clear()
                conv_ins.insert(conv_rows)
                conv_rows.clear()
                msg_ins.insert(msg_rows)
                msg_rows.clear()
                resp_ins.insert(resp_rows)
                resp_rows.clear()
                ans_ins.insert(ans_rows)
                ans_rows.clear()

        for created in starts:
            conv_id += 1
            cid = conv_id
            inbox = rng.choices(range(3), weights=inbox_weights)[0]
            number_id = inbox_ids[inbox]
            chat = rng.random() < chat_share[inbox]
            age = (now - created).total_seconds()
            # Outcome.
            if age < 2 * 3600 and rng.random() < 0.8:
                status = "waiting" if rng.random() < 0.45 else "active"
            else:
                status = "closed"
            offline = not chat and rng.random() < 0.06
            abandoned = status == "closed" and rng.random() < (0.25 if chat else 0.12)
            if status == "waiting":
                abandoned = False
            if chat:
                contact_id = next_contact
                next_contact += 1
                chat_contacts.append((contact_id, oid, "", "", created, created))
                counts["chat"] += 1
            else:
                k = rng.choices(range(sms_people), cum_weights=cum)[0]
                contact_id = sms_contact_ids[k]
                if status != "closed":
                    while (contact_id, number_id) in open_pairs:
                        contact_id = sms_contact_ids[rng.randrange(sms_people)]
                    open_pairs.add((contact_id, number_id))
                first_seen.setdefault(contact_id, created)
            priority, reason, risk = 0, "", None
            if rng.random() < 0.07:
                phrase, priority = rng.choice([("pills", 2), ("suicide", 3), ("end it", 3),
                                               ("cutting", 2), ("gun", 3)])  # fmt: skip
                reason = f"Risk phrase: “{phrase}”"
            # Messages.
            t_msg = created
            add_message(cid, "in", "personal", rng.choice(FIRST_TEXTS), t_msg, chat, None, offline)
            last = t_msg
            holder = assigned_at = None
            if offline:
                add_message(
                    cid, "out", "automated", AUTO_REPLY, t_msg + timedelta(seconds=2), chat, None
                )
            if abandoned or status == "waiting":
                for _ in range(rng.choice([0, 0, 1, 2])):
                    t_msg = min(t_msg + timedelta(seconds=rng.uniform(20, 600)), now)
                    add_message(
                        cid, "in", "personal", rng.choice(IN_TEXTS), t_msg, chat, None, offline
                    )
                last = t_msg
                wait_s = age if status == "waiting" else rng.uniform(300, 3 * 3600)
            else:
                if offline:
                    wait_s = rng.uniform(2 * 3600, 10 * 3600)
                elif priority >= 2:
                    wait_s = rng.lognormvariate(math.log(45), 0.8)
                else:
                    wait_s = rng.lognormvariate(math.log(100), 1.1)
                wait_s = min(wait_s, max(age - 5, 1))
                holder = rng.choice(counselors)
                assigned_at = created + timedelta(seconds=wait_s)
                t_msg = assigned_at + timedelta(seconds=rng.expovariate(1 / 40) + 5)
                n_more = rng.choice([1, 2, 3, 3, 4, 4, 5, 6, 8, 12])
                for k in range(n_more):
                    direction = "out" if k % 2 == 0 else "in"
                    if t_msg >= now:
                        break
                    body = rng.choice(OUT_TEXTS if direction == "out" else IN_TEXTS)
                    add_message(cid, direction, "personal", body, t_msg, chat,
                                holder if direction == "out" else None)  # fmt: skip
                    last = t_msg
                    t_msg += timedelta(seconds=rng.expovariate(1 / 150) + 10)
                if priority >= 2 or rng.random() < 0.08:
                    risk = rng.choices([1, 2, 3], weights=[50, 35, 15])[0]
            closed_at = None
            if status == "closed":
                closed_at = min(last + timedelta(seconds=rng.uniform(60, 1800)), now)
                counts["abandoned"] += abandoned
            counts[status] += 1
            conv_rows.append(
                (
                    cid,
                    oid,
                    number_id,
                    contact_id,
                    "chat" if chat else "sms",
                    status,
                    priority,
                    reason,
                    risk,
                    holder,
                    assigned_at,
                    offline,
                    last,
                    created,
                    closed_at,
                )  # fmt: skip
            )
            # Alerts: conversations that waited past the first minute.
            if wait_s > 180 and not offline:
                alert_plan.append(
                    (cid, number_id, created, assigned_at or closed_at or now, priority)
                )
            # The contact form for ~60 % of the answered and closed ones; the risk screener
            # for those with a risk level.
            if holder and status == "closed" and rng.random() < 0.72:
                version = v2 if created >= v2_from else v1
                done = closed_at - timedelta(seconds=rng.uniform(0, 120))
                rid = next_resp
                next_resp += 1
                resp_rows.append(
                    (
                        rid,
                        oid,
                        form.pk,
                        version.pk,
                        "contact",
                        "console",
                        cid,
                        contact_id,
                        "complete",
                        holder,
                        None,
                        assigned_at,
                        done,
                        done,
                    )
                )
                age_v, age_l = rng.choices(AGE_GROUPS, weights=[20, 30, 25, 18, 7])[0]
                ans_rows.append((oid, rid, form.pk, "age_group", age_v, age_l, None, 0))
                if version is v2:
                    g_v, g_l = rng.choices(GENDERS, weights=[50, 35, 8, 7])[0]
                    ans_rows.append((oid, rid, form.pk, "gender", g_v, g_l, None, 0))
                options = REASONS if version is v1 else [*REASONS, LONELINESS]
                picked = rng.sample(options, rng.choice([1, 1, 2, 2, 3]))
                for pos, (r_v, r_l) in enumerate(picked):
                    ans_rows.append((oid, rid, form.pk, "reason", r_v, r_l, None, pos))
                if rng.random() < 0.8:
                    size = rng.choices(range(1, 9), weights=[30, 25, 15, 12, 8, 5, 3, 2])[0]
                    ans_rows.append((oid, rid, form.pk, "household", str(size), "", float(size), 0))
                if risk is not None:
                    rid = next_resp
                    next_resp += 1
                    resp_rows.append(
                        (
                            rid,
                            oid,
                            screener.pk,
                            sv.pk,
                            "risk",
                            "console",
                            cid,
                            contact_id,
                            "complete",
                            holder,
                            risk,
                            assigned_at,
                            done,
                            done,
                        )
                    )
            flush_rows()
        flush_rows(final=True)
        timings["conversations_s"] = time.monotonic() - t
        t = time.monotonic()

        # 2. Staff alerts: the first alert to two phones, a reminder every 5 minutes while
        # it waited, an escalation after two, a high-risk alert for raised priorities; each
        # with its text in the staff member's alert conversation on that inbox.
        alert_convs: dict[tuple[int, int], int] = {}
        alert_phones = list(staff_phones.items())
        alert_rows: list[tuple] = []
        for cid, number_id, created, until, priority in alert_plan:
            picks = rng.sample(alert_phones, 1 if rng.random() < 0.7 else 2)
            steps = [(AlertKind.NEW, 1, created + timedelta(seconds=60))]
            at = created + timedelta(minutes=5)
            attempt = 2
            while at < until and attempt <= 4:
                steps.append((AlertKind.REMINDER, attempt, at))
                at += timedelta(minutes=5)
                attempt += 1
            if priority >= 2 and until - created > timedelta(minutes=3):
                steps.append((AlertKind.HIGH_RISK, 1, created + timedelta(minutes=3)))
            for kind, attempt, at in steps:
                if at >= until or at >= now:
                    continue
                for user_id, phone in picks:
                    key = (user_id, number_id)
                    if key not in alert_convs:
                        conv_id += 1
                        alert_convs[key] = conv_id
                        conv_rows.append(
                            (
                                conv_id,
                                oid,
                                number_id,
                                staff_contact[user_id],
                                "alert",
                                "closed",
                                0,
                                "",
                                None,
                                None,
                                None,
                                False,
                                now,
                                year_start,
                                year_start,
                            )  # fmt: skip
                        )
                    mid = add_message(
                        alert_convs[key],
                        "out",
                        "alert",
                        "New conversation waiting on the crisis line",
                        at,
                        False,
                        None,
                    )
                    alert_rows.append((oid, cid, user_id, phone, kind, attempt, mid, at))
        flush_rows(final=True)
        alert_ins.insert(alert_rows)
        timings["alerts_s"] = time.monotonic() - t
        t = time.monotonic()

        # 3. Consent: STOP from 4 % of texters, START again from a third of them later.
        consent_rows = []
        for contact_id in rng.sample(list(first_seen), max(1, len(first_seen) // 25)):
            at = first_seen[contact_id] + timedelta(hours=rng.uniform(1, 24 * 30))
            if at >= now:
                continue
            phone = phones[contact_id - 1]
            number_id = rng.choice(inbox_ids)
            consent_rows.append((oid, phone, number_id, "opt_out", "keyword", "STOP", at))
            back = at + timedelta(days=rng.uniform(1, 60))
            if rng.random() < 0.33 and back < now:
                consent_rows.append((oid, phone, number_id, "opt_in", "keyword", "START", back))
        consent_ins.insert(consent_rows)

        # 4. A broadcast to 10,000 texters 45 days ago: recipients (refused when opted out),
        # their bulk texts in new closed system conversations, the reservation and its
        # settlement.
        sent_at = now - timedelta(days=45)
        opted_out = {r[1] for r in consent_rows if r[3] == "opt_out" and r[6] < sent_at}
        broadcast = Broadcast.objects.create(
            organization=org, name="Winter resources", channel="sms", status="finished",
            body="Cold weather shelters are open tonight. Reply for help.",
            started_at=sent_at, finished_at=sent_at + timedelta(minutes=40),
        )  # fmt: skip
        broadcast.numbers.set([numbers[0]])
        Broadcast.objects.filter(pk=broadcast.pk).update(created_at=sent_at - timedelta(hours=1))
        recipients = rng.sample(range(sms_people), min(10_000, sms_people))
        rec_ins = Inserter(
            BroadcastRecipient,
            ["organization_id", "broadcast_id", "contact_id", "phone", "number_id", "time_zone",
             "status", "reason", "segments", "credits", "message_id", "queued_at"],
        )  # fmt: skip
        rec_rows = []
        queued = 0
        for n, k in enumerate(recipients):
            phone = phones[k]
            at = sent_at + timedelta(seconds=n * 0.24)
            if phone in opted_out:
                rec_rows.append((oid, broadcast.pk, k + 1, phone, inbox_ids[0], TZ, "refused",
                                 "opted_out: They opted out.", 1, 0, None, None))  # fmt: skip
                continue
            conv_id += 1
            conv_rows.append((conv_id, oid, inbox_ids[0], k + 1, "sms", "closed", 0, "", None,
                              None, None, False, at, at, at))  # fmt: skip
            mid = add_message(conv_id, "out", "bulk", broadcast.body, at, False, None)
            rec_rows.append((oid, broadcast.pk, k + 1, phone, inbox_ids[0], TZ, "queued", "", 1,
                             1, mid, at))  # fmt: skip
            queued += 1
        flush_rows(final=True)
        rec_ins.insert(rec_rows)
        reserve = CreditEntry.objects.create(
            organization=org, kind="reserve", credits=len(recipients), purpose="sms",
            note="Broadcast: Winter resources", created_at=sent_at - timedelta(minutes=1),
        )  # fmt: skip
        CreditEntry.objects.create(
            organization=org,
            kind="debit",
            credits=queued,
            purpose="sms",
            settles=reserve,
            created_at=sent_at + timedelta(minutes=41),
        )
        CreditEntry.objects.create(
            organization=org,
            kind="release",
            credits=len(recipients),
            settles=reserve,
            created_at=sent_at + timedelta(minutes=41),
        )
        for month in range(13):
            credit_rows.append(
                (oid, "allowance", 20_000, "", None, year_start + timedelta(days=30 * month))
            )
        credit_ins.insert(credit_rows)
        CreditAccount.objects.update_or_create(organization=org, defaults={"available": 1_000_000})
        timings["rest_s"] = time.monotonic() - t
        t = time.monotonic()
        # Each conversation's first personal reply, as the send service records it when
        # the reply is written (the bulk insert above bypasses it): the same UPDATE the
        # migration that added the column runs.
        from importlib import import_module

        from django.apps import apps

        backfill = import_module("openline.messaging.migrations.0013_conversation_first_reply_at")
        backfill.first_replies(apps, None)
        timings["first_replies_s"] = time.monotonic() - t
        t = time.monotonic()

        if connection.vendor == "postgresql":
            models = [Contact, Conversation, Message, FormResponse]
            with connection.cursor() as cur:
                for sql in connection.ops.sequence_reset_sql(no_style(), models):
                    cur.execute(sql)
    with connection.cursor() as cur:
        if analyze:
            cur.execute("ANALYZE")
        if connection.vendor == "sqlite":  # as SQLite's autocheckpoint leaves it, not 500 MB
            cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    timings["analyze_s"] = time.monotonic() - t
    return {
        "now": now.isoformat(),
        "organization_id": oid,
        "admin_id": staff[0].pk,
        "contact_form_id": form.pk,
        "inbox_ids": inbox_ids,
        "conversations": conversations,
        "by_status": counts,
        "all_conversation_rows": conv_ins.count,
        "contacts": contact_ins.count,
        "messages": msg_ins.count,
        "alerts": alert_ins.count,
        "consent_events": consent_ins.count,
        "form_responses": resp_ins.count,
        "form_answers": ans_ins.count,
        "broadcast_recipients": rec_ins.count,
        "credit_entries": credit_ins.count + 3,
        "analyzed": analyze,
        "timings": {k: round(v, 1) for k, v in timings.items()},
    }


def _cumulative(weights: list[float]) -> Iterable[float]:
    total = 0.0
    for w in weights:
        total += w
        yield total


FORM_FIELDS = ["age_group", "reason", "household", "housing_note"]  # choice, multi, number, text


def report_entries(seeded: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(name, REPORTS key, extra filters): the form field report once per kind of field of
    the contact form, every other report as it is."""
    from dataclasses import fields

    from openline.reports.base import REPORTS, ReportFilters

    has_form = "form_id" in {f.name for f in fields(ReportFilters)}
    entries = []
    for key in REPORTS:
        if key == "form_field" and has_form:
            for field_key in FORM_FIELDS:
                extra = {"form_id": seeded["contact_form_id"], "field_key": field_key}
                entries.append((f"{key}:{field_key}", key, extra))
        else:
            entries.append((key, key, {}))
    return entries


def time_reports(seeded: dict[str, Any], cfg: dict[str, Any]) -> dict[str, Any]:
    """Every report for every case: warm once (its queries recorded), then timed."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from django.db import connection

    from openline.reports.base import REPORTS, ReportFilters

    tz = ZoneInfo(TZ)
    today = dt.datetime.fromisoformat(seeded["now"]).astimezone(tz).date()
    out: dict[str, Any] = {"reports": {}, "errors": {}, "plans": {}}
    largest: tuple[int, str, str, dict[str, Any]] | None = None
    csv_only = cfg["only"] == ["csv"]  # --only csv: find the largest report, time its CSV
    for name, key, extra in report_entries(seeded):
        if cfg["only"] and not csv_only and key not in cfg["only"] and name not in cfg["only"]:
            continue
        fn = REPORTS[key]
        cases_out = out["reports"][name] = {}
        for label, n_days, one_inbox in CASES[2:3] if csv_only else CASES:
            filters = ReportFilters(
                organization_id=seeded["organization_id"],
                start=today - timedelta(days=n_days - 1),
                end=today,
                tz=tz,
                number_id=seeded["inbox_ids"][0] if one_inbox else None,
                **extra,
            )
            timer = common.QueryTimer(capture=lambda sql: True)
            try:
                with connection.execute_wrapper(timer):
                    t0 = time.perf_counter()
                    result = fn(filters)
                    warm_s = time.perf_counter() - t0
                runs, cpu = [], []
                for _ in range(0 if csv_only else cfg["repeats"]):
                    t0, c0 = time.perf_counter(), time.thread_time()
                    fn(filters)
                    runs.append(time.perf_counter() - t0)
                    cpu.append(time.thread_time() - c0)
            except Exception as exc:  # noqa: BLE001 -- a broken report is reported, not fatal
                connection.close()  # a failed statement on PostgreSQL spoils the connection
                out["errors"][f"{name} {label}"] = f"{type(exc).__name__}: {exc}"[:500]
                cases_out[label] = {"error": str(exc)[:200]}
                continue
            if csv_only:
                runs, cpu = [warm_s], [0.0]
            median = statistics.median(runs)
            cases_out[label] = {
                "median_s": round(median, 4),
                "max_s": round(max(runs), 4),
                # This process's CPU: on SQLite nearly all of it (the database runs in
                # it), so a figure that a busy machine inflates less than wall time.
                "cpu_s": round(statistics.median(cpu), 4),
                "first_s": round(warm_s, 4),
                "queries": len(timer.queries),
                "sql_s": round(timer.total_s(), 4),
                "rows": len(result.rows),
            }
            common.progress(
                f"{name:28} {label:10} {median * 1000:8.1f} ms, CPU"
                f" {cases_out[label]['cpu_s'] * 1000:8.1f} ms ({len(timer.queries)} queries)"
            )
            if cfg["explain"] or median >= TARGET_S:
                out["plans"][f"{name} {label}"] = explain(timer, top=3)
            size = len(result.rows) * max(1, len(result.columns))
            if label == "year all" and (largest is None or size > largest[0]):
                largest = (size, key, label, extra)
    if not cfg["only"] or csv_only:  # the page shows every report
        out["pages"] = time_pages(seeded, today, cfg["repeats"], largest, csv_only=csv_only)
    return out


def time_pages(
    seeded: dict[str, Any],
    today: dt.date,
    repeats: int,
    largest: tuple | None,
    *,
    csv_only: bool = False,
) -> dict[str, Any]:
    """Through the page's own views as an admin would (Django's test client, logged in):
    the reports page for 30 days and for the year (every report on it), and the CSV of the
    report with the most cells for the year."""
    from datetime import timedelta

    from django.test import Client
    from django.urls import NoReverseMatch, reverse

    from openline.core.models import User

    client = Client()
    client.force_login(User.objects.get(pk=seeded["admin_id"]))
    out: dict[str, Any] = {}
    year = {"start": (today - timedelta(days=364)).isoformat(), "end": today.isoformat()}
    month = {"start": (today - timedelta(days=29)).isoformat(), "end": today.isoformat()}
    try:
        page = reverse("reports:index")
    except NoReverseMatch:
        return {"error": "no reports:index URL yet"}
    cases = (
        []
        if csv_only
        else [("page 30d all", "get", page, month), ("page year all", "get", page, year)]
    )
    if largest is not None:
        _, key, _, extra = largest
        data = dict(year)
        if extra:
            data.update(form=str(extra["form_id"]), field=extra["field_key"])
        try:  # the export takes the report's key as a field ("report") of the POST
            export = reverse("reports:export")
            cases.append((f"csv {key} year all", "post", export, {**data, "report": key}))
        except NoReverseMatch:
            out["csv"] = {"error": "no reports:export URL"}

    for label, method, url, data in cases:

        def fetch(method: str = method, url: str = url, data: dict = data) -> tuple[int, int]:
            response = getattr(client, method)(url, data)
            body = response.content if not response.streaming else _drain(response)
            return response.status_code, len(body)

        status, size = fetch()
        runs = []
        for _ in range(min(repeats, 3)):  # the whole page is every report: fewer repeats
            t0 = time.perf_counter()
            fetch()
            runs.append(time.perf_counter() - t0)
        out[label] = {
            "status": status,
            "bytes": size,
            "median_s": round(statistics.median(runs), 4),
            "max_s": round(max(runs), 4),
        }
        common.progress(f"{label:35} {statistics.median(runs) * 1000:8.1f} ms (HTTP {status})")
    return out


def _drain(response: Any) -> bytes:
    """A streamed response's body; the CSV streams asynchronously (core.streaming)."""
    import asyncio

    content = response.streaming_content
    if not hasattr(content, "__aiter__"):
        return b"".join(content)

    async def collect() -> bytes:
        return b"".join([chunk async for chunk in content])

    return asyncio.run(collect())


def explain(timer: common.QueryTimer, *, top: int) -> list[dict[str, Any]]:
    """The plans of the `top` slowest statements the timer saw (with their parameters)."""
    from django.db import connection

    timed = sorted(
        zip((t for t, _ in timer.queries), timer.captured, strict=False),
        key=lambda pair: pair[0],
        reverse=True,
    )[:top]
    plans = []
    for seconds, (sql, params) in timed:
        prefix = "EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN ANALYZE "
        try:
            with connection.cursor() as cur:
                cur.execute(prefix + sql, params)
                rows = cur.fetchall()
        except Exception as exc:  # noqa: BLE001 -- a plan is a diagnosis, not a result
            connection.close()
            rows = [(f"EXPLAIN failed: {exc}",)]
        plan = [" | ".join(str(c) for c in row) for row in rows]
        plans.append({"ms": round(seconds * 1000, 1), "sql": sql[:4000], "plan": plan})
    return plans


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(json.loads(sys.argv[2]))
        sys.exit(0)
    sys.exit(main())
