"""Console benchmark: list views on a big SQLite database, and webhook-to-WebSocket latency.

    make bench-console                 # or: .venv/bin/python bench/console.py
    .venv/bin/python bench/console.py --quick      # small database, short phases (~2 min)
    .venv/bin/python bench/console.py --part lists # only part 1 (or --part realtime)

Part 1 (lists): seeds 100,000 conversations with 1,000,000 messages into a throw-away
SQLite database (embedded profile) and times the console's queue views in-process with
django.test.Client: Waiting, Mine, All, Closed, unread-only and search. Target: p95 < 100 ms.

Part 2 (realtime): starts `openline run` on a fresh database, opens 200 console WebSockets
with real Django sessions, sends signed Twilio webhooks at half the foundation benchmark's
sustained rate and measures webhook-sent to `message.created`-received on every socket.
Target: p99 < 100 ms, every delivery made.

Writes bench/results/console-<UTC time>.json. See bench/README.md for how to read it.
All traffic goes to 127.0.0.1; servers and the client process are stopped on every exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import re
import sqlite3
import sys
import tempfile
import time
import traceback
from array import array
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import common
from common import fmt, log

TARGET_LIST_P95_MS = 100.0
TARGET_WS_P99_MS = 100.0
# Webhooks at half the foundation benchmark's sustained rate (SUSTAINED_FRACTION x the bare
# baseline's best req/s).
RATE_FRACTION = 0.5

# --- seed data: names, texts ----------------------------------------------------------------

# fmt: off
FIRST_NAMES = [
    "Maria", "James", "Aisha", "Daniel", "Keisha", "Luis", "Emily", "Tyrone", "Sofia", "Michael",
    "Jasmine", "David", "Ana", "Kevin", "Fatima", "Robert", "Chloe", "Marcus", "Priya", "Anthony",
    "Grace", "Jamal", "Olivia", "Carlos", "Hannah", "Andre", "Mei", "Jose", "Destiny", "Brian",
    "Leticia", "Omar", "Rachel", "Darnell", "Vanessa", "Eric", "Imani", "Juan", "Megan",
    "Terrence", "Nadia", "Chris", "Lauren", "DeShawn", "Rosa", "Tyler", "Amara", "Kenji",
    "Brittany", "Samuel", "Yolanda", "Victor", "Naomi", "Isaiah", "Camila", "Derek", "Tanya",
    "Hector", "Ebony", "Malik"
]
LAST_NAMES = [
    "Garcia", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson",
    "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez",
    "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen",
    "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell",
    "Mitchell", "Carter", "Roberts", "Okafor", "Patel", "Kim", "Washington", "Chen", "Singh",
    "Mensah", "Kowalski", "Haddad", "Nakamura", "Ortiz"
]
# fmt: on
OUTBOUND_TEXTS = [
    "Hi, this is your counselor. How are you doing today?",
    "Thanks for reaching out. I'm here.",
    "Of course. What time works best for you?",
    "You're welcome!",
    "Yes, we open at 9am tomorrow.",
    "No problem, see you then.",
    "Can you tell me a bit more about what's going on?",
    "That sounds really hard. I'm glad you texted.",
    "Please bring a photo ID and any letters you received.",
    "I've moved your appointment to Thursday at 2pm.",
    "We have two beds open tonight, check-in starts at 6pm.",
    "The food pantry is open Saturday 10am to 2pm.",
    "The bus 14 stops right in front of the building.",
    "Let's go over the form together when you come in.",
    "Are you safe right now?",
    "I'll call you in 10 minutes.",
    "Great news, congratulations!",
    "Your caseworker will follow up on Monday.",
    "Here's the address: 412 Main St, second floor.",
    "Take care, and text us anytime.",
    "Sí, hablamos español. ¿En qué le puedo ayudar?",
    "Did you get a chance to eat something today?",
    "The voucher needs proof of income and an ID.",
    "We can talk tonight, I'm on until 11pm.",
    "Yes, kids are welcome. We have a family room.",
    "Checking in: how did the interview go?",
    "Let me look into that and get back to you.",
    "That's okay, take your time.",
]
# Rarer words: places and services mentioned in a few messages each (Zipf-weighted, so some
# are very rare). Search picks its "rare word" from these by the seeded hit counts.
# fmt: off
PLACES = [
    "Maplewood", "Riverside", "Linden", "Hollis", "Brookfield", "Cedarhurst", "Fairmont",
    "Glenview", "Harborview", "Ironwood", "Juniper", "Kingsbridge", "Lakeview", "Millbrook",
    "Northgate", "Oakhurst", "Pinecrest", "Quarry", "Redmond", "Sherwood", "Thornbury",
    "Underhill", "Valleyview", "Westbrook", "Yarrow", "Zephyr", "Ashford", "Birchwood",
    "Claremont", "Dunmore", "Elmhurst", "Foxhall", "Greystone", "Hawthorne", "Inglewood",
    "Jasperton", "Kenmore", "Larchmont", "Marlowe", "Newhaven", "Orchard", "Parkside",
    "Queensbury", "Rosewood", "Stonebridge", "Tidewater", "Upland", "Verona", "Wexford",
    "Ashgrove", "Bellhaven", "Copperfield", "Driftwood", "Evergreen", "Fernhill", "Goldcrest",
    "Highbury", "Ivydale", "Kestrel", "Lockwood", "Meadowlark", "Norwood", "Oldfield", "Primrose",
    "Ravenswood", "Silverlake", "Tamarack", "Wildwood", "Willowdale"
]
# fmt: on
PLACE_TEMPLATES = [
    "I'm at the {p} library right now",
    "is the {p} office open today",
    "the shelter on {p} Ave was full",
    "can we meet at {p} park",
    "the {p} clinic said to call you",
    "I moved to {p} last month",
    "The {p} center has walk-in hours on Tuesday.",
    "Try the {p} office, they have openings this week.",
]
WRAP_UPS = [
    "Connected to housing resources; will follow up next week.",
    "Safety plan reviewed. No further contact needed.",
    "Referred to food pantry and benefits office.",
    "Appointment rescheduled; resolved.",
    "Wrong number.",
    "Emotional support; person felt better by the end.",
]
# fmt: off
AREA_CODES_SEED = [
    "202", "212", "213", "214", "303", "305", "312", "313", "404", "412", "415", "503", "504",
    "512", "602", "612", "615", "617", "702", "704", "713", "718", "720", "773", "813", "832",
    "901", "904", "916", "919"
]
# fmt: on


# =============================================================================================
# Part 1: list views on a big SQLite database
# =============================================================================================


def sqlite_ts(epoch: float) -> str:
    """A datetime as Django's SQLite backend stores it (naive UTC, microseconds)."""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def check_columns(conn: sqlite3.Connection, table: str, cols: tuple[str, ...]) -> None:
    """Fail loudly if the schema moved: an unknown column, or a new NOT NULL one without a
    default that the seed would leave out."""
    info = conn.execute(f"PRAGMA table_info({table})").fetchall()
    names = {row[1] for row in info}
    unknown = [c for c in cols if c not in names]
    required = [
        row[1] for row in info if row[3] and row[4] is None and not row[5] and row[1] not in cols
    ]
    if unknown or required:
        raise SystemExit(
            f"{table}: schema changed (unknown {unknown}, unfilled NOT NULL {required});"
            " update the seed in bench/console.py"
        )


