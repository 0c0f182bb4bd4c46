"""Hand-built SQL against its ORM version: each statement of openline/messaging/sql.py
timed both ways on the same data, on SQLite and on PostgreSQL. (A statement that goes back
to the ORM keeps its hand-built version here, so that the choice can be checked again.)

    .venv/bin/python bench/sql.py                      # both databases, about 10 minutes
    .venv/bin/python bench/sql.py --database sqlite    # one database
    .venv/bin/python bench/sql.py --samples 9 --messages 20000   # a quick look

Each database is fresh: SQLite a file in a temp dir (the settings' WAL and pragmas),
PostgreSQL a throw-away database `openline_bench_sql` on PG_URL, dropped afterwards. The
seed: one organization and inbox, 2,000 contacts each with one conversation (a quarter of
them closed), `--messages` inbound messages with everyday texts spread over them, 40
outbound messages waiting to be sent, and pending inbound events.

For each statement, a sample is the mean time of `--calls` calls in one transaction (rolled
back afterwards, so every sample sees the same data; only the calls are timed); hand-built
and ORM samples alternate, `--samples` of each. Reported: the median per call, the spread
(10th to 90th percentile of the samples), the ORM/hand ratio of medians, and "measurable"
when the two spreads do not overlap, in wall-clock and in this thread's CPU time. The
"processing batch" rows time inbound_process_pending on 50 plain texts with messaging.sql
as it is against the same with processing's statements (one, or several) in their ORM
versions. Writes bench/results/sql-<UTC time>.json; bench/README.md reads it.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
PG_URL = os.environ.get("PG_URL", "postgres://postgres@127.0.0.1:5432/test")
BENCH_DB = "openline_bench_sql"
BATCH = 50  # processing's batch (messaging.services.inbound.BATCH_SIZE)
CONVERSATIONS = 2_000
# Everyday words for message bodies (split once; a tuple literal would take 40 lines).
WORDS = tuple(
    " ".join(
        [
            "thanks okay sure tomorrow tonight running late call me back when can we talk",
            "please appointment friday monday work school home help question about the form",
            "address pharmacy doctor ride bus train weather coffee lunch dinner sorry yes maybe",
        ]
    ).split()
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=21)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.messages, args.samples, args.calls)
        return 0
    backends = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    results = {b: _run_backend(b, args) for b in backends}
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"sql-{stamp}.json"
    out.write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    for backend, figures in results.items():
        _print_table(backend, figures)
    print(f"\nwrote {out.relative_to(ROOT)}")
    return 0


def _print_table(backend: str, figures: dict[str, Any]) -> None:
    print(f"\n{backend}, {figures['messages']} messages: µs per call, median [p10–p90]")
    for metric in ("wall", "cpu"):
        print(f"\n{metric:50} {'hand-built':>22} {'ORM':>24}  ratio  measurable")
        for name, case in figures["cases"].items():
            figure = case[metric]
            print(
                f"{name:50} {_cell(figure['hand']):>22} {_cell(figure['orm']):>24}  "
                f"{figure['ratio']:5.2f}  {'yes' if figure['measurable'] else 'no'}"
            )


def _cell(figures: dict[str, float]) -> str:
    return f"{figures['median']:.0f} [{figures['p10']:.0f}–{figures['p90']:.0f}]"


def _run_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    """Measure in a child process with that backend's environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    var_dir = tempfile.mkdtemp(prefix="openline-bench-sql-")
    env["OPENLINE_VAR_DIR"] = var_dir
    if backend == "postgres":
        _pg_admin(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        _pg_admin(f"CREATE DATABASE {BENCH_DB}")
        env["DATABASE_URL"] = PG_URL.rsplit("/", 1)[0] + "/" + BENCH_DB
    command = [sys.executable, __file__, "--child", "--messages", str(args.messages)]
    command += ["--samples", str(args.samples), "--calls", str(args.calls)]
    try:
        out = subprocess.run(command, env=env, cwd=ROOT, check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        print(exc.stdout, exc.stderr, sep="\n")
        raise
    finally:
        if backend == "postgres":  # its own database: end any session left in it
            _pg_admin(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        subprocess.run(["rm", "-rf", var_dir], check=False)
    print(out.stderr, end="")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(sql)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- the child: seed, then time -----------------------------------------------------------


def _child(messages: int, samples: int, calls: int) -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openline.settings")
    sys.path.insert(0, str(ROOT))
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    started = time.monotonic()
    seed = _seed(messages, calls)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # as a live database's statistics would be
    log(f"{connection.vendor}: seeded {messages} messages in {time.monotonic() - started:.0f} s")
    cases = {}
    for name, case in _cases(seed).items():
        cases[name] = _compare(case, samples=samples, calls=calls)
        log(f"  {name}: {cases[name]['wall']['ratio']:.2f}")
    print(json.dumps({"vendor": connection.vendor, "messages": messages, "cases": cases}))


class Seed:
    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


def _seed(messages: int, calls: int) -> Seed:  # noqa: PLR0914 -- one linear seed
    from django.db import transaction
    from django.utils import timezone

    from openline.contacts.models import Contact
    from openline.core.services import organization_create
    from openline.messaging.models import (
        Conversation,
        ConversationStatus,
        Direction,
        InboundEvent,
        Message,
        MessageStatus,
    )
    from openline.providers.models import Number

    rng = random.Random(14)
    now = timezone.now()
    org = organization_create(name="Bench", slug="bench")
    with transaction.atomic():
        number = Number.objects.create(
            organization=org, provider="sandbox", e164="+12025550100", webhook_key="bench-sql"
        )
        contacts = Contact.objects.bulk_create(
            Contact(organization=org, phone=f"+1312555{i:04d}") for i in range(CONVERSATIONS)
        )
        conversations = Conversation.objects.bulk_create(
            Conversation(
                organization=org,
                number=number,
                contact=contact,
                status=ConversationStatus.CLOSED if i % 4 == 0 else ConversationStatus.WAITING,
                last_message_at=now,
            )
            for i, contact in enumerate(contacts)
        )
    start = now - dt.timedelta(days=30)
    step = dt.timedelta(days=30) / max(1, messages)
    for first in range(0, messages, 10_000):
        with transaction.atomic():
            Message.objects.bulk_create(
                (
                    Message(
                        organization=org,
                        conversation=rng.choice(conversations),
                        direction=Direction.INBOUND,
                        status=MessageStatus.RECEIVED,
                        body=" ".join(rng.choices(WORDS, k=rng.randint(3, 12))),
                        created_at=start + step * i,
                    )
                    for i in range(first, min(messages, first + 10_000))
                ),
                batch_size=2_000,
            )
    open_ones = [c for c in conversations if c.status != ConversationStatus.CLOSED]
    with transaction.atomic():
        Message.objects.bulk_create(
            Message(
                organization=org,
                conversation=rng.choice(open_ones),
                direction=Direction.OUTBOUND,
                status=MessageStatus.QUEUED,
                body="We are here. How can we help?",
                created_at=now - dt.timedelta(minutes=10),
            )
            for _ in range(40)
        )
        # Waiting texts from people with an open conversation: processing's common case.
        # Enough for every call of a sample (each sample's transaction is rolled back).
        events = InboundEvent.objects.bulk_create(
            InboundEvent(
                organization=org,
                number=number,
                provider="sandbox",
                provider_message_id=f"SEED{i}",
                from_number=open_ones[i % len(open_ones)].contact.phone,
                body="running late, call you back",
                received_at=now,
            )
            for i in range(BATCH * (calls + 1))
        )
    return Seed(
        org=org,
        number=number,
        now=now,
        # Processing touches conversations it just gave a message: ones with messages.
        open_ids=sorted(
            Message.objects.filter(conversation__in=open_ones)
            .values_list("conversation_id", flat=True)
            .distinct()
        )[:BATCH],
        event_ids=sorted(e.pk for e in events)[:BATCH],
        counter=iter(range(10**9)),
    )


# --- the statements, both ways ----------------------------------------------------------------


def _none() -> None:
    return None


@dataclass
class Case:
    """One statement both ways: each call gets a fresh input (made outside the timing) and
    ``result`` reduces what a call returns to what must agree between the two."""

    hand: Callable[[Any], Any]
    orm: Callable[[Any], Any]
    hand_input: Callable[[], Any] = _none
    orm_input: Callable[[], Any] | None = None
    result: Callable[[Any], Any] = lambda value: value
    slow: bool = False  # a query of milliseconds: a quarter of the calls per sample

    def __post_init__(self) -> None:
        if self.orm_input is None:
            self.orm_input = self.hand_input


def _cases(seed: Seed) -> dict[str, Case]:
    cases = {
        "inbound_events_insert (1 row)": _events_insert(seed, 1),
        f"inbound_events_insert ({BATCH} rows)": _events_insert(seed, BATCH),
        f"inbound_messages_insert ({BATCH} rows)": _messages_insert(seed),
        f"inbound_events_claim ({BATCH})": _by_ids(
            "inbound_events_claim", "event_ids", seed.event_ids
        ),
        f"conversations_open_count ({BATCH})": _by_ids(
            "conversations_open_count", "conversation_ids", seed.open_ids
        ),
        f"conversations_touch ({BATCH})": _by_ids(
            "conversations_touch", "conversation_ids", seed.open_ids
        ),
        f"inbound_events_mark_processed ({BATCH})": _by_ids(
            "inbound_events_mark_processed", "event_ids", seed.event_ids, at=seed.now
        ),
        "message_search_conversation_ids": _search(seed),
        "messages_unsettled (queued, due)": _unsettled(),
    }
    # Processing's statements also as part of what they serve: one batch of BATCH plain
    # texts into open conversations, with one statement (or all) in its ORM version.
    cases[f"processing batch ({BATCH} texts), all"] = _processing(list(PROCESSING_ORM))
    small = [name for name in PROCESSING_ORM if "messages" not in name]
    cases["processing batch, all but the message insert"] = _processing(small)
    for name in PROCESSING_ORM:
        if name != "inbound_messages_insert_prepare":  # swapped with inbound_messages_insert
            cases[f"processing batch, only {name}"] = _processing(_swap_group(name))
    return cases


# --- the ORM versions of processing's statements, with messaging.sql's signatures ------------


def orm_inbound_events_claim(*, event_ids: list[int]) -> set[int]:
    from openline.messaging.models import InboundEvent

    return set(
        InboundEvent.objects.filter(pk__in=event_ids, processed_at__isnull=True)
        .select_for_update(skip_locked=True)
        .values_list("pk", flat=True)
    )


def orm_conversations_open_count(*, conversation_ids: list[int]) -> int:
    from openline.messaging.models import Conversation, ConversationStatus

    return (
        Conversation.objects.filter(pk__in=conversation_ids)
        .exclude(status=ConversationStatus.CLOSED)
        .count()
    )


def orm_conversations_touch(*, conversation_ids: list[int]) -> None:
    from django.db.models import OuterRef, Subquery

    from openline.messaging.models import Conversation, Message

    newest = (
        Message.objects.filter(conversation_id=OuterRef("pk"))
        .order_by("-created_at")
        .values("created_at")[:1]
    )
    Conversation.objects.filter(pk__in=conversation_ids).update(last_message_at=Subquery(newest))


def orm_inbound_events_mark_processed(*, event_ids: list[int], at: dt.datetime) -> None:
    from openline.messaging.models import InboundEvent

    InboundEvent.objects.filter(pk__in=event_ids).update(processed_at=at)


def orm_inbound_messages_insert_prepare(*, rows: list[Any], fields: frozenset[str]) -> list[Any]:
    """Message instances, made ahead of the write lock as the hand-built SQL is."""
    from openline.messaging.models import Direction, Message, MessageStatus

    return [
        Message(
            direction=Direction.INBOUND,
            status=MessageStatus.RECEIVED,
            **{name: getattr(row, name) for name in fields},
        )
        for row in rows
    ]


def orm_inbound_messages_insert(*, prepared: list[Any]) -> list[int]:
    from openline.messaging.models import Message

    return [message.pk for message in Message.objects.bulk_create(prepared)]


PROCESSING_ORM: dict[str, Callable[..., Any]] = {
    "inbound_events_claim": orm_inbound_events_claim,
    "conversations_open_count": orm_conversations_open_count,
    "inbound_messages_insert_prepare": orm_inbound_messages_insert_prepare,
    "inbound_messages_insert": orm_inbound_messages_insert,
    "conversations_touch": orm_conversations_touch,
    "inbound_events_mark_processed": orm_inbound_events_mark_processed,
}


def _swap_group(name: str) -> list[str]:
    if name == "inbound_messages_insert":
        return ["inbound_messages_insert_prepare", "inbound_messages_insert"]
    return [name]


@contextlib.contextmanager
def _orm_in_sql(names: list[str]) -> Iterator[None]:
    """messaging.sql with these statements swapped for their ORM versions (processing
    looks them up on the module at each call)."""
    from openline.messaging import sql

    saved = {name: getattr(sql, name) for name in names}
    for name in names:
        setattr(sql, name, PROCESSING_ORM[name])
    try:
        yield
    finally:
        for name, function in saved.items():
            setattr(sql, name, function)


# --- the cases --------------------------------------------------------------------------------


def _by_ids(name: str, argument: str, ids: list[int], **more: Any) -> Case:
    """A statement that takes a batch's ids; results compared where the caller uses them."""
    from openline.messaging import sql

    hand, orm = getattr(sql, name), PROCESSING_ORM[name]
    return Case(
        hand=lambda values: hand(**{argument: values}, **more),
        orm=lambda values: orm(**{argument: values}, **more),
        hand_input=lambda: ids,
        result=lambda value: value if isinstance(value, (set, int)) else None,
    )


def _processing(names: list[str]) -> Case:
    """``inbound_process_pending`` for the oldest BATCH waiting events (the seed keeps
    enough waiting: each sample's transaction is rolled back)."""
    from openline.messaging.services.inbound import inbound_process_pending

    def orm(_: None) -> int:
        with _orm_in_sql(names):
            return inbound_process_pending(BATCH)

    return Case(hand=lambda _: inbound_process_pending(BATCH), orm=orm)


def _events_insert(seed: Seed, size: int) -> Case:
    from openline.messaging import sql
    from openline.messaging.models import InboundEvent

    def rows() -> list[dict[str, Any]]:
        tag = next(seed.counter)
        return [
            {
                "organization_id": seed.org.pk,
                "number_id": seed.number.pk,
                "provider": "sandbox",
                "provider_message_id": f"B{tag}-{i}",
                "from_number": "+13125550001",
                "body": "running late, call you back",
                "media_urls": [],
                "received_at": seed.now,
            }
            for i in range(size)
        ]

    def orm(batch: list[dict[str, Any]]) -> set[tuple[str, str]]:
        """The nearest ORM version: which keys exist, then INSERT OR IGNORE / ON CONFLICT
        DO NOTHING (bulk_create returns no keys with ignore_conflicts)."""
        ids = [row["provider_message_id"] for row in batch]
        existing = set(
            InboundEvent.objects.filter(
                provider__in={row["provider"] for row in batch}, provider_message_id__in=ids
            ).values_list("provider", "provider_message_id")
        )
        InboundEvent.objects.bulk_create(
            [InboundEvent(**row) for row in batch], ignore_conflicts=True
        )
        return {(row["provider"], row["provider_message_id"]) for row in batch} - existing

    return Case(
        hand=lambda batch: sql.inbound_events_insert(rows=batch),
        orm=orm,
        hand_input=rows,
        result=len,
    )


class _MessageRow:
    """As messaging.services.inbound._Row."""

    __slots__ = (
        "body",
        "conversation_id",
        "created_at",
        "encoding",
        "inbound_event_id",
        "organization_id",
        "pk",
        "provider_message_id",
        "received_offline",
        "segments",
    )
    FIELDS = frozenset(__slots__) - {"pk"}

    def __init__(self, **values: Any) -> None:
        for name in self.__slots__:
            setattr(self, name, values.get(name))


def _messages_insert(seed: Seed) -> Case:
    """Processing builds the statements (or the instances) ahead of the write lock: only
    running them is timed."""
    from openline.messaging import sql

    def rows() -> list[_MessageRow]:
        return [
            _MessageRow(
                organization_id=seed.org.pk,
                conversation_id=seed.open_ids[i],
                body="running late, call you back",
                segments=1,
                encoding="GSM-7",
                provider_message_id=f"M{i}",
                inbound_event_id=None,
                created_at=seed.now,
                received_offline=False,
            )
            for i in range(BATCH)
        ]

    return Case(
        hand=lambda prepared: sql.inbound_messages_insert(prepared=prepared),
        orm=lambda prepared: orm_inbound_messages_insert(prepared=prepared),
        hand_input=lambda: sql.inbound_messages_insert_prepare(
            rows=rows(), fields=_MessageRow.FIELDS
        ),
        orm_input=lambda: orm_inbound_messages_insert_prepare(
            rows=rows(), fields=_MessageRow.FIELDS
        ),
        result=len,
    )


def _search(seed: Seed) -> Case:
    """The Waiting view's search for two words, the last one typed halfway."""
    from django.db import connection
    from django.db.models import Q

    from openline.messaging import sql
    from openline.messaging.models import ConversationStatus, Message

    words = ["pharmacy", "tomor"]
    statuses = [ConversationStatus.WAITING]

    def hand(_: None) -> list[int]:
        return sql.message_search_conversation_ids(
            organization_id=seed.org.pk, words=words, statuses=statuses, holder_id=None, limit=200
        )

    def orm(_: None) -> list[int]:
        """The nearest ORM version: contrib.postgres search on PostgreSQL; on SQLite, which
        has no ORM full-text search, a substring match per word."""
        found = Message.objects.filter(
            organization_id=seed.org.pk, conversation__status__in=statuses
        )
        if connection.vendor == "postgresql":
            from django.contrib.postgres.search import SearchQuery, SearchVector

            terms = " & ".join([*words[:-1], words[-1] + ":*"])
            found = found.annotate(text=SearchVector("body", config="simple")).filter(
                text=SearchQuery(terms, search_type="raw", config="simple")
            )
        else:
            found = found.filter(Q(*[Q(body__icontains=w) for w in words]))
        ids = found.order_by("-pk").values_list("conversation_id", flat=True)[:200]
        return list(set(ids))

    return Case(hand=hand, orm=orm, result=sorted, slow=True)


def _unsettled() -> Case:
    """Reconciliation's "lost dispatch" query: queued outbound messages, oldest first."""
    from openline.messaging import sql
    from openline.messaging.models import UNSETTLED_STATUSES, Direction, Message, MessageStatus

    def run(condition: Any) -> list[int]:
        return list(
            Message.objects.filter(condition, direction=Direction.OUTBOUND)
            .filter(status=MessageStatus.QUEUED)
            .order_by("pk")
            .values_list("pk", flat=True)[:500]
        )

    from django.db.models import Q

    return Case(
        hand=lambda _: run(sql.messages_unsettled()),
        orm=lambda _: run(Q(status__in=UNSETTLED_STATUSES)),
        slow=True,
    )


# --- timing -----------------------------------------------------------------------------------


def _compare(case: Case, *, samples: int, calls: int) -> dict[str, Any]:
    """Both ways, alternating which goes first; figures for wall-clock time and for this
    thread's CPU time."""
    hand, orm = _once(case.hand_input, case.hand), _once(case.orm_input, case.orm)
    if case.result(hand) != case.result(orm):
        raise AssertionError(f"not the same result: {hand!r} and {orm!r}")
    times: dict[str, list[tuple[float, float]]] = {"hand": [], "orm": []}
    calls = max(1, calls // 4) if case.slow else calls
    for i in range(samples):
        order = [("hand", case.hand_input, case.hand), ("orm", case.orm_input, case.orm)]
        for name, make, call in order if i % 2 else order[::-1]:
            times[name].append(_sample(make, call, calls))
    result: dict[str, Any] = {}
    for metric, index in (("wall", 0), ("cpu", 1)):
        hand_s = _summary([t[index] for t in times["hand"]])
        orm_s = _summary([t[index] for t in times["orm"]])
        result[metric] = {
            "hand": hand_s,
            "orm": orm_s,
            "ratio": orm_s["median"] / hand_s["median"],
            "measurable": orm_s["p10"] > hand_s["p90"] or hand_s["p10"] > orm_s["p90"],
        }
    return result


def _once(make: Callable[[], Any], call: Callable[[Any], Any]) -> Any:
    from django.db import transaction

    with transaction.atomic():
        value = call(make())
        transaction.set_rollback(True)
    return value


def _sample(make: Callable[[], Any], call: Callable[[Any], Any], calls: int) -> tuple[float, float]:
    """Mean µs per call, wall-clock and this thread's CPU, of ``calls`` calls in one
    transaction, rolled back afterwards."""
    from django.db import transaction

    inputs = [make() for _ in range(calls)]
    gc.collect()
    gc.disable()
    try:
        with transaction.atomic():
            wall, cpu = time.perf_counter(), time.thread_time()
            for value in inputs:
                call(value)
            wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
            transaction.set_rollback(True)
    finally:
        gc.enable()
    return wall / calls * 1e6, cpu / calls * 1e6


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    deciles = statistics.quantiles(ordered, n=10, method="inclusive")
    return {"median": statistics.median(ordered), "p10": deciles[0], "p90": deciles[-1]}


if __name__ == "__main__":
    sys.exit(main())
