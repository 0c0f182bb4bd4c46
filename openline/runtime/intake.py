"""Webhook intake: the hot path. A lean ASGI endpoint in front of Django that verifies,
parses and durably records a provider webhook, then answers. No middleware, sessions or
per-request ORM churn here. Rows are written in groups, one transaction for whatever has
queued up (group commit), so throughput does not collapse on SQLite: on SQLite the event
loop writes them itself at the end of its turn when the write lock is free that instant,
and otherwise (lock held, or PostgreSQL) one writer thread waits for the lock and writes.

Routes: POST /hooks/<provider>/<webhook_key>/inbound and .../status"""

from __future__ import annotations

import asyncio
import logging
import queue
import re
import sqlite3
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connections, transaction
from django.utils import timezone

from openline.contacts.phones import InvalidPhoneNumber, normalize_phone
from openline.messaging.sql import inbound_events_insert, inbound_events_insert_statement
from openline.providers.base import SignatureError, WebhookError, WebhookRequest
from openline.providers.models import Number
from openline.providers.registry import get_provider
from openline.runtime.gate import write_gate

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

HOOK_PATH = re.compile(r"^/hooks/([a-z0-9_-]{1,30})/([A-Za-z0-9_-]{1,32})/(inbound|status)$")
NUMBER_CACHE_SECONDS = 10.0


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# --- number lookup, cached so the hot path rarely touches the database -------------------

_numbers: dict[str, tuple[float, Number]] = {}


def _load_number(key: str) -> Number | None:
    close_old_connections()
    return Number.objects.filter(webhook_key=key, is_active=True).first()


NUMBER_CACHE_SIZE = 10_000


async def find_number(key: str) -> Number | None:
    cached = _numbers.get(key)
    now = time.monotonic()
    if cached is not None and cached[0] > now:
        return cached[1]
    number = await sync_to_async(_load_number, thread_sensitive=False)(key)
    # Only real numbers are cached: random keys must not grow the cache.
    if number is not None:
        if len(_numbers) >= NUMBER_CACHE_SIZE:
            _numbers.clear()
        _numbers[key] = (now + NUMBER_CACHE_SECONDS, number)
    return number


def forget_numbers() -> None:
    _numbers.clear()


# --- group-commit writer -----------------------------------------------------------------


@dataclass(slots=True)
class _Row:
    values: dict[str, Any]
    future: asyncio.Future[bool]
    loop: asyncio.AbstractEventLoop


