"""Inbound processing: acknowledged InboundEvents become messages in conversations.

Idempotent: processing an event twice (a crash between steps, two workers) stores one
message.

Whether each inbox is online is decided once per batch (two queries, before the write
lock): texts that arrive while it is offline are marked, and so is a conversation they
open. Keywords are handled the same either way. Texts that may call for an auto-response
go to a task after the commit."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.db.models import F, Model
from django.db.models.sql import InsertQuery
from django.utils import timezone

from openline.availability.responses import responding_inboxes
from openline.availability.selectors import inboxes_online
from openline.contacts.keywords import KeywordMatch, looks_like_opt_out_request, match_keyword
from openline.contacts.models import ConsentKind, ConsentSource, Contact
from openline.contacts.services import consent_record, contact_get_or_create
from openline.core.dbgate import write_gate
from openline.core.realtime import publish_many_on_commit, publish_on_commit
from openline.messaging.journal import journal_move
from openline.messaging.models import (
    Conversation,
    ConversationStatus,
    Direction,
    InboundEvent,
    Message,
    MessageStatus,
)
from openline.messaging.segments import count_segments
from openline.messaging.services.consent import apply_keyword
from openline.messaging.services.outbound import conversation_event, message_event

logger = logging.getLogger(__name__)


class _Batch:
    """Contacts and open conversations for a batch of events, loaded in two queries."""

    def __init__(self, events: list[InboundEvent]) -> None:
        phones = {(e.organization_id, e.from_number) for e in events}
        self.contacts: dict[tuple[int, str], Contact] = {
            (c.organization_id, c.phone): c
            for c in Contact.objects.filter(
                organization_id__in={p[0] for p in phones}, phone__in={p[1] for p in phones}
            )
        }
        self.open: dict[tuple[int, int], Conversation] = {}
        for conversation in (
            Conversation.objects.filter(contact__in=list(self.contacts.values()))
            .exclude(status=ConversationStatus.CLOSED)
            .order_by("id")
        ):
            self.open[(conversation.contact_id, conversation.number_id)] = conversation

    def contact(self, event: InboundEvent) -> Contact:
        key = (event.organization_id, event.from_number)
        if key not in self.contacts:
            self.contacts[key], _ = contact_get_or_create(
                organization_id=event.organization_id, phone=event.from_number
            )
        return self.contacts[key]

    def conversation(
        self, *, contact: Contact, event: InboundEvent, keyword_only: bool, offline: bool
    ) -> tuple[Conversation, bool]:
        """The open conversation, or a new waiting one. A bare keyword (STOP, HELP...) does
        not put anyone in the queue: it joins the latest conversation, or a closed one."""
        key = (contact.pk, event.number_id)
        if key in self.open:
            return self.open[key], False
        if keyword_only:
            latest = (
                Conversation.objects.filter(contact=contact, number_id=event.number_id)
                .order_by("-id")
                .first()
            )
            if latest is not None:
                return latest, False
        conversation = Conversation.objects.create(
            organization_id=event.organization_id,
            number_id=event.number_id,
            contact=contact,
            status=ConversationStatus.CLOSED if keyword_only else ConversationStatus.WAITING,
            last_message_at=event.received_at,
            closed_at=event.received_at if keyword_only else None,
            opened_offline=offline and not keyword_only,
        )
        if not keyword_only:
            self.open[key] = conversation
        return conversation, True


@dataclass(slots=True)
class _Prepared:
    """What can be worked out from an event before taking the database's write lock."""

    event: InboundEvent
    keyword: KeywordMatch | None
    opt_out_request: bool
    encoding: str
    segments: int

    @classmethod
    def of(cls, event: InboundEvent) -> _Prepared:
        keyword = match_keyword(event.body)
        info = count_segments(event.body)
        return cls(
            event=event,
            keyword=keyword,
            opt_out_request=keyword is None and looks_like_opt_out_request(event.body),
            encoding=info.encoding,
            segments=info.segments,
        )


@dataclass(slots=True)
class _Inboxes:
    """The batch's inboxes as of its first arrival: which are offline, which answer
    automatically. Read once per batch, not per text."""

    offline: set[int]
    responding: set[int]

    @classmethod
    def of(cls, prepared: list[_Prepared]) -> _Inboxes:
        ids = sorted({p.event.number_id for p in prepared})
        online = inboxes_online(ids, min(p.event.received_at for p in prepared))
        return cls({n for n, on in online.items() if not on}, responding_inboxes(ids))

    def offline_text(self, item: _Prepared) -> bool:
        """A text (not a keyword) that arrived while its inbox was offline."""
        return item.keyword is None and item.event.number_id in self.offline


class _AutoReplies:
    """Texts that may call for an auto-response, handed to a task after the commit."""

    def __init__(self, inboxes: _Inboxes) -> None:
        self.inboxes = inboxes
        self.candidates: list[Message] = []
        self.opened: list[Message] = []

    def consider(self, item: _Prepared, message: Message, *, opened: bool) -> None:
        if item.keyword is not None or item.event.number_id not in self.inboxes.responding:
            return  # STOP/HELP have their own answers
        if message.received_offline or opened:
            self.candidates.append(message)
            if opened:
                self.opened.append(message)

    def enqueue_on_commit(self) -> None:
        """Call after the messages are saved (their ids are known)."""
        if not self.candidates:
            return
        ids = [m.pk for m in self.candidates]
        opened = [m.pk for m in self.opened]
        transaction.on_commit(lambda: _enqueue_auto_replies(ids, opened))


