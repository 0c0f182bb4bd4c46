"""The hand-built SQL of OpenLine, in one place. Each statement is here because the ORM
version costs something measurable or cannot say the same thing; its docstring gives the
reason, and ``bench/sql.py`` measures it against the ORM version (figures and the command
in bench/README.md, "Hand-built SQL"). When the ORM version is as fast on that benchmark,
the statement goes back to the ORM.

Identifiers come from the models' metadata; every value is a query parameter."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.models import BooleanField, Field, Model
from django.db.models.expressions import RawSQL

from openline.messaging.models import (
    UNSETTLED_STATUSES,
    Conversation,
    ConversationStatus,
    Direction,
    InboundEvent,
    Message,
    MessageStatus,
)


def _table(model: type[Model], db: Any = connection) -> str:
    return str(db.ops.quote_name(model._meta.db_table))


def _column(model: type[Model], name: str, db: Any = connection) -> str:
    return str(db.ops.quote_name(_field(model, name).column))


def _field(model: type[Model], name: str) -> Field[Any, Any]:
    """The model's column ``name`` (``get_field`` also finds reverse relations)."""
    field = model._meta.get_field(name)
    if not isinstance(field, Field):
        raise ImproperlyConfigured(f"{model.__name__}.{name} is not a column")
    return field


def _marks(values: Sequence[object], placeholder: str = "%s") -> str:
    return ", ".join([placeholder] * len(values))


# --- intake: webhook events ------------------------------------------------------------------

# The values intake stores for an event, and the columns every new event starts with.
_EVENT_COLUMNS = (
    "organization_id",
    "number_id",
    "provider",
    "provider_message_id",
    "from_number",
    "body",
    "media_urls",
    "received_at",
)
_NEW_EVENT = {"processed_at": None, "attempts": 0}
_ALL_EVENT_COLUMNS = (*_EVENT_COLUMNS, *_NEW_EVENT)
# Fields whose Python value is already what every database takes: strings and ids, as
# intake and its journal build them.
_PLAIN_FIELDS = ("CharField", "TextField", "ForeignKey")

_event_preparation: dict[str, tuple[list[tuple[str, Any]], list[Any]]] = {}
_event_statements: dict[tuple[str, str, int], str] = {}