class InboundWriter:
    """One thread writes InboundEvents; each batch is one transaction, and every request in
    it is answered only after that transaction commits."""

    MAX_BATCH = 256

    def __init__(self) -> None:
        self._queue: queue.Queue[_Row] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        # Rows written by each path, and the batches they went in (/healthz shows them).
        self.stats = {"inline": 0, "journal": 0, "thread": 0, "batches": 0}

    def _ensure_started(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="openline-intake-writer", daemon=True
                )
                self._thread.start()

    async def write(self, values: dict[str, Any]) -> bool:
        """Durably store one event. True if new (or journaled: a repeat is dropped when it
        is moved), False if it was already recorded."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        row = _Row(values, future, loop)
        inline = _loop_writer(loop)
        if inline is not None:
            inline.add(row)
        else:
            self.hand_over([row])
        return await future

    def hand_over(self, rows: list[_Row]) -> None:
        """Queue rows for the writer thread, which waits for the write lock."""
        self._ensure_started()
        for row in rows:
            self._queue.put(row)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._write_batch(batch)

    def _write_batch(self, batch: list[_Row]) -> None:
        try:
            close_old_connections()
            write_gate.urgent_connection_setup()
            with write_gate.urgent(), transaction.atomic():
                new_keys = inbound_events_insert(rows=[row.values for row in batch])
        except Exception as exc:
            logger.exception("intake write failed for a batch of %d", len(batch))
            error = exc
            _answer(batch, lambda row: (_set_exception, row.future, error))
            return

        self.stats["thread"] += len(batch)
        self.stats["batches"] += 1
        _answer(batch, _written(new_keys))


def _written(new_keys: set[tuple[str, str]]) -> Callable[[_Row], tuple[Any, ...]]:
    """After a batch commits: wake processing (once per batch, before anyone is answered)
    and tell each row whether it was new."""
    if new_keys:
        from openline.runtime.processing_loop import wake

        wake()

    def outcome(row: _Row) -> tuple[Any, ...]:
        key = (row.values["provider"], row.values["provider_message_id"])
        is_new = key in new_keys
        new_keys.discard(key)  # the same id twice in one batch: only the first is new
        return (_set_result, row.future, is_new)

    return outcome


class _LoopWriter:
    """SQLite's fast path: the rows of one turn of the event loop, written at the end of that
    turn on the loop's own thread, through a plain sqlite3 connection of this loop, in one
    transaction. Only when the write lock is free this instant: the loop never waits for
    it. A batch that finds it taken (processing is writing) goes to the overflow journal
    (``runtime.journal``) and is answered at once; if that fails too, or on any error, the
    writer thread takes the batch, waits for the lock and handles errors as always. This
    saves the hand-over to another thread: at low concurrency each webhook otherwise waits
    for that thread to get the interpreter, which costs more than the INSERT."""

    def __init__(self, path: str) -> None:
        self.pending: list[_Row] = []
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0)
        for pragma in (
            "synchronous=NORMAL",  # as Django's connections (settings.DATABASES)
            "foreign_keys=ON",
            "busy_timeout=0",  # never wait: hand the batch over instead
            "wal_autocheckpoint=0",  # processing checkpoints (gate.checkpoint)
        ):
            self.db.execute(f"PRAGMA {pragma}")
        self.usable = self.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        # Lends its operations to build the INSERT (no query runs on it).
        self.django_db = connections["default"]
        self.journal: Any = None  # runtime.journal.Journal, opened when first needed

    def add(self, row: _Row) -> None:
        if not self.pending:
            row.loop.call_soon(self.flush)
        self.pending.append(row)

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        if write_gate.wal_needs_checkpoint():
            writer.hand_over(batch)  # it checkpoints first
            return
        if not write_gate.try_now():
            if not self._journal(batch):
                writer.hand_over(batch)
            return
        try:
            new_keys = self._insert([row.values for row in batch])
        except sqlite3.Error:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            writer.hand_over(batch)  # it retries, and reports a lasting error
            return
        finally:
            write_gate.release_now()
        writer.stats["inline"] += len(batch)
        writer.stats["batches"] += 1
        outcome = _written(new_keys)
        for row in batch:
            fn, *args = outcome(row)
            fn(*args)

    def _journal(self, batch: list[_Row]) -> bool:
        """Processing holds the write lock: keep the batch in the journal and answer now
        (``runtime.journal``). False if that failed too, or the journal is switched off
        (settings.OPENLINE_INTAKE_JOURNAL): the writer thread takes it."""
        from openline.runtime.journal import Journal, journal_path

        if not settings.OPENLINE_INTAKE_JOURNAL:
            return False
        try:
            if self.journal is None:
                self.journal = Journal(journal_path(), wait=0)
            self.journal.append([row.values for row in batch])
        except sqlite3.Error:
            return False
        writer.stats["journal"] += len(batch)
        writer.stats["batches"] += 1
        from openline.runtime.processing_loop import wake

        wake()
        for row in batch:  # stored; a repeated id is dropped when it is moved
            _set_result(row.future, True)
        return True

    def _insert(self, rows: list[dict[str, Any]]) -> set[tuple[str, str]]:
        self.db.execute("BEGIN IMMEDIATE")
        inserted: set[tuple[str, str]] = set()
        for start in range(0, len(rows), InboundWriter.MAX_BATCH):  # within SQLite's limits
            chunk = rows[start : start + InboundWriter.MAX_BATCH]
            sql, params = inbound_events_insert_statement(
                rows=chunk, db=self.django_db, placeholder="?"
            )
            inserted.update(self.db.execute(sql, params).fetchall())
        self.db.execute("COMMIT")
        return inserted

    def close(self) -> None:
        self.db.close()
        if self.journal is not None:
            self.journal.close()


_loop_writers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopWriter | None] = (
    weakref.WeakKeyDictionary()
)


def _loop_writer(loop: asyncio.AbstractEventLoop) -> _LoopWriter | None:
    """This loop's writer, made on first use; None unless the database is SQLite in a file
    in WAL mode (and settings.OPENLINE_INTAKE_INLINE is on)."""
    try:
        return _loop_writers[loop]
    except KeyError:
        pass
    inline: _LoopWriter | None = None
    if settings.OPENLINE_INTAKE_INLINE and write_gate.shared_file():
        inline = _LoopWriter(write_gate.database_path())
        if not inline.usable:
            inline.close()
            inline = None
        else:
            weakref.finalize(loop, inline.close)
    _loop_writers[loop] = inline
    return inline


def _answer(batch: list[_Row], outcome: Callable[[_Row], tuple[Any, ...]]) -> None:
    """Resolve the batch's futures with one wake-up per event loop, not one per request."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, ...]]] = {}
    for row in batch:
        by_loop.setdefault(row.loop, []).append(outcome(row))
    for loop, calls in by_loop.items():
        loop.call_soon_threadsafe(_run_all, calls)


def _run_all(calls: list[tuple[Any, ...]]) -> None:
    for fn, *args in calls:
        fn(*args)


def _set_result(future: asyncio.Future[bool], value: bool) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future[bool], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


writer = InboundWriter()


# --- the ASGI endpoint -------------------------------------------------------------------