def _enqueue_auto_replies(message_ids: list[int], opened_ids: list[int]) -> None:
    from openline.availability.tasks import send_auto_replies

    send_auto_replies.enqueue(message_ids, opened_ids)


def inbound_process(*, event_id: int) -> Message | None:
    """Process one event if it is still pending (tests, replays)."""
    event = InboundEvent.objects.filter(pk=event_id, processed_at__isnull=True).first()
    if event is None:
        return None
    _process_batch([_Prepared.of(event)])
    return Message.objects.filter(inbound_event_id=event_id).first()


MAX_ATTEMPTS = 5
BATCH_SIZE = 50


def inbound_process_pending(limit: int = BATCH_SIZE) -> int:
    """Process a batch of waiting events, oldest first. Returns how many were handled.

    Classification, lookups and building the SQL run before the write transaction; in the
    common case (plain texts into open conversations) the transaction only runs five
    prepared statements, so it holds SQLite's write lock for a few milliseconds (about 6 ms
    for 50 texts on a slow 2-core machine), and the lock is free again as soon as it
    commits (before events are published)."""
    journal_move()  # webhooks kept aside while the write lock was taken
    events = list(
        InboundEvent.objects.filter(processed_at__isnull=True, attempts__lt=MAX_ATTEMPTS).order_by(
            "id"
        )[:limit]
    )
    if not events:
        return 0
    _process_batch([_Prepared.of(event) for event in events])
    return len(events)


def _process_batch(prepared: list[_Prepared]) -> None:
    inboxes = _Inboxes.of(prepared)
    plan = _plan(prepared, inboxes)  # reads, before taking the write lock
    with write_gate.background() as release, transaction.atomic():
        transaction.on_commit(release)  # the first callback: the lock is free at commit
        claimed = _claim([p.event.pk for p in prepared])
        if plan is not None and len(claimed) != len(prepared):
            plan = None
        prepared = [p for p in prepared if p.event.pk in claimed]
        if not prepared:
            return
        try:
            with transaction.atomic():
                if plan is None or not _write_plan(plan):
                    _store(prepared, inboxes)
            stored = [p.event.pk for p in prepared]
        except Exception:
            # Find the event that fails, one at a time, so the others still go through.
            stored = []
            for item in prepared:
                try:
                    with transaction.atomic():
                        _store([item], inboxes)
                    stored.append(item.event.pk)
                except Exception:
                    logger.exception("processing inbound event %s failed", item.event.pk)
                    InboundEvent.objects.filter(pk=item.event.pk).update(attempts=F("attempts") + 1)
        _mark_processed(stored)


@dataclass(slots=True)
class _Plan:
    messages: list[Message]
    conversation_ids: set[int]
    replies: _AutoReplies
    inserts: list[tuple[str, list[object], list[Message]]]


def _plan(prepared: list[_Prepared], inboxes: _Inboxes) -> _Plan | None:
    """The common case worked out ahead: plain texts from known people into their open
    conversations. Anything else (a keyword, a new person or conversation) returns None
    and takes the full path inside the transaction."""
    if any(p.keyword is not None or p.opt_out_request for p in prepared):
        return None
    batch = _Batch([p.event for p in prepared])
    messages = []
    replies = _AutoReplies(inboxes)
    for item in prepared:
        contact = batch.contacts.get((item.event.organization_id, item.event.from_number))
        conversation = batch.open.get((contact.pk, item.event.number_id)) if contact else None
        if conversation is None:
            return None
        message = _inbound_message(item, conversation, offline=inboxes.offline_text(item))
        replies.consider(item, message, opened=False)
        messages.append(message)
    return _Plan(messages, {m.conversation_id for m in messages}, replies, _inserts(messages))


def _write_plan(plan: _Plan) -> bool:
    """Store a plan made outside the transaction, if its conversations are still open."""
    ids = sorted(plan.conversation_ids)
    table, status = _table(Conversation), _column(Conversation, "status")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*) FROM {table} WHERE {_column(Conversation, 'id')} IN "  # noqa: S608
            f"({_marks(ids)}) AND {status} <> %s",
            [*ids, ConversationStatus.CLOSED],
        )
        if cursor.fetchone()[0] != len(ids):
            return False  # closed meanwhile: the full path opens new ones
        for sql, params, messages in plan.inserts:  # a replayed event fails here, then retries
            cursor.execute(sql, params)
            for message, (pk,) in zip(messages, cursor.fetchall(), strict=True):
                message.pk = pk
                message._state.adding, message._state.db = False, DEFAULT_DB_ALIAS
    _touch_and_publish(plan.messages, plan.conversation_ids)
    plan.replies.enqueue_on_commit()
    return True