def insert_rows(
    conn: sqlite3.Connection, table: str, cols: tuple[str, ...], rows: Any, chunk: int = 50_000
) -> int:
    check_columns(conn, table, cols)
    sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    count = 0
    batch: list[tuple] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= chunk:
            conn.executemany(sql, batch)
            count += len(batch)
            batch.clear()
    if batch:
        conn.executemany(sql, batch)
        count += len(batch)
    return count


def seed_phones(rng: random.Random, count: int) -> list[str]:
    """Distinct, valid (per phonenumbers) US mobile-style numbers."""
    import phonenumbers

    seen: set[str] = set()
    out: list[str] = []
    while len(out) < count:
        area = rng.choice(AREA_CODES_SEED)
        exchange = rng.randint(200, 999)
        if exchange % 100 == 11 or exchange == 555:
            continue
        e164 = f"+1{area}{exchange}{rng.randint(0, 9999):04d}"
        if e164 in seen:
            continue
        if not phonenumbers.is_valid_number(phonenumbers.parse(e164)):
            continue
        seen.add(e164)
        out.append(e164)
    return out


def zipf_weights(n: int, s: float) -> list[float]:
    return [1.0 / (k + 1) ** s for k in range(n)]


class BodyPicker:
    """Short everyday texts; inbound and outbound have their own vocabularies, some texts
    are much more common than others, and ~3% mention a (Zipf-weighted) place name."""

    def __init__(self, rng: random.Random) -> None:
        from openline.messaging.segments import count_segments

        self.rng = rng
        self.inbound = common.INBOUND_TEXTS
        self.outbound = OUTBOUND_TEXTS
        self.w_in = list(_cumulative(zipf_weights(len(common.INBOUND_TEXTS), 0.7)))
        self.w_out = list(_cumulative(zipf_weights(len(OUTBOUND_TEXTS), 0.7)))
        self.w_place = list(_cumulative(zipf_weights(len(PLACES), 1.1)))
        self._segments: dict[str, tuple[int, str]] = {}
        self._count = count_segments

    def pick(self, direction: str) -> tuple[str, int, str]:
        rng = self.rng
        if rng.random() < 0.03:
            place = rng.choices(PLACES, cum_weights=self.w_place)[0]
            templates = PLACE_TEMPLATES[:6] if direction == "in" else PLACE_TEMPLATES[6:]
            body = rng.choice(templates).format(p=place)
        elif direction == "in":
            body = rng.choices(self.inbound, cum_weights=self.w_in)[0]
        else:
            body = rng.choices(self.outbound, cum_weights=self.w_out)[0]
        seg = self._segments.get(body)
        if seg is None:
            info = self._count(body)
            seg = self._segments[body] = (info.segments, info.encoding)
        return body, seg[0], seg[1]


def _cumulative(weights: list[float]) -> Any:
    total = 0.0
    for w in weights:
        total += w
        yield total


CONTACT_COLS = (
    "id",
    "name",
    "phone",
    "number_type",
    "notes",
    "created_at",
    "updated_at",
    "organization_id",
)
CONVERSATION_COLS = (
    "id",
    "channel",
    "status",
    "priority",
    "needs_consent_review",
    "last_message_at",
    "created_at",
    "closed_at",
    "assigned_to_id",
    "contact_id",
    "number_id",
    "organization_id",
    "assigned_at",
)
MESSAGE_COLS = (
    "direction",
    "kind",
    "body",
    "segments",
    "encoding",
    "status",
    "provider_message_id",
    "error_code",
    "error_message",
    "attempts",
    "created_at",
    "sent_at",
    "status_changed_at",
    "conversation_id",
    "organization_id",
    "sender_id",
)
READ_COLS = ("read_at", "marked_unread", "conversation_id", "organization_id", "user_id")
NOTE_COLS = ("kind", "body", "created_at", "author_id", "conversation_id", "organization_id")


def message_triggers_and_indexes(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """(type, name, sql) of messaging_message's triggers and secondary indexes."""
    return conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'messaging_message'"
        " AND type IN ('trigger', 'index') AND sql IS NOT NULL"
    ).fetchall()