def inbound_events_insert(*, rows: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """Store webhook events through Django's connection, skipping any (provider, provider
    message id) already stored by anyone; returns the keys this statement inserted. Call
    inside a transaction.

    Hand-built because the ORM cannot say it: ``bulk_create(ignore_conflicts=True)``
    returns no keys (so which events are new takes a SELECT first, which on PostgreSQL is
    not atomic with the INSERT), and on SQLite it is ``INSERT OR IGNORE``, which also
    drops a row that breaks a NOT NULL or CHECK constraint, so an acknowledged webhook
    could vanish without an error. That two-statement ORM version also takes several times
    as long for one event on both databases, and more than twice as long for a batch on
    SQLite, where it holds the write lock that all of intake waits for (bench/README.md,
    "Hand-built SQL")."""
    sql, params = inbound_events_insert_statement(rows=rows, db=connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {(provider, message_id) for provider, message_id in cursor.fetchall()}


def inbound_events_insert_statement(
    *, rows: list[dict[str, Any]], db: Any, placeholder: str = "%s"
) -> tuple[str, list[Any]]:
    """``INSERT … ON CONFLICT (provider, provider_message_id) DO NOTHING RETURNING`` the keys
    inserted, for ``rows`` (each with the intake's values). ``db`` lends its operations (no
    query runs on it): Django's connection, or, with ``placeholder="?"``, a plain sqlite3
    connection's SQL for the event loop's writer, which the ORM cannot drive at all.
    Values that need a database's representation (JSON, datetimes) go through their model
    field; the statement text is cached per vendor, placeholder and row count."""
    prepare, constants = _event_preparation_of(db)
    params: list[Any] = []
    for row in rows:
        for name, field in prepare:
            params.append(row[name] if field is None else field.get_db_prep_save(row[name], db))
        params.extend(constants)
    return _event_insert_sql(db, placeholder, len(rows)), params


def _event_preparation_of(db: Any) -> tuple[list[tuple[str, Any]], list[Any]]:
    """(column name, field to prepare it with or None) for the values a row brings, and the
    prepared values of the columns every new event starts with."""
    cached = _event_preparation.get(db.vendor)
    if cached is None:
        prepare = [
            (name, None if field.get_internal_type() in _PLAIN_FIELDS else field)
            for name, field in ((name, _field(InboundEvent, name)) for name in _EVENT_COLUMNS)
        ]
        constants = [
            _field(InboundEvent, name).get_db_prep_save(value, db)
            for name, value in _NEW_EVENT.items()
        ]
        cached = _event_preparation[db.vendor] = (prepare, constants)
    return cached


def _event_insert_sql(db: Any, placeholder: str, count: int) -> str:
    key = (db.vendor, placeholder, count)
    sql = _event_statements.get(key)
    if sql is None:
        columns = ", ".join(_column(InboundEvent, n, db) for n in _ALL_EVENT_COLUMNS)
        one = "(" + ", ".join([placeholder] * len(_ALL_EVENT_COLUMNS)) + ")"
        sql = (
            f"INSERT INTO {_table(InboundEvent, db)} ({columns}) "  # noqa: S608
            f"VALUES {', '.join([one] * count)} "
            "ON CONFLICT (provider, provider_message_id) DO NOTHING "
            "RETURNING provider, provider_message_id"
        )
        _event_statements[key] = sql  # batches are bounded, so are their sizes
    return sql


# --- processing: one batch's write transaction ----------------------------------------------
# These run inside processing's write transaction, which on SQLite holds the one write lock
# that webhook intake waits for. Their ORM versions build each statement inside it, which
# on SQLite costs several times what the statement itself does, clearly outside the spread
# of repeated runs (bench/README.md, "Hand-built SQL"). Measured in a whole batch instead,
# the ORM versions together add about two fifths to it on SQLite, the message insert about
# a fifth, each small statement less than the batch's run-to-run spread; on PostgreSQL,
# where nothing waits for one lock, none of it shows in a batch.


@dataclass(frozen=True, slots=True)
class PreparedInsert:
    """INSERT statements built ahead of the write lock: (sql, params, row count)."""

    statements: list[tuple[str, list[Any], int]]


def inbound_messages_insert_prepare(
    *, rows: Sequence[object], fields: Collection[str]
) -> PreparedInsert:
    """Build, before the write transaction, the ``INSERT … RETURNING id`` statements that
    store ``rows`` as inbound Messages, in the batch sizes ``bulk_create`` would use. Each
    row has an attribute for each Message attname in ``fields``; every other column takes a
    blank received Message's default. Values are prepared by their model field, as the
    ORM would.

    Hand-built so that building the statement happens before the write lock is taken:
    ``Message.objects.bulk_create`` builds it inside, and takes about three times as long
    there on SQLite (on PostgreSQL, where it sends the rows as arrays, the two are within
    noise)."""
    opts = Message._meta
    columns = [f for f in opts.concrete_fields if not f.generated and f is not opts.pk]
    blank = Message(direction=Direction.INBOUND, status=MessageStatus.RECEIVED)
    defaults = [f.get_db_prep_save(getattr(blank, f.attname), connection) for f in columns]
    varying = [(i, f) for i, f in enumerate(columns) if f.attname in fields]
    if len(varying) != len(fields):
        raise ImproperlyConfigured("a row names a field Message does not have")
    names = ", ".join(connection.ops.quote_name(f.column) for f in columns)
    returning, _ = connection.ops.return_insert_columns([opts.pk])
    one = f"({_marks(columns)})"
    size = max(1, connection.ops.bulk_batch_size(columns, rows))
    statements = []
    for start in range(0, len(rows), size):
        chunk = rows[start : start + size]
        params: list[Any] = []
        for row in chunk:
            values = list(defaults)
            for i, field in varying:
                values[i] = field.get_db_prep_save(getattr(row, field.attname), connection)
            params += values
        sql = (
            f"INSERT INTO {_table(Message)} ({names}) "  # noqa: S608
            f"VALUES {', '.join([one] * len(chunk))} {returning}"
        )
        statements.append((sql, params, len(chunk)))
    return PreparedInsert(statements)


def inbound_messages_insert(*, prepared: PreparedInsert) -> list[int]:
    """Run statements from ``inbound_messages_insert_prepare``; the new ids, in row order.
    Call inside the write transaction."""
    ids: list[int] = []
    with connection.cursor() as cursor:
        for sql, params, count in prepared.statements:
            cursor.execute(sql, params)
            found = [pk for (pk,) in cursor.fetchall()]
            if len(found) != count:
                raise RuntimeError(f"inserted {count} messages, got {len(found)} ids")
            ids += found
    return ids


def inbound_events_claim(*, event_ids: list[int]) -> set[int]:
    """The events still waiting, locked for this transaction (PostgreSQL: skipping any
    that another worker holds).

    The ORM version, ``filter(pk__in=…, processed_at__isnull=True)`` with
    ``select_for_update(skip_locked=True)``, sends the same SQL but takes several times as
    long to build it, inside the write lock."""
    sql = (
        f"SELECT {_column(InboundEvent, 'id')} FROM {_table(InboundEvent)} "  # noqa: S608
        f"WHERE {_column(InboundEvent, 'id')} IN ({_marks(event_ids)}) "
        f"AND {_column(InboundEvent, 'processed_at')} IS NULL"
    )
    if connection.features.has_select_for_update_skip_locked:
        sql += " " + connection.ops.for_update_sql(skip_locked=True)
    with connection.cursor() as cursor:
        cursor.execute(sql, event_ids)
        return {event_id for (event_id,) in cursor.fetchall()}


def conversations_open_count(*, conversation_ids: list[int]) -> int:
    """How many of these conversations are not closed (a plan made before the write lock
    still holds if all are).

    The ORM version, ``filter(pk__in=…).exclude(status=CLOSED).count()``, takes several
    times as long inside the write lock."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*) FROM {_table(Conversation)} "  # noqa: S608
            f"WHERE {_column(Conversation, 'id')} IN ({_marks(conversation_ids)}) "
            f"AND {_column(Conversation, 'status')} <> %s",
            [*conversation_ids, ConversationStatus.CLOSED],
        )
        return int(cursor.fetchone()[0])


def conversations_touch(*, conversation_ids: list[int]) -> None:
    """One statement for the batch: each conversation's time is its newest message's.

    The ORM version, ``update(last_message_at=Subquery(newest message's created_at))``,
    takes several times as long inside the write lock."""
    if not conversation_ids:
        return
    conversation, pk = _table(Conversation), _column(Conversation, "id")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {conversation} SET {_column(Conversation, 'last_message_at')} = "  # noqa: S608
            f"(SELECT MAX(m.{_column(Message, 'created_at')}) FROM {_table(Message)} m "
            f"WHERE m.{_column(Message, 'conversation')} = {conversation}.{pk}) "
            f"WHERE {pk} IN ({_marks(conversation_ids)})",
            conversation_ids,
        )


def inbound_events_mark_processed(*, event_ids: list[int], at: datetime) -> None:
    """Processing is done with these events.

    The ORM version, ``filter(pk__in=…).update(processed_at=at)``, takes a few times as
    long inside the write lock."""
    if not event_ids:
        return
    field = InboundEvent._meta.get_field("processed_at")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_table(InboundEvent)} SET {_column(InboundEvent, 'processed_at')} = %s "  # noqa: S608
            f"WHERE {_column(InboundEvent, 'id')} IN ({_marks(event_ids)})",
            [field.get_db_prep_save(at, connection), *event_ids],
        )


# --- search ----------------------------------------------------------------------------------


def message_search_conversation_ids(
    *,
    organization_id: int,
    words: list[str],
    statuses: Sequence[str],
    holder_id: int | None,
    limit: int,
) -> list[int]:
    """Conversations (with one of ``statuses``, held by ``holder_id`` if given) of the
    organization's ``limit`` most recent messages that contain all ``words``, the last one
    as a prefix. Full-text: SQLite's FTS5 table, PostgreSQL's GIN index on
    ``to_tsvector('simple', body)``.

    Hand-built because the ORM cannot use either index: it has no expression for an FTS5
    MATCH, and ``django.contrib.postgres``'s SearchVector wraps the column in COALESCE,
    which the expression index does not match. Their nearest versions (SearchVector on
    PostgreSQL; ``icontains`` per word on SQLite, which also matches inside words) read
    every message of the organization: an order of magnitude slower on PostgreSQL, a few
    times on SQLite, and growing with the message table (bench/README.md, "Hand-built
    SQL")."""
    in_view = f"c.status IN ({_marks(statuses)})"
    view_params: list[str | int] = list(statuses)
    if holder_id is not None:
        in_view += " AND c.assigned_to_id = %s"
        view_params.append(holder_id)
    if connection.vendor == "postgresql":
        terms = " & ".join(words[:-1] + [words[-1] + ":*"])
        head = (
            "SELECT m.conversation_id FROM messaging_message m"
            " JOIN messaging_conversation c ON c.id = m.conversation_id"
            " WHERE m.organization_id = %s"
            " AND to_tsvector('simple', m.body) @@ to_tsquery('simple', %s)"
        )
        order = "ORDER BY m.id DESC LIMIT %s"
        params: list[str | int] = [organization_id, terms, *view_params, limit]
    else:
        terms = " ".join(f'"{w}"' for w in words[:-1]) + f' "{words[-1]}"*'
        head = (
            "SELECT m.conversation_id FROM messaging_message_fts f"
            " JOIN messaging_message m ON m.id = f.rowid"
            " JOIN messaging_conversation c ON c.id = m.conversation_id"
            " WHERE messaging_message_fts MATCH %s AND m.organization_id = %s"
        )
        order = "ORDER BY f.rowid DESC LIMIT %s"
        params = [terms.strip(), organization_id, *view_params, limit]
    sql = f"{head} AND {in_view} {order}"  # noqa: S608 (in_view holds placeholders only)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list({row[0] for row in cursor.fetchall()})


# --- reconciliation --------------------------------------------------------------------------


def messages_unsettled() -> RawSQL:
    """A filter condition: the message is QUEUED, SENDING or UNKNOWN, written with the
    statuses as literals, as in message_unsettled_idx's own condition.

    Hand-built because SQLite uses a partial index only when the query repeats the index's
    condition with the same literal values, and the ORM always binds them as parameters:
    ``status__in=UNSETTLED_STATUSES`` reads every message instead (EXPLAIN QUERY PLAN:
    SCAN messaging_message, against SEARCH … USING INDEX message_unsettled_idx), which
    grows with the message table: an order of magnitude slower with 100,000 messages
    (bench/README.md, "Hand-built SQL"). PostgreSQL uses the index either way."""
    table = connection.ops.quote_name(Message._meta.db_table)
    column = connection.ops.quote_name(Message._meta.get_field("status").column)
    values = ", ".join(f"'{status}'" for status in UNSETTLED_STATUSES)  # constants
    return RawSQL(f"{table}.{column} IN ({values})", [], output_field=BooleanField())  # noqa: S611