# --- SQL built ahead of the write lock -----------------------------------------------------
# Identifiers come from the models' metadata; every value is a query parameter.


def _table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _column(model: type[Model], name: str) -> str:
    return connection.ops.quote_name(model._meta.get_field(name).column)


def _marks(values: list[object] | list[int]) -> str:
    return ", ".join(["%s"] * len(values))


def _inserts(messages: list[Message]) -> list[tuple[str, list[object], list[Message]]]:
    """The INSERT ... RETURNING id statements of ``Message.objects.bulk_create(messages)``,
    compiled by Django's own insert compiler (so every field is prepared as it would be),
    in the same batch sizes."""
    opts = Message._meta
    fields = [f for f in opts.concrete_fields if not f.generated and f is not opts.pk]
    for message in messages:
        message._prepare_related_fields_for_save(operation_name="bulk_create")
    size = max(1, connection.ops.bulk_batch_size(fields, messages))
    statements = []
    for start in range(0, len(messages), size):
        chunk = messages[start : start + size]
        query = InsertQuery(Message)
        query.insert_values(fields, chunk)
        compiler = query.get_compiler(using=DEFAULT_DB_ALIAS)
        compiler.returning_fields = [opts.pk]
        [(sql, params)] = compiler.as_sql()
        statements.append((sql, list(params), chunk))
    return statements


def _claim(event_ids: list[int]) -> set[int]:
    """The events still waiting, locked for this transaction (PostgreSQL: skipping any
    that another worker holds)."""
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


def _inbound_message(item: _Prepared, conversation: Conversation, *, offline: bool) -> Message:
    event = item.event
    return Message(
        organization_id=event.organization_id,
        conversation=conversation,
        direction=Direction.INBOUND,
        body=event.body,
        segments=item.segments,
        encoding=item.encoding,
        status=MessageStatus.RECEIVED,
        provider_message_id=event.provider_message_id,
        inbound_event=event,
        created_at=event.received_at,
        received_offline=offline,
    )


def _touch_and_publish(messages: list[Message], conversation_ids: set[int]) -> None:
    if conversation_ids:
        # One statement for the batch: each conversation's time is its newest message's.
        ids = sorted(conversation_ids)
        conversation, pk = _table(Conversation), _column(Conversation, "id")
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {conversation} SET {_column(Conversation, 'last_message_at')} = "  # noqa: S608
                f"(SELECT MAX(m.{_column(Message, 'created_at')}) FROM {_table(Message)} m "
                f"WHERE m.{_column(Message, 'conversation')} = {conversation}.{pk}) "
                f"WHERE {pk} IN ({_marks(ids)})",
                ids,
            )
    publish_many_on_commit(
        [(m.organization_id, message_event(m, "message.created")) for m in messages]
    )


def _store(prepared: list[_Prepared], inboxes: _Inboxes) -> None:
    events = [p.event for p in prepared]
    already = set(
        Message.objects.filter(inbound_event__in=events).values_list("inbound_event_id", flat=True)
    )
    batch = _Batch(events)
    messages: list[Message] = []
    touched: set[int] = set()
    follow_up: list[tuple[_Prepared, Conversation]] = []
    replies = _AutoReplies(inboxes)
    for item in prepared:
        event = item.event
        if event.pk in already:
            continue  # a replay after a crash: the message exists
        contact = batch.contact(event)
        offline = inboxes.offline_text(item)
        conversation, created = batch.conversation(
            contact=contact, event=event, keyword_only=item.keyword is not None, offline=offline
        )
        if created:
            publish_on_commit(
                organization_id=event.organization_id,
                event=conversation_event(conversation, "conversation.created"),
            )
        else:
            touched.add(conversation.pk)
        message = _inbound_message(item, conversation, offline=offline)
        replies.consider(item, message, opened=created)
        messages.append(message)
        if item.keyword is not None or item.opt_out_request:
            follow_up.append((item, conversation))
    Message.objects.bulk_create(messages)
    _touch_and_publish(messages, touched)
    replies.enqueue_on_commit()
    for item, conversation in follow_up:
        if item.keyword is not None:
            apply_keyword(conversation=conversation, match=item.keyword, text=item.event.body)
        else:
            _flag_opt_out_request(conversation, item.event)


def _flag_opt_out_request(conversation: Conversation, event: InboundEvent) -> None:
    consent_record(
        organization_id=event.organization_id,
        phone=conversation.contact.phone,
        kind=ConsentKind.OPT_OUT_REQUEST,
        source=ConsentSource.MESSAGE,
        text=event.body,
        number_id=event.number_id,
    )
    conversation.needs_consent_review = True
    conversation.save(update_fields=["needs_consent_review"])


def _mark_processed(event_ids: list[int]) -> None:
    if not event_ids:
        return
    field = InboundEvent._meta.get_field("processed_at")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_table(InboundEvent)} SET {_column(InboundEvent, 'processed_at')} = %s "  # noqa: S608
            f"WHERE {_column(InboundEvent, 'id')} IN ({_marks(event_ids)})",
            [field.get_db_prep_save(timezone.now(), connection), *event_ids],
        )