def seed_database(  # noqa: C901 -- one linear generator
    db_path: Path,
    *,
    org_id: int,
    number_id: int,
    counselor_ids: list[int],
    conversations: int,
    messages: int,
    waiting: int,
    active: int,
    seed: int = 7,
) -> dict[str, Any]:
    """Fast raw-SQL seed. Messages go through a staging table so that ids follow created_at
    as they do in production; FTS triggers and secondary indexes are dropped during the bulk
    insert and recreated from their exact original SQL, and the FTS index is rebuilt from
    the content table (the same index the triggers would have produced; checked)."""
    rng = random.Random(seed)
    timings: dict[str, float] = {}
    t_all = t = time.monotonic()
    now = float(int(time.time()))
    day = 86400.0
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-400000")  # 400 MB while seeding only
    conn.execute("PRAGMA temp_store=FILE")
    for table in ("contacts_contact", "messaging_conversation", "messaging_message"):
        if conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]:
            raise SystemExit(f"{table} is not empty; the seed needs a fresh database")

    # 1. Plan conversations: status, times, holder, message count.
    closed = conversations - waiting - active
    plans: list[list[Any]] = []  # [created, status, n_messages, holder]
    for _ in range(waiting):
        plans.append([now - rng.uniform(60, 6 * 3600), "waiting", rng.randint(1, 3), None])
    for i in range(active):
        holder = counselor_ids[i % len(counselor_ids)]
        plans.append([now - rng.uniform(600, 3 * day), "active", rng.randint(3, 17), holder])
    for _ in range(closed):
        holder = rng.choice(counselor_ids) if rng.random() < 0.95 else None
        plans.append([now - rng.uniform(2 * day, 365 * day), "closed", rng.randint(3, 17), holder])
    # Exactly `messages` in all: nudge open/closed (not waiting) conversations' counts.
    diff = messages - sum(p[2] for p in plans)
    adjustable = [p for p in plans if p[1] != "waiting"]
    while diff:
        p = rng.choice(adjustable)
        if diff > 0 and p[2] < 30:
            p[2] += 1
            diff -= 1
        elif diff < 0 and p[2] > 2:
            p[2] -= 1
            diff += 1
    plans.sort(key=lambda p: p[0])  # ids follow creation time

    phones = seed_phones(rng, conversations)
    timings["plan_s"] = time.monotonic() - t
    t = time.monotonic()

    conn.execute("BEGIN")
    base_contact = (conn.execute("SELECT MAX(id) FROM contacts_contact").fetchone()[0] or 0) + 1
    base_conv = (conn.execute("SELECT MAX(id) FROM messaging_conversation").fetchone()[0] or 0) + 1

    def contact_rows() -> Any:
        for i, p in enumerate(plans):
            name = (
                f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}" if rng.random() < 0.7 else ""
            )
            ts = sqlite_ts(p[0])
            yield (base_contact + i, name, phones[i], "mobile", "", ts, ts, org_id)

    n_contacts = insert_rows(conn, "contacts_contact", CONTACT_COLS, contact_rows())

    # 2. Messages into a staging table, conversation by conversation; collect each
    # conversation's last message time and the read/note rows on the way.
    check_columns(conn, "messaging_message", MESSAGE_COLS)
    conn.execute(
        "CREATE TEMP TABLE stage_message AS SELECT "
        + ", ".join(MESSAGE_COLS)
        + " FROM messaging_message WHERE 0"
    )
    bodies = BodyPicker(rng)
    conv_rows: list[tuple] = []
    read_rows: list[tuple] = []
    note_rows: list[tuple] = []
    stage_sql = (
        f"INSERT INTO temp.stage_message ({', '.join(MESSAGE_COLS)})"
        f" VALUES ({', '.join('?' * len(MESSAGE_COLS))})"
    )
    batch: list[tuple] = []
    counts = {"waiting": 0, "active": 0, "closed": 0}
    for i, (created, status, n_msg, holder) in enumerate(plans):
        conv_id = base_conv + i
        counts[status] += 1
        t_msg = created
        last = created
        assigned_at = None
        for k in range(n_msg):
            direction = "in" if status == "waiting" or k % 2 == 0 else "out"
            if k:
                t_msg += rng.expovariate(1 / 240.0) + 5  # a reply every few minutes
                if status != "closed":
                    t_msg = min(t_msg, now - 1 - (n_msg - k))
            if direction == "out" and assigned_at is None:
                assigned_at = t_msg - rng.uniform(1, 60)
            body, segments, encoding = bodies.pick(direction)
            ts = sqlite_ts(t_msg)
            if direction == "in":
                batch.append(
                    (
                        "in",
                        "personal",
                        body,
                        segments,
                        encoding,
                        "received",
                        f"SM{rng.getrandbits(128):032x}",
                        "",
                        "",
                        0,
                        ts,
                        None,
                        None,
                        conv_id,
                        org_id,
                        None,
                    )
                )
            else:
                batch.append(
                    (
                        "out",
                        "personal",
                        body,
                        segments,
                        encoding,
                        "delivered",
                        f"SB{rng.getrandbits(128):032x}",
                        "",
                        "",
                        1,
                        ts,
                        ts,
                        sqlite_ts(t_msg + rng.uniform(1, 6)),
                        conv_id,
                        org_id,
                        holder,
                    )
                )
            last = max(last, t_msg)
        if len(batch) >= 50_000:
            conn.executemany(stage_sql, batch)
            batch.clear()
        closed_at = None
        if status == "closed":
            closed_at = min(now - 60, last + rng.uniform(300, 3 * 3600))
        if status == "waiting":
            holder, assigned_at = None, None
        elif assigned_at is None:
            assigned_at = created + 30
        conv_rows.append(
            (
                conv_id,
                "sms",
                status,
                0,
                0,
                sqlite_ts(last),
                sqlite_ts(created),
                sqlite_ts(closed_at) if closed_at else None,
                holder,
                base_contact + i,
                number_id,
                org_id,
                sqlite_ts(assigned_at) if holder and assigned_at else None,
            )
        )
        # Read state of the holder: most active ones read, a quarter moved on since.
        if holder and status == "active":
            r = rng.random()
            if r < 0.65:
                read_rows.append(
                    (sqlite_ts(last + rng.uniform(1, 120)), 0, conv_id, org_id, holder)
                )
            elif r < 0.90:
                read_rows.append(
                    (sqlite_ts(max(created, last - 300)), int(r > 0.87), conv_id, org_id, holder)
                )
        elif holder and status == "closed" and rng.random() < 0.5:
            read_rows.append((sqlite_ts(last + rng.uniform(1, 600)), 0, conv_id, org_id, holder))
        if status == "closed" and holder and rng.random() < 0.3:
            note_rows.append(("wrap_up", rng.choice(WRAP_UPS), closed_at, holder, conv_id, org_id))
    if batch:
        conn.executemany(stage_sql, batch)
    n_conversations = insert_rows(conn, "messaging_conversation", CONVERSATION_COLS, conv_rows)
    note_rows = [(k, b, sqlite_ts(c), a, cv, o) for k, b, c, a, cv, o in note_rows]
    n_reads = insert_rows(conn, "messaging_conversationread", READ_COLS, read_rows)
    n_notes = insert_rows(conn, "messaging_conversationnote", NOTE_COLS, note_rows)
    timings["generate_s"] = time.monotonic() - t
    t = time.monotonic()

    # 3. Messages in created_at order, without the FTS triggers and secondary indexes.
    saved = message_triggers_and_indexes(conn)
    for kind, name, _sql in saved:
        conn.execute(f'DROP {kind.upper()} "{name}"')
    conn.execute(
        f"INSERT INTO messaging_message ({', '.join(MESSAGE_COLS)})"
        f" SELECT {', '.join(MESSAGE_COLS)} FROM temp.stage_message ORDER BY created_at"
    )
    n_messages = conn.execute("SELECT changes()").fetchone()[0]
    conn.execute("DROP TABLE temp.stage_message")
    timings["messages_s"] = time.monotonic() - t
    t = time.monotonic()
    for kind, _name, sql in saved:
        if kind == "index":
            conn.execute(sql)
    timings["indexes_s"] = time.monotonic() - t
    t = time.monotonic()
    fts = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE name = 'messaging_message_fts'"
    ).fetchone()
    if fts:
        conn.execute("INSERT INTO messaging_message_fts(messaging_message_fts) VALUES ('rebuild')")
    for kind, _name, sql in saved:
        if kind == "trigger":
            conn.execute(sql)
    conn.execute("COMMIT")
    timings["fts_s"] = time.monotonic() - t
    t = time.monotonic()
    after = message_triggers_and_indexes(conn)
    if sorted(after) != sorted(saved):
        raise SystemExit("seed: messaging_message triggers/indexes differ after the bulk load")
    if fts:
        # Raises SQLITE_CORRUPT_VTAB if the index does not match the content table.
        conn.execute(
            "INSERT INTO messaging_message_fts(messaging_message_fts, rank)"
            " VALUES ('integrity-check', 1)"
        )
    timings["fts_check_s"] = time.monotonic() - t
    t = time.monotonic()
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    timings["analyze_s"] = time.monotonic() - t
    conn.close()
    timings = {k: round(v, 2) for k, v in timings.items()}
    return {
        "contacts": n_contacts,
        "conversations": n_conversations,
        "by_status": counts,
        "messages": n_messages,
        "conversation_reads": n_reads,
        "notes": n_notes,
        "fts": bool(fts),
        "timings": timings,
        "seed_s": round(time.monotonic() - t_all, 1),
        "db_bytes": db_path.stat().st_size,
    }