async def _read_body(scope: Scope, receive: Receive) -> bytes:
    limit = settings.OPENLINE_MAX_WEBHOOK_BYTES
    for name, value in scope.get("headers", []):
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise HttpError(413, f"request body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HttpError(400, "client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise HttpError(413, f"request body is larger than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _parse_form(raw: bytes) -> dict[str, list[str]]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HttpError(400, "request body is not valid UTF-8") from None
    try:
        return parse_qs(text, keep_blank_values=True, errors="strict", max_num_fields=200)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HttpError(400, f"malformed form body: {exc}") from None


def _public_url(scope: Scope) -> str:
    """The URL the provider called, rebuilt from configuration (we may be behind a proxy)."""
    url: str = settings.PUBLIC_URL + scope["path"]
    query = scope.get("query_string", b"")
    if query:
        url += "?" + query.decode("latin-1")
    return url


async def _respond(send: Send, status: int, body: bytes, content_type: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


_in_flight = 0


def requests_in_flight() -> int:
    """Webhooks received and not yet answered (read from other threads; an int is atomic)."""
    return _in_flight


async def handle_hook(scope: Scope, receive: Receive, send: Send, match: re.Match[str]) -> None:
    global _in_flight
    _in_flight += 1
    write_gate.note_in_flight(_in_flight)
    try:
        status, content_type, body = await _handle(scope, receive, match)
    except HttpError as exc:
        status, content_type, body = exc.status, "text/plain; charset=utf-8", str(exc).encode()
    except Exception:
        logger.exception("webhook intake failed")
        status, content_type, body = 503, "text/plain", b"temporarily unavailable; retry"
    finally:
        _in_flight -= 1
        write_gate.note_in_flight(_in_flight)
    await _respond(send, status, body, content_type)


async def _handle(scope: Scope, receive: Receive, match: re.Match[str]) -> tuple[int, str, bytes]:
    if scope["method"] != "POST":
        raise HttpError(405, "use POST")
    slug, key, kind = match.groups()
    raw = await _read_body(scope, receive)
    number = await find_number(key)
    if number is None or number.provider != slug:
        raise HttpError(404, "unknown webhook address")
    try:
        provider = get_provider(slug)
    except LookupError:
        raise HttpError(404, "unknown provider") from None
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    params = _parse_form(raw)
    request = WebhookRequest(url=_public_url(scope), params=params, headers=headers, raw_body=raw)
    try:
        provider.verify(number, request)
    except SignatureError as exc:
        raise HttpError(403, str(exc) or "invalid signature") from None
    if kind == "status":
        return await _handle_status(provider, number, request)
    return await _handle_inbound(provider, number, request)


async def _handle_inbound(
    provider: Any, number: Number, request: WebhookRequest
) -> tuple[int, str, bytes]:
    try:
        inbound = provider.parse_inbound(request)
    except WebhookError as exc:
        raise HttpError(400, str(exc)) from None
    if inbound.to_number != number.e164:
        raise HttpError(
            400, f"this address receives texts for {number.e164}, not {inbound.to_number}"
        )
    try:
        from_number = normalize_phone(inbound.from_number)
    except InvalidPhoneNumber as exc:
        raise HttpError(400, f"invalid From number: {exc}") from None
    if len(inbound.body) > settings.OPENLINE_MAX_BODY_CHARS:
        raise HttpError(
            413,
            f"message body is {len(inbound.body)} characters; the limit is "
            f"{settings.OPENLINE_MAX_BODY_CHARS}",
        )
    if "\x00" in inbound.body:
        raise HttpError(400, "message body contains a NUL character")
    values = {
        "organization_id": number.organization_id,
        "number_id": number.pk,
        "provider": number.provider,
        "provider_message_id": inbound.provider_message_id,
        "from_number": from_number,
        "body": inbound.body,
        "media_urls": list(inbound.media_urls),
        "received_at": timezone.now(),
    }
    await writer.write(values)
    content_type, body = provider.inbound_ack()
    return 200, content_type, body


async def _handle_status(
    provider: Any, number: Number, request: WebhookRequest
) -> tuple[int, str, bytes]:
    from openline.messaging.services.status import message_status_apply

    try:
        updates = provider.parse_status(request)
    except WebhookError as exc:
        raise HttpError(400, str(exc)) from None
    await sync_to_async(message_status_apply)(number=number, updates=updates)
    return 200, "text/plain", b""


class IntakeRouter:
    """Sends /hooks/... to the lean intake and everything else to the full Django app."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # The serving loop publishes real-time events (the in-memory layer and the
            # console hubs live on it). Checked per call: a restarted server has a new loop.
            from openline.core.realtime import set_server_loop

            set_server_loop(loop)
            self._loop = loop
        if scope["type"] == "http" and scope["path"].startswith("/hooks/"):
            match = HOOK_PATH.match(scope["path"])
            if match is None:
                await _respond(send, 404, b"unknown webhook address", "text/plain")
                return
            await handle_hook(scope, receive, send, match)
            return
        await self.app(scope, receive, send)