def pick_search_terms(db_path: Path, org_id: int, seed: int = 11) -> dict:
    """Search inputs chosen from the seeded data, with their hit counts."""
    rng = random.Random(seed)
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)

    def fts_hits(word: str) -> tuple[int, int]:
        """(messages, of which in open conversations) matching the word as a prefix."""
        total, open_ = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(v.status != 'closed'), 0)"
            " FROM messaging_message_fts f JOIN messaging_message m ON m.id = f.rowid"
            " JOIN messaging_conversation v ON v.id = m.conversation_id"
            " WHERE messaging_message_fts MATCH ?",
            [f'"{word}"*'],
        ).fetchone()
        return int(total), int(open_)

    # Rare: the place with the fewest hits that still has some in open and in closed
    # conversations (both the All and the Closed search must find rows).
    places = sorted((*fts_hits(p), p) for p in PLACES)
    rare_hits, rare_open, rare = next(
        ((t, o, p) for t, o, p in places if o >= 1 and t - o >= 1), places[-1]
    )
    # Common: an everyday word in roughly one message in ten.
    common = "thanks"
    common_hits, common_open = fts_hits(common)
    name_counts = conn.execute(
        "SELECT substr(name, instr(name, ' ') + 1) AS last, COUNT(*) FROM contacts_contact"
        " WHERE organization_id = ? AND name != '' GROUP BY last ORDER BY COUNT(*), last",
        [org_id],
    ).fetchall()
    last_name, last_name_hits = name_counts[len(name_counts) // 2]
    # Phone digits: the last 7 digits of an open conversation's contact (one the view shows).
    phones = conn.execute(
        "SELECT c.phone FROM contacts_contact c JOIN messaging_conversation v"
        " ON v.contact_id = c.id WHERE v.status != 'closed' ORDER BY v.id"
    ).fetchall()
    phone = rng.choice(phones)[0]
    digits = phone[-7:]
    digit_hits = conn.execute(
        "SELECT COUNT(*) FROM contacts_contact WHERE phone LIKE ?", [f"%{digits}%"]
    ).fetchone()[0]
    conn.close()
    return {
        "name": {"q": last_name, "contacts": last_name_hits},
        "phone": {"q": f"{digits[:3]}-{digits[3:]}", "contacts": digit_hits},
        "rare_word": {"q": rare, "messages": rare_hits, "in_open": rare_open},
        "common_word": {"q": common, "messages": common_hits, "in_open": common_open},
    }


def list_cases(terms: dict[str, Any]) -> list[dict[str, Any]]:
    """(name, who, url params). Search runs as the admin (view=all needs a manager)."""
    cases = [
        # The full workspace page once (first load), then the list fragment that the console
        # reloads on live events and filter changes (GET /queue with HX-Request: true).
        {"name": "page_waiting", "as": "counselor", "params": {"view": "waiting"}, "path": "/"},
        {"name": "waiting", "as": "counselor", "params": {"view": "waiting"}},
        {"name": "mine", "as": "counselor", "params": {"view": "mine"}},
        {"name": "mine_unread", "as": "counselor", "params": {"view": "mine", "unread": "1"}},
        {"name": "all", "as": "admin", "params": {"view": "all"}},
        {"name": "closed", "as": "admin", "params": {"view": "closed"}},
    ]
    for key in ("name", "phone", "rare_word", "common_word"):
        q = terms[key]["q"]
        cases.append({"name": f"search_{key}", "as": "admin", "params": {"view": "all", "q": q}})
    for key in ("name", "rare_word", "common_word"):
        q = terms[key]["q"]
        cases.append(
            {"name": f"closed_search_{key}", "as": "admin", "params": {"view": "closed", "q": q}}
        )
    return cases


def queue_view_available() -> bool:
    from django.urls import Resolver404, resolve

    try:
        resolve("/queue")
    except Resolver404:
        return False
    return True


ROW_MARK = b"data-conversation-id="


def measure_lists(
    *, users: dict[str, Any], terms: dict[str, Any], requests: int, warmup: int, mode: str
) -> dict[str, Any]:
    """Time each case `requests` times, round-robin over the cases (background load then
    hits every case alike). mode: "view" (GET /queue through the whole Django stack) or
    "selector" (queue_conversations()[:PAGE], while the view does not exist yet)."""
    from urllib.parse import urlencode

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from openline.core.models import Membership, User
    from openline.messaging.selectors import QueueFilter, queue_conversations

    cases = list_cases(terms)
    clients: dict[str, Any] = {}
    members: dict[str, Any] = {}
    for who in ("counselor", "admin"):
        user = User.objects.get(pk=users[who]["id"])
        client = Client(HTTP_HOST=common.HOST)
        client.force_login(user)
        clients[who] = client
        members[who] = Membership.objects.select_related("organization").get(user=user)

    page = 50

    def run(case: dict[str, Any]) -> tuple[int, int, int]:
        """(status, rows, bytes)."""
        params = case["params"]
        if mode == "view":
            path = case.get("path", "/queue")
            # htmx's header: without it /queue redirects to the full page.
            headers = {"HX-Request": "true"} if path == "/queue" else {}
            resp = clients[case["as"]].get(path + "?" + urlencode(params), headers=headers)
            body = resp.content
            return resp.status_code, body.count(ROW_MARK), len(body)
        filters = QueueFilter(
            view=params["view"],
            query=params.get("q", ""),
            unread_only=params.get("unread") == "1",
        )
        rows = list(queue_conversations(membership=members[case["as"]], filters=filters)[:page])
        return 200, len(rows), 0

    if mode == "selector":
        cases = [c for c in cases if "path" not in c]
    out: dict[str, Any] = {}
    for case in cases:
        url = case.get("path", "/queue") + "?" + urlencode(case["params"])
        out[case["name"]] = {"url": url, "as": case["as"], "times": [], "bad": []}
        for _ in range(warmup):
            run(case)
    # CPU while timing: this process vs. everything else on the machine ("other": another
    # job takes cores from this one and makes the figures noisy).
    meter = common.CpuMeter()
    for _ in range(requests):
        for case in cases:
            t0 = time.perf_counter()
            status, rows, size = run(case)
            elapsed = time.perf_counter() - t0
            entry = out[case["name"]]
            entry["times"].append(elapsed)
            entry["status"], entry["rows"], entry["bytes"] = status, rows, size
            if status != 200 and len(entry["bad"]) < 3:
                entry["bad"].append(status)
    cpu = meter.stop().as_dict(digits=1, busy=False)
    # One more request each with the queries captured. Django's per-query time on SQLite
    # stops at the first row (the rest is computed while the rows are fetched), so every
    # SELECT is run again here with all rows fetched (best of 3): that shows which query
    # dominates, and the rest of the request time is Python (ORM, template).
    raw = connection.connection
    for case in cases:
        entry = out[case["name"]]
        with CaptureQueriesContext(connection) as ctx:
            run(case)
        queries = []
        for q in ctx.captured_queries:
            sql = q["sql"]
            best = None
            if sql.lstrip().upper().startswith("SELECT"):
                with contextlib.suppress(sqlite3.Error):
                    for _ in range(3):
                        t0 = time.perf_counter()
                        raw.execute(sql).fetchall()
                        elapsed = time.perf_counter() - t0
                        best = elapsed if best is None else min(best, elapsed)
            queries.append({"ms": None if best is None else round(best * 1000, 2), "sql": sql})
        timed = [q for q in queries if q["ms"] is not None]
        slow = max(timed, key=lambda q: q["ms"], default={"ms": None, "sql": ""})
        plan: list[str] = []
        if slow["sql"]:
            with contextlib.suppress(sqlite3.Error):
                plan = [str(r[-1]) for r in raw.execute("EXPLAIN QUERY PLAN " + slow["sql"])]
        entry["queries"] = {
            "count": len(queries),
            "sql_ms": round(sum(q["ms"] for q in timed), 2),
            "slowest_ms": slow["ms"],
            "slowest_sql": slow["sql"][:2000],
            "slowest_plan": plan,
            "all": [
                {"ms": q["ms"], "sql": q["sql"][:300]}
                for q in sorted(queries, key=lambda q: -(q["ms"] or 0))
            ],
        }
        times = entry.pop("times")
        entry["ms"] = common.dist_ms(times, (50, 95, 99))
        entry["ok"] = entry["status"] == 200 and not entry["bad"] and entry["rows"] > 0
    return {"cases": out, "cpu": cpu}


def run_lists(args: argparse.Namespace) -> dict[str, Any]:
    """Part 1. Runs Django in this process against the seeded database."""
    reuse = args.lists_db is not None
    var_dir = Path(args.lists_db) if reuse else Path(tempfile.mkdtemp(prefix="openline-console-"))
    info_file = var_dir / "bench-console-seed.json"
    db_path = var_dir / "openline.sqlite3"
    common.django_in_process(var_dir)
    from django.db import connections

    result: dict[str, Any] = {"var_dir": str(var_dir)}
    try:
        if reuse and info_file.exists():
            seed_info = json.loads(info_file.read_text())
            log(f"lists: reusing the seeded database in {var_dir}")
        else:
            log(f"lists: var dir {var_dir}; migrating, creating org, users and number")
            t0 = time.monotonic()
            bench = common.set_up_openline(provider="sandbox")
            org, number = bench.org, bench.number
            password = "bench-" + os.urandom(6).hex()

            def user(email: str, role: str) -> dict[str, Any]:
                return common.openline_cli(
                    "user", "create", "--org", "bench", "--email", email,
                    "--role", role, "--password", password,
                )  # fmt: skip

            users: dict[str, Any] = {"admin": user("admin@bench.test", "admin")}
            counselors = [
                user(f"counselor{i + 1:02d}@bench.test", "counselor")
                for i in range(args.counselors)
            ]
            users["counselor"] = counselors[0]
            setup_s = round(time.monotonic() - t0, 1)
            connections.close_all()
            n_conv = args.conversations
            log(
                f"  seeding {n_conv:,} conversations / {args.messages:,} messages"
                f" (setup took {setup_s} s)"
            )
            seed_info = seed_database(
                db_path,
                org_id=org["id"],
                number_id=number["id"],
                counselor_ids=[c["id"] for c in counselors],
                conversations=n_conv,
                messages=args.messages,
                waiting=max(1, round(n_conv * 0.003)),
                active=max(len(counselors), round(n_conv * 0.02)),
            )
            seed_info.update(setup_s=setup_s, org_id=org["id"], number_id=number["id"])
            seed_info["users"] = users
            seed_info["counselors"] = len(counselors)
            info_file.write_text(json.dumps(seed_info, indent=2))
            log(
                f"  seeded in {seed_info['seed_s']} s ({seed_info['timings']});"
                f" database {seed_info['db_bytes'] / 1e6:,.0f} MB"
            )
        seed_info["search"] = pick_search_terms(db_path, seed_info["org_id"])
        result["seed"] = seed_info
        mode = "view" if queue_view_available() else "selector"
        if mode == "selector":
            log("  /queue does not resolve yet: timing the selector queue_conversations()[:50]")
        log(
            f"  timing {len(list_cases(seed_info['search']))} cases x {args.list_requests}"
            f" requests ({mode})"
        )
        t0 = time.monotonic()
        result["mode"] = mode
        measured = measure_lists(
            users=seed_info["users"],
            terms=seed_info["search"],
            requests=args.list_requests,
            warmup=args.list_warmup,
            mode=mode,
        )
        result["cases"], result["cpu"] = measured["cases"], measured["cpu"]
        result["measure_s"] = round(time.monotonic() - t0, 1)
    finally:
        connections.close_all()
        note = f" (reuse with --lists-db {var_dir})"
        common.clean_up(var_dir, keep=args.keep or reuse, indent="  ", note=note)
    return result


# =============================================================================================
# Part 2: inbound webhook -> WebSocket
# =============================================================================================

# --- the paced webhook sender (this process) --------------------------------------------------


def load_requests(
    factory: common.RequestFactory, prefix: Path, count: int, port: int, path: str
) -> list[tuple[str, bytes]]:
    """Pre-signed, unique Twilio webhooks (common.RequestFactory) as raw HTTP/1.1."""
    factory.write(prefix, count, 1)
    out = []
    for line in Path(f"{prefix}.0").read_text(encoding="utf-8").splitlines():
        signature, body = line.split("\t", 1)
        sid = parse_qs(body)["MessageSid"][0]
        data = body.encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {common.HOST}:{port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"X-Twilio-Signature: {signature}\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        out.append((sid, head.encode() + data))
    return out


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    match = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
    if match:
        await reader.readexactly(int(match.group(1)))
    elif re.search(rb"(?i)\r\ntransfer-encoding:\s*chunked", head):
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


async def send_paced(
    port: int, requests: list[tuple[str, bytes]], rate: float, connections: int
) -> dict[str, Any]:
    """Send every request on an absolute schedule (request i at t0 + i/rate) over
    `connections` keep-alive connections. A connection ready to send takes the next slot;
    the send time is stamped just before the write, so latency starts at the actual send."""
    n = len(requests)
    sent_at: dict[str, float] = {}
    acked: dict[str, int] = {}
    ack_s: list[float] = []
    behind_s: list[float] = []
    errors: dict[str, int] = {}
    next_slot = 0
    t0 = time.monotonic() + 0.2

    async def worker() -> None:
        nonlocal next_slot
        reader, writer = await asyncio.open_connection(common.HOST, port)
        try:
            while next_slot < n:
                i = next_slot
                next_slot += 1
                due = t0 + i / rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                sid, raw = requests[i]
                t = time.monotonic()
                behind_s.append(max(0.0, t - due))
                sent_at[sid] = t
                try:
                    writer.write(raw)
                    status = await asyncio.wait_for(_read_response(reader), 10)
                except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
                    key = type(exc).__name__
                    errors[key] = errors.get(key, 0) + 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(common.HOST, port)
                    continue
                ack_s.append(time.monotonic() - t)
                acked[sid] = status
                if status != 200:
                    errors[f"HTTP {status}"] = errors.get(f"HTTP {status}", 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    t_end = max(sent_at.values(), default=t0)
    span = t_end - t0
    return {
        "sent": len(sent_at),
        "acked_200": sum(1 for s in acked.values() if s == 200),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "target_rps": round(rate, 1),
        "achieved_rps": round((len(sent_at) - 1) / span, 1) if span > 0 else None,
        "ack_ms": common.dist_ms(ack_s),
        "behind_schedule_ms": common.dist_ms(behind_s),
        "_sent_at": sent_at,
        "_acked": acked,
    }


# --- rate ------------------------------------------------------------------------------------


def rate_from_results() -> dict[str, Any] | None:
    """The newest bench/results/inbound-*.json: its sustained phase's target rate."""
    for path in sorted(common.RESULTS.glob("inbound-*.json"), reverse=True):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            data = json.loads(path.read_text())
            sustained = float(data["openline"]["sustained"]["target_rps"])
            return {
                "source": str(path.relative_to(common.ROOT)),
                "sustained_rps": sustained,
                "baseline_max_rps": data.get("summary", {}).get("baseline_max_rps"),
            }
    return None


def measure_baseline(
    env: dict[str, str],
    var_dir: Path,
    factory: common.RequestFactory,
    path: str,
    duration: float,
    warmup: float,
) -> dict[str, Any]:
    """The bare baseline's best req/s, measured as bench/inbound.py does (its app, wrk,
    inbound.lua, c=8/32/64), only with shorter phases when asked."""
    if not Path(common.WRK).exists():
        raise RuntimeError(
            "no bench/results/inbound-*.json to take the rate from, and measuring the baseline"
            " needs wrk (apt-get install -y wrk); or pass --rate"
        )
    port = common.free_port()
    server = common.baseline_server(env, var_dir, port)
    req_dir = var_dir / "requests"
    rows: dict[str, Any] = {}
    try:
        server.start()
        warm = factory.write(req_dir / "b-warmup", common.phase_count(25000, warmup, 64), 2)
        res = common.run_wrk(
            port=port, path=path, requests=warm, connections=32, duration=warmup, threads=2
        )
        guess = res["rps"]
        for c in (8, 32, 64):
            files = factory.write(req_dir / f"b-c{c}", common.phase_count(guess, duration, c), 2)
            res = common.run_wrk(
                port=port, path=path, requests=files, connections=c, duration=duration, threads=2
            )
            guess = max(guess, res["rps"])
            rows[f"c{c}"] = {
                "rps": round(res["rps"], 1),
                "errors": res["errors"],
                "other_cpu_pct": res.get("cpu", {}).get("other_pct"),
            }
            log(f"  baseline c={c}: {res['rps']:,.0f} req/s, errors {res['errors']}")
    finally:
        server.stop()
    best = max(r["rps"] for r in rows.values())
    return {
        "source": f"measured (baseline_app.py, {duration:g} s per concurrency)",
        "baseline_max_rps": best,
        "sustained_rps": round(common.SUSTAINED_FRACTION * best, 1),
        "baseline": rows,
    }


# --- part 2 ----------------------------------------------------------------------------------


def run_realtime(args: argparse.Namespace) -> dict[str, Any]:  # noqa: C901 -- one linear run
    var_dir = Path(tempfile.mkdtemp(prefix="openline-console-ws-"))
    req_dir = var_dir / "requests"
    req_dir.mkdir()
    port = common.free_port()
    env = common.bench_env(var_dir, port)
    public_url = f"http://{common.HOST}:{port}"
    common.check_bodies()
    result: dict[str, Any] = {"var_dir": str(var_dir), "sessions_requested": args.sessions}
    server: common.Server | None = None
    client: common.ConsoleClient | None = None
    db: common.EventsDb | None = None
    try:
        log(f"realtime: var dir {var_dir}; migrating, creating org, number and sessions")
        bench = common.set_up_openline(provider="twilio", env=env)
        path = bench.inbound_path
        factory = common.RequestFactory(public_url + path, bench.token, bench.account_sid, seed=2)
        sessions = common.create_sessions(env, args.sessions, args.supervisors)
        result["roles"] = {
            role: sum(1 for s in sessions if s["role"] == role)
            for role in sorted({s["role"] for s in sessions})
        }

        # The rate: --rate, else half the foundation benchmark's sustained rate.
        if args.rate:
            rate_info: dict[str, Any] = {"source": "--rate", "sustained_rps": None}
            rate = args.rate
        else:
            found = rate_from_results()
            if found is None:
                log("  no bench/results/inbound-*.json: measuring the bare baseline")
                found = measure_baseline(
                    env, var_dir, factory, path, args.baseline_duration, args.baseline_warmup
                )
            rate_info = found
            rate = RATE_FRACTION * float(found["sustained_rps"])
        rate_info["rate_rps"] = round(rate, 1)
        result["rate"] = rate_info
        log(f"  rate {rate:,.1f} webhooks/s ({rate_info['source']})")

        cmd = [str(common.OPENLINE), "run", *(["--one-process"] if args.one_process else [])]
        log(f"  starting openline {' '.join(cmd[1:])}")
        if args.profile_server:
            # The event loop (intake, channel layer, consumers) runs in the main thread,
            # which is what cProfile sees; written when the server stops.
            cmd = [sys.executable, "-m", "cProfile", "-o", str(Path(args.profile_server).resolve()),
                   "-m", "openline.runtime.cli", "run"]  # fmt: skip
        server = common.Server("openline", cmd, env, port, var_dir / "openline.log")
        server.start()
        result["server"] = {**server.startup, "libraries": server.loaded_libraries()}
        db = common.EventsDb(var_dir / "openline.sqlite3")

        keys = [s["key"] for s in sessions]
        client = common.ConsoleClient(port=port, keys=keys, var_dir=var_dir, name="ws-client")
        connected, failed = client.ready(timeout=180)
        result["connected"], result["connect_failed"] = connected, failed
        log(f"  {connected} WebSocket sessions connected, {failed} failed")

        warm_n = max(20, int(rate * args.ws_warmup))
        warm = load_requests(factory, req_dir / "ws-warmup", warm_n, port, path)
        measured_n = max(1, int(rate * args.ws_duration))
        reqs = load_requests(factory, req_dir / "ws-measured", measured_n, port, path)
        if connected:
            # Warm-up, then wait until its events reached every socket (or stopped coming):
            # a backlog left over would be charged to the measured phase.
            warm_sent = asyncio.run(send_paced(port, warm, rate, args.send_connections))
            common.wait_caught_up(db, since=time.monotonic(), timeout=args.catch_up_timeout)
            result["warmup"] = {
                "sent": warm_sent["sent"],
                "errors": warm_sent["errors"],
                "deliveries": client.wait_deliveries(
                    connected * warm_sent["acked_200"], stall=args.stall, timeout=args.drain_timeout
                ),
            }
            before = client.delivered()
            time.sleep(0.5)
            log(f"  sending {measured_n:,} webhooks at {rate:,.1f}/s for {args.ws_duration:g} s")
            server_pid = server.proc.pid if server.proc else 0
            pids = {"server": [server_pid], "ws_client": [client.proc.pid]}
            meter = common.CpuMeter(pids, own="sender")
            sent = asyncio.run(send_paced(port, reqs, rate, args.send_connections))
            result["processing"] = common.wait_caught_up(
                db, since=time.monotonic(), timeout=args.catch_up_timeout
            )
            result["drain"] = client.wait_deliveries(
                connected * (warm_sent["acked_200"] + sent["acked_200"]),
                stall=args.stall,
                timeout=args.drain_timeout,
            )
            cpu = meter.stop()
            result["cpu"] = {
                **cpu.as_dict(),
                "server_pct_of_one_cpu": cpu.pct_of_one_cpu("server"),
                "ws_client_pct_of_one_cpu": cpu.pct_of_one_cpu("ws_client"),
            }
            log(
                f"  deliveries: {result['drain']['count'] - before:,} of"
                f" {connected * sent['acked_200']:,}; waited {result['drain']['waited_s']} s"
            )
        else:
            sent = {"_sent_at": {}, "_acked": {}, "sent": 0, "errors": 0}
        client.stop()
        if client.proc.returncode not in (0, None):
            result["client_exit"] = client.proc.returncode
        stats = client.stats()
        result["client"] = {k: v for k, v in stats.items() if k != "live"}
        sent_at: dict[str, float] = sent.pop("_sent_at")
        acked: dict[str, int] = sent.pop("_acked")
        result["send"] = sent
        received = client.received(len(sessions))
        if connected and received is not None:
            result["latency"] = analyse(
                db_path=var_dir / "openline.sqlite3",
                client_data=received,
                live=stats.get("live", []),
                sessions=sessions,
                sent_at=sent_at,
                acked=acked,
            )
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc()
        log(f"  realtime part failed: {result['error']}")
        if server is not None:
            server.note_failure(result)
        if client is not None:
            result["client_log_tail"] = client.tail()
    finally:
        if db is not None:
            db.close()
        if client is not None:
            client.stop()
        if server is not None:
            server.stop()
            with contextlib.suppress(OSError):
                text = server.log_path.read_text(errors="replace")
                # The in-memory layer's group_send swallows ChannelFull (a dropped event for
                # one socket); only sends still pending at shutdown get logged.
                result["server_channel_full"] = text.count("exception=ChannelFull(")
                result["server_errors"] = text.count(" ERROR ")
        common.clean_up(var_dir, keep=args.keep, indent="  ")
    return result


def analyse(
    *,
    db_path: Path,
    client_data: list[tuple[array, array]],
    live: list[int],
    sessions: list[dict[str, Any]],
    sent_at: dict[str, float],
    acked: dict[str, int],
) -> dict[str, Any]:
    """Join each client's (message_id, received) with the webhook's send time through the
    database's message id -> provider message id (the MessageSid)."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=20)
    mid_to_sid = dict(
        conn.execute("SELECT id, provider_message_id FROM messaging_message WHERE direction='in'")
    )
    # Server-side stamps (wall clock) for the breakdown: intake committed the event
    # (received_at), processing turned it into a message (processed_at).
    server_stamps = {
        mid: (received, processed)
        for mid, received, processed in conn.execute(
            "SELECT m.id, e.received_at, e.processed_at FROM messaging_message m"
            " JOIN messaging_inboundevent e ON e.id = m.inbound_event_id"
        )
    }
    assigned = conn.execute(
        "SELECT COUNT(*) FROM messaging_conversation WHERE assigned_to_id IS NOT NULL"
    ).fetchone()[0]
    conn.close()
    acked_ok = {sid for sid, status in acked.items() if status == 200}
    stored = {sid for sid in mid_to_sid.values() if sid in sent_at}
    measured = {mid: sid for mid, sid in mid_to_sid.items() if sid in sent_at}
    latencies: list[float] = []
    per_message_last: dict[int, float] = {}
    per_message_first: dict[int, float] = {}
    per_second: dict[int, list[float]] = {}
    t_first = min(sent_at.values(), default=0.0)
    duplicates = 0
    delivered_by_role: dict[str, int] = {}
    missing_by_role: dict[str, int] = {}
    for i in live:
        ids, stamps = client_data[i]
        seen: set[int] = set()
        for mid, t in zip(ids, stamps, strict=True):
            sid = measured.get(mid)
            if sid is None:
                continue  # warm-up traffic
            if mid in seen:
                duplicates += 1
                continue
            seen.add(mid)
            lat = t - sent_at[sid]
            latencies.append(lat)
            if lat > per_message_last.get(mid, -1.0):
                per_message_last[mid] = lat
            if lat < per_message_first.get(mid, 1e9):
                per_message_first[mid] = lat
            per_second.setdefault(int(sent_at[sid] - t_first), []).append(lat)
        role = sessions[i]["role"]
        delivered_by_role[role] = delivered_by_role.get(role, 0) + len(seen)
        missing_by_role[role] = missing_by_role.get(role, 0) + len(measured) - len(seen)
    expected = len(live) * len(measured)
    mono = common.db_clock()
    intake, processing, fanout_first, fanout_last = [], [], [], []
    for mid, sid in measured.items():
        received, processed = (mono(x) for x in server_stamps.get(mid, (None, None)))
        if received is None or processed is None:
            continue
        intake.append(received - sent_at[sid])
        processing.append(processed - received)
        if mid in per_message_first:
            fanout_first.append(sent_at[sid] + per_message_first[mid] - processed)
            fanout_last.append(sent_at[sid] + per_message_last[mid] - processed)
    return {
        "messages_sent": len(sent_at),
        "messages_acked": len(acked_ok),
        "messages_stored": len(stored),
        "acked_not_stored": len(acked_ok - stored),
        "conversations_assigned": assigned,
        "sessions": len(live),
        "expected_deliveries": expected,
        "delivered": len(latencies),
        "missing": expected - len(latencies),
        "duplicates": duplicates,
        "delivered_by_role": delivered_by_role,
        "missing_by_role": missing_by_role,
        "ms": common.dist_ms(latencies, (50, 90, 99, 99.9)),
        "last_session_ms": common.dist_ms(list(per_message_last.values()), (50, 90, 99)),
        "breakdown_ms": {
            "send_to_received_at": common.dist_ms(intake, (50, 99)),
            "received_at_to_processed_at": common.dist_ms(processing, (50, 99)),
            "processed_at_to_first_socket": common.dist_ms(fanout_first, (50, 99)),
            "processed_at_to_last_socket": common.dist_ms(fanout_last, (50, 99)),
        },
        "per_second": common.per_second_ms(per_second),
    }


# =============================================================================================
# Summary
# =============================================================================================


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    checks: dict[str, bool] = {}
    lists = results.get("lists")
    if lists is not None:
        cases = lists.get("cases", {})
        checks["lists_answer_with_rows"] = bool(cases) and all(c["ok"] for c in cases.values())
        checks["lists_p95"] = bool(cases) and all(
            c["ms"]["p95"] is not None and c["ms"]["p95"] < TARGET_LIST_P95_MS
            for c in cases.values()
        )
        checks["lists_on_view"] = lists.get("mode") == "view"
    rt = results.get("realtime")
    if rt is not None:
        lat = rt.get("latency")
        send = rt.get("send", {})
        checks["ws_all_connected"] = (
            rt.get("connected", 0) == rt["sessions_requested"] and "error" not in rt
        )
        checks["ws_p99"] = bool(lat) and (lat["ms"]["p99"] or 1e9) < TARGET_WS_P99_MS
        checks["ws_every_delivery"] = bool(lat) and lat["missing"] == 0 and lat["delivered"] > 0
        checks["ws_rate_achieved"] = (
            bool(send.get("achieved_rps"))
            and send["achieved_rps"] >= 0.95 * send["target_rps"]
            and send.get("errors", 1) == 0
        )
    return {"checks": checks}


def print_summary(results: dict[str, Any], summary: dict[str, Any]) -> None:
    log("\n=== OpenLine console benchmark ===")
    common.log_code(results.get("code", {}))
    lists = results.get("lists")
    if lists is not None and "seed" in lists:
        s = lists["seed"]
        log(
            f"seeded {s['conversations']:,} conversations ({s['by_status']}), {s['messages']:,}"
            f" messages, {s['contacts']:,} contacts, {s['conversation_reads']:,} read rows in"
            f" {s['seed_s']} s; database {s['db_bytes'] / 1e6:,.0f} MB"
        )
        terms = s["search"]
        log(
            "search terms: "
            + ", ".join(
                f"{k}={v['q']!r} ({v.get('contacts', v.get('messages'))}"
                f" {'contacts' if 'contacts' in v else 'messages'})"
                for k, v in terms.items()
            )
        )
    if lists is not None and "cases" in lists:
        log(
            f"list views ({lists['mode']}: "
            + ("GET /queue via django.test.Client" if lists["mode"] == "view" else "selector")
            + f", server time in-process; target p95 < {TARGET_LIST_P95_MS:g} ms)"
        )
        head = (
            f"{'case':<28} {'as':<9} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'rows':>5}"
            f" {'status':>6} {'queries':>7} {'SQL ms':>7} {'slowest q ms':>12}"
        )
        log(head)
        log("-" * len(head))
        for name, c in lists["cases"].items():
            flag = "" if c["ok"] and c["ms"]["p95"] < TARGET_LIST_P95_MS else "  <-"
            log(
                f"{name:<28} {c['as']:<9} {fmt(c['ms']['p50'], 1):>8} {fmt(c['ms']['p95'], 1):>8}"
                f" {fmt(c['ms']['max'], 1):>8} {c['rows']:>5} {c['status']:>6}"
                f" {c['queries']['count']:>7} {fmt(c['queries']['sql_ms'], 1):>7}"
                f" {fmt(c['queries']['slowest_ms'], 1):>12}{flag}"
            )
        log(
            "SQL ms: the request's queries re-run with every row fetched (Django's own query"
            " time stops at the first row on SQLite); the rest of p50 is Python (ORM, template)"
        )
        cpu = lists.get("cpu", {})
        log(
            f"CPU while timing: this process {cpu.get('bench_s')} s of {cpu.get('wall_s')} s,"
            f" other {cpu.get('other_s')} s ({cpu.get('other_pct')}% of all CPUs: another job"
            " on the machine; above a few percent the figures are noisy)"
        )
    rt = results.get("realtime")
    if rt is not None:
        rate = rt.get("rate", {})
        log(
            f"\nrealtime: {rt.get('connected', 0)}/{rt['sessions_requested']} sessions"
            f" ({rt.get('roles')}), rate {rate.get('rate_rps')} webhooks/s"
            f" (0.5 x sustained {rate.get('sustained_rps')}, from {rate.get('source')})"
        )
        if "error" in rt:
            log(f"  FAILED: {rt['error']}")
        warm = rt.get("warmup")
        if warm:
            d = warm["deliveries"]
            log(
                f"  warm-up: {warm['sent']} webhooks; {d['count']:,} of {d['target']:,} frames"
                f" arrived after {d['waited_s']} s"
                + (
                    ""
                    if d["reached"]
                    else " (NOT drained: its backlog overlaps the measured phase)"
                )
            )
        send = rt.get("send", {})
        if send.get("sent"):
            log(
                f"  sent {send['sent']:,}, achieved {send['achieved_rps']} /s, errors"
                f" {send['errors']} {send['error_kinds'] or ''}, ack p50"
                f" {send['ack_ms']['p50']} ms p99 {send['ack_ms']['p99']} ms, behind schedule"
                f" p99 {send['behind_schedule_ms']['p99']} ms"
            )
        lat = rt.get("latency")
        if lat:
            ms = lat["ms"]
            log(
                f"  webhook sent -> message.created received: p50 {ms['p50']} ms, p90"
                f" {ms['p90']} ms, p99 {ms['p99']} ms, p99.9 {ms['p99_9']} ms, max {ms['max']} ms"
                f" (target p99 < {TARGET_WS_P99_MS:g} ms)"
            )
            last = lat["last_session_ms"]
            log(
                f"  until the last of the sessions had it: p50 {last['p50']} ms, p99"
                f" {last['p99']} ms, max {last['max']} ms"
            )
            drain = rt.get("drain", {})
            log(
                f"  waited {drain.get('waited_s')} s for the last frames after processing caught"
                f" up (until none came for --stall s, at most --drain-timeout s); server log:"
                f" {rt.get('server_errors', 0)} ERROR lines, {rt.get('server_channel_full', 0)}"
                " ChannelFull"
            )
            log(
                f"  deliveries {lat['delivered']:,} of {lat['expected_deliveries']:,} expected"
                f" ({lat['sessions']} sessions x {lat['messages_stored']:,} messages);"
                f" missing {lat['missing']:,} {lat['missing_by_role']}, duplicates"
                f" {lat['duplicates']}; acked but not stored {lat['acked_not_stored']}"
            )
            b = lat["breakdown_ms"]
            log(
                "  breakdown p50/p99 ms: send -> received_at (intake)"
                f" {common.p50_p99(b['send_to_received_at'])}, -> processed_at (processing)"
                f" {common.p50_p99(b['received_at_to_processed_at'])}, -> first socket"
                f" {common.p50_p99(b['processed_at_to_first_socket'])}, -> last socket"
                f" {common.p50_p99(b['processed_at_to_last_socket'])}"
            )
            common.log_worst_second(lat["per_second"], indent="  ")
        client = rt.get("client", {})
        if client:
            log(
                f"  client: {client.get('frames', 0):,} frames, events {client.get('events')},"
                f" loop lag {client.get('loop_lag_ms')}, connect {client.get('connect_s')} s,"
                f" compression {client.get('extensions')!r}, closed early"
                f" {client.get('closed_early') or 0}, connect errors"
                f" {client.get('connect_errors') or 0}"
            )
        cpu = rt.get("cpu")
        if cpu:
            log(
                f"  CPU over {cpu['wall_s']} s: server {cpu['server_s']} s"
                f" ({cpu['server_pct_of_one_cpu']}% of a core), ws client {cpu['ws_client_s']} s"
                f" ({cpu['ws_client_pct_of_one_cpu']}%), sender {cpu['sender_s']} s, other"
                f" {cpu['other_s']} s ({cpu['other_pct']}% of all CPUs)"
            )
    common.log_footer(results["machine"], summary["checks"])


def main() -> int:  # noqa: C901
    parser = argparse.ArgumentParser(description="OpenLine console benchmark")
    parser.add_argument("--part", choices=["all", "lists", "realtime"], default="all")
    common.add_run_options(parser, quick="small database, short phases")
    g = parser.add_argument_group("part 1: list views")
    g.add_argument("--conversations", type=int, default=100_000)
    g.add_argument("--messages", type=int, default=1_000_000)
    g.add_argument("--counselors", type=int, default=20)
    g.add_argument("--list-requests", type=int, default=200, help="timed requests per case")
    g.add_argument("--list-warmup", type=int, default=5, help="untimed requests per case")
    g.add_argument(
        "--lists-db",
        metavar="VAR_DIR",
        help="reuse a var dir kept (--keep) from an earlier run instead of seeding",
    )
    g = parser.add_argument_group("part 2: webhook -> WebSocket")
    g.add_argument("--sessions", type=int, default=200, help="console WebSocket sessions")
    g.add_argument("--supervisors", type=int, default=10, help="of the sessions; rest counselors")
    g.add_argument("--rate", type=float, help="webhooks/s (default: half the sustained rate)")
    g.add_argument("--ws-duration", type=float, default=20.0, help="seconds of paced webhooks")
    g.add_argument("--ws-warmup", type=float, default=3.0)
    g.add_argument(
        "--send-connections", type=int, default=32, help="keep-alive connections (as wrk -c32)"
    )
    g.add_argument(
        "--stall",
        type=float,
        default=3.0,
        help="stop waiting for frames when none arrived for this many seconds",
    )
    g.add_argument(
        "--drain-timeout", type=float, default=30.0, help="longest wait for outstanding frames"
    )
    g.add_argument("--catch-up-timeout", type=float, default=25.0)
    g.add_argument(
        "--one-process",
        action="store_true",
        help="serve with `openline run --one-process` (everything in the web process)",
    )
    g.add_argument(
        "--profile-server",
        metavar="FILE",
        help="run `openline run` under cProfile (its main thread: the event loop) into FILE",
    )
    g.add_argument("--baseline-duration", type=float, default=10.0)
    g.add_argument("--baseline-warmup", type=float, default=3.0)
    args = parser.parse_args()
    if args.quick:
        args.conversations, args.messages = 10_000, 100_000
        args.list_requests, args.list_warmup = 30, 3
        args.ws_duration, args.ws_warmup = 5.0, 1.0
        args.baseline_duration, args.baseline_warmup = 3.0, 1.0

    report = common.Report("console", sqlite=sqlite3.sqlite_version)
    results = report.results
    results.update(
        settings={k: v for k, v in vars(args).items()},
        targets={"list_p95_ms": TARGET_LIST_P95_MS, "ws_p99_ms": TARGET_WS_P99_MS},
        code=common.code_state(),
    )
    # Part 2 first: part 1 sets up Django in this process for the seeded database.
    if args.part in ("all", "realtime"):
        results["realtime"] = run_realtime(args)
    if args.part in ("all", "lists"):
        results["lists"] = run_lists(args)
    return report.conclude(summarize, print_summary, strict=args.strict)


if __name__ == "__main__":
    sys.exit(main())
