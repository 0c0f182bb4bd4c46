"""Inbound processing: acknowledged InboundEvents become messages in conversations.

Idempotent: processing an event twice (a crash between steps, two workers) stores one
message.

Whether each inbox is online is decided once per batch (two queries, before the write
lock): texts that arrive while it is offline are marked, and so is a conversation they
open. Keywords are handled the same either way. Texts that may call for an auto-response
go to a task after the commit."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from openline.availability.responses import responding_inboxes
from openline.availability.selectors import inboxes_online
from openline.contacts.keywords import (
    KeywordKind,
    KeywordMatch,
    is_conditional,
    looks_like_opt_out_request,
    match_keyword,
)
from openline.contacts.models import Contact
from openline.contacts.services.consent import consent_keyword_in_context
from openline.contacts.services.contacts import contact_get_or_create
from openline.core.realtime import publish_many_on_commit, publish_on_commit
from openline.messaging import hooks, sql
from openline.messaging.answers import answer_awaited
from openline.messaging.events import conversation_event, message_event_values
from openline.messaging.models import (
    AwaitedAnswer,
    Conversation,
    ConversationStatus,
    Direction,
    InboundEvent,
    Message,
    MessageStatus,
)
from openline.messaging.risk import RiskHit, matchers_for
from openline.messaging.segments import count_segments
from openline.messaging.services.conversation_consent import (
    apply_keyword,
    conversation_flag_opt_out_request,
)
from openline.messaging.services.priority import conversation_raise_priority
from openline.providers.models import Number

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Event:
    """The fields of a waiting InboundEvent that processing reads (plain values: cheaper
    to load than model instances)."""

    pk: int
    organization_id: int
    number_id: int
    provider_message_id: str
    from_number: str
    body: str
    received_at: datetime


_EVENT_FIELDS = tuple(f.name for f in fields(_Event))


def _load_events(events: QuerySet[InboundEvent]) -> list[_Event]:
    return [_Event(*row) for row in events.values_list(*_EVENT_FIELDS)]


class _Batch:
    """Contacts and open conversations for a batch of events, loaded in two queries."""

    def __init__(self, events: list[_Event]) -> None:
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

    def contact(self, event: _Event) -> Contact:
        key = (event.organization_id, event.from_number)
        if key not in self.contacts:
            self.contacts[key], _ = contact_get_or_create(
                organization_id=event.organization_id, phone=event.from_number
            )
        return self.contacts[key]

    def conversation(
        self,
        *,
        contact: Contact,
        event: _Event,
        opt_out: bool,
        offline: bool,
        hold_minutes: int = 0,
    ) -> tuple[Conversation, bool]:
        """The open conversation, or a new waiting one: every text reaches a person, a
        bare HELP, START or YES included. Only an opt-out keyword (STOP...) from someone
        with no open conversation puts nobody in the queue: it joins their latest
        conversation, or a new closed one. ``hold_minutes`` keeps a new one out of the
        queue while its inbox's pre-conversation survey runs (at most that long)."""
        key = (contact.pk, event.number_id)
        if key in self.open:
            return self.open[key], False
        if opt_out:
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
            status=ConversationStatus.CLOSED if opt_out else ConversationStatus.WAITING,
            last_message_at=event.received_at,
            closed_at=event.received_at if opt_out else None,
            opened_offline=offline,
            held_until=event.received_at + timedelta(minutes=hold_minutes)
            if hold_minutes and not opt_out
            else None,
        )
        if not opt_out:
            self.open[key] = conversation
        return conversation, True


@dataclass(slots=True)
class _Prepared:
    """What can be worked out from an event before taking the database's write lock."""

    event: _Event
    keyword: KeywordMatch | None
    opt_out_request: bool
    encoding: str
    segments: int
    risk: RiskHit | None = None

    @property
    def opts_out(self) -> bool:
        return self.keyword is not None and self.keyword.kind == KeywordKind.OPT_OUT

    @classmethod
    def of(cls, event: _Event) -> _Prepared:
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
    # Inboxes whose new conversations wait for a pre-conversation survey: minutes.
    holds: dict[int, int]

    @classmethod
    def of(cls, prepared: list[_Prepared]) -> _Inboxes:
        ids = sorted({p.event.number_id for p in prepared})
        online = inboxes_online(ids, min(p.event.received_at for p in prepared))
        offline = {n for n, on in online.items() if not on}
        holds = hooks.opening_holds([n for n in ids if n not in offline])
        return cls(offline, responding_inboxes(ids), holds)

    def hold_minutes(self, item: _Prepared) -> int:
        """How long a conversation this text opens is held for its inbox's survey: not
        when the text is a keyword or contains a risk phrase (it goes to the queue now)."""
        if item.keyword is not None or item.opt_out_request or item.risk is not None:
            return 0
        return self.holds.get(item.event.number_id, 0)

    def offline_text(self, item: _Prepared) -> bool:
        """A text (anything but an opt-out keyword) that arrived while its inbox was
        offline: it waits for follow-up when the service opens."""
        return not item.opts_out and item.event.number_id in self.offline


class _AutoReplies:
    """Texts that may call for an auto-response, handed to a task after the commit."""

    def __init__(self, inboxes: _Inboxes) -> None:
        self.inboxes = inboxes
        self.candidates: list[_Row] = []
        self.opened: list[_Row] = []

    def consider(self, item: _Prepared, message: _Row, *, opened: bool) -> None:
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
        ids = [m.pk for m in self.candidates if m.pk is not None]
        opened = [m.pk for m in self.opened if m.pk is not None]
        transaction.on_commit(lambda: _enqueue_auto_replies(ids, opened))


def _enqueue_auto_replies(message_ids: list[int], opened_ids: list[int]) -> None:
    from openline.messaging.tasks import send_auto_replies

    send_auto_replies.enqueue(message_ids, opened_ids)


def inbound_process(*, event_id: int) -> Message | None:
    """Process one event if it is still pending (tests, replays)."""
    events = _load_events(InboundEvent.objects.filter(pk=event_id, processed_at__isnull=True))
    if not events:
        return None
    _process_batch([_Prepared.of(events[0])])
    return Message.objects.filter(inbound_event_id=event_id).first()


MAX_ATTEMPTS = 5
BATCH_SIZE = 50


def inbound_process_pending(limit: int = BATCH_SIZE) -> int:
    """Process a batch of waiting events, oldest first. Returns how many were handled.

    Classification, lookups and building the SQL run before the write transaction; in the
    common case (plain texts into open conversations) the transaction only runs five
    prepared statements, so it holds SQLite's write lock for a few milliseconds, and the
    lock is free again as soon as it commits (before events are published; bench/sql.py
    times the statements)."""
    events = _load_events(
        InboundEvent.objects.filter(processed_at__isnull=True, attempts__lt=MAX_ATTEMPTS).order_by(
            "id"
        )[:limit]
    )
    if not events:
        return 0
    _process_batch([_Prepared.of(event) for event in events])
    return len(events)


def _assess_risk(prepared: list[_Prepared]) -> None:
    """Each text's risk phrase, if any (one query per batch; matchers are cached)."""
    matchers = matchers_for({p.event.organization_id for p in prepared})
    for item in prepared:
        item.risk = matchers[item.event.organization_id].match(item.event.body)


def _process_batch(prepared: list[_Prepared]) -> None:
    _assess_risk(prepared)
    inboxes = _Inboxes.of(prepared)
    plan = _plan(prepared, inboxes)  # reads, before taking the write lock
    with transaction.atomic():
        claimed = sql.inbound_events_claim(event_ids=[p.event.pk for p in prepared])
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
        sql.inbound_events_mark_processed(event_ids=stored, at=timezone.now())
        stored_events = [p.event for p in prepared if p.event.pk in set(stored)]
        transaction.on_commit(lambda: _hand_over_answers(stored_events))


def _hand_over_answers(events: list[_Event]) -> None:
    """Texts from people whose answer to a question OpenLine asked is awaited go to that
    question's reader, in a task (messaging.answers). One query per batch, after commit."""
    if not events:
        return
    awaited = set(
        AwaitedAnswer.objects.filter(
            organization_id__in={e.organization_id for e in events},
            number_id__in={e.number_id for e in events},
            contact__phone__in={e.from_number for e in events},
            until__gt=min(e.received_at for e in events),
        ).values_list("number_id", "contact__phone")
    )
    if not awaited:
        return
    from openline.messaging.tasks import read_answer

    answering = [e.pk for e in events if (e.number_id, e.from_number) in awaited]
    for message_id in Message.objects.filter(inbound_event_id__in=answering).values_list(
        "pk", flat=True
    ):
        read_answer.enqueue(message_id)


@dataclass(slots=True)
class _Row:
    """One inbound message as its INSERT stores it (``pk`` once stored). The fields of
    Message that it leaves out take their defaults."""

    organization_id: int
    conversation_id: int
    body: str
    segments: int
    encoding: str
    provider_message_id: str
    inbound_event_id: int
    created_at: datetime
    received_offline: bool
    pk: int | None = None

    @classmethod
    def of(cls, item: _Prepared, conversation_id: int, *, offline: bool) -> _Row:
        event = item.event
        return cls(
            organization_id=event.organization_id,
            conversation_id=conversation_id,
            body=event.body,
            segments=item.segments,
            encoding=item.encoding,
            provider_message_id=event.provider_message_id,
            inbound_event_id=event.pk,
            created_at=event.received_at,
            received_offline=offline,
        )


@dataclass(slots=True)
class _Open:
    """An open conversation as a plan needs it."""

    id: int
    status: str
    assigned_to_id: int | None


_Holder = _Open | Conversation


@dataclass(slots=True)
class _Plan:
    rows: list[_Row]
    conversations: dict[int, _Open]
    replies: _AutoReplies
    inserts: sql.PreparedInsert


def _plan(prepared: list[_Prepared], inboxes: _Inboxes) -> _Plan | None:
    """The common case worked out ahead: plain texts from known people into their open
    conversations. Anything else (a keyword, a new person or conversation) returns None
    and takes the full path inside the transaction (so do texts with a risk phrase)."""
    if any(p.keyword is not None or p.opt_out_request or p.risk for p in prepared):
        return None
    found = _open_conversations([p.event for p in prepared])
    rows: list[_Row] = []
    conversations: dict[int, _Open] = {}
    replies = _AutoReplies(inboxes)
    for item in prepared:
        event = item.event
        conversation = found.get((event.organization_id, event.from_number, event.number_id))
        if conversation is None:
            return None
        row = _Row.of(item, conversation.id, offline=inboxes.offline_text(item))
        replies.consider(item, row, opened=False)
        rows.append(row)
        conversations[conversation.id] = conversation
    return _Plan(rows, conversations, replies, _inserts(rows))


def _open_conversations(events: list[_Event]) -> dict[tuple[int, str, int], _Open]:
    """The open conversation of each (organization, phone, inbox) among ``events`` (the
    newest, as in _Batch): one query of plain values."""
    rows = (
        Conversation.objects.filter(
            organization_id__in={e.organization_id for e in events},
            contact__phone__in={e.from_number for e in events},
            number_id__in={e.number_id for e in events},
        )
        .exclude(status=ConversationStatus.CLOSED)
        .order_by("id")
        .values_list(
            "organization_id", "contact__phone", "number_id", "id", "status", "assigned_to_id"
        )
    )
    return {
        (organization_id, phone, number_id): _Open(pk, status, assigned_to_id)
        for organization_id, phone, number_id, pk, status, assigned_to_id in rows
    }


def _write_plan(plan: _Plan) -> bool:
    """Store a plan made outside the transaction, if its conversations are still open."""
    ids = sorted(plan.conversations)
    if sql.conversations_open_count(conversation_ids=ids) != len(ids):
        return False  # closed meanwhile: the full path opens new ones
    _insert(plan.inserts, plan.rows)  # a replayed event fails here, then retries
    sql.conversations_touch(conversation_ids=ids)
    _publish_created(plan.rows, plan.conversations)
    plan.replies.enqueue_on_commit()
    return True


# --- the statements built ahead of the write lock (messaging.sql) ----------------------------

_ROW_FIELDS = frozenset(f.name for f in fields(_Row)) - {"pk"}


def _inserts(rows: list[_Row]) -> sql.PreparedInsert:
    return sql.inbound_messages_insert_prepare(rows=rows, fields=_ROW_FIELDS)


def _insert(prepared: sql.PreparedInsert, rows: list[_Row]) -> None:
    for row, pk in zip(rows, sql.inbound_messages_insert(prepared=prepared), strict=True):
        row.pk = pk


def _publish_created(rows: list[_Row], conversations: Mapping[int, _Holder]) -> None:
    events = []
    for row in rows:
        conversation = conversations[row.conversation_id]
        events.append(
            (
                row.organization_id,
                message_event_values(
                    "message.created",
                    message_id=row.pk,
                    conversation_id=row.conversation_id,
                    direction=Direction.INBOUND,
                    status=MessageStatus.RECEIVED,
                    conversation_status=conversation.status,
                    assigned_to_id=conversation.assigned_to_id,
                ),
            )
        )
    publish_many_on_commit(events)


def _store(prepared: list[_Prepared], inboxes: _Inboxes) -> None:
    events = [p.event for p in prepared]
    already = set(
        Message.objects.filter(inbound_event_id__in=[e.pk for e in events]).values_list(
            "inbound_event_id", flat=True
        )
    )
    batch = _Batch(events)
    rows: list[_Row] = []
    holders: dict[int, _Holder] = {}
    touched: set[int] = set()
    follow_up: list[tuple[_Prepared, Conversation]] = []
    risky: list[tuple[RiskHit, Conversation]] = []
    held: list[int] = []
    replies = _AutoReplies(inboxes)
    context = _KeywordContext()
    for item in prepared:
        event = item.event
        if event.pk in already:
            continue  # a replay after a crash: the message exists
        contact = batch.contact(event)
        item.keyword = context.resolve(
            item.keyword, contact=contact, number_id=event.number_id, at=event.received_at
        )
        offline = inboxes.offline_text(item)
        conversation, created = batch.conversation(
            contact=contact,
            event=event,
            opt_out=item.opts_out,
            offline=offline,
            hold_minutes=inboxes.hold_minutes(item),
        )
        if created and conversation.held_until is not None:
            held.append(conversation.pk)
        if created:
            kind = "conversation.held" if conversation.held_until else "conversation.created"
            publish_on_commit(
                organization_id=event.organization_id,
                event=conversation_event(conversation, kind),
            )
        else:
            touched.add(conversation.pk)
        row = _Row.of(item, conversation.pk, offline=offline)
        replies.consider(item, row, opened=created)
        rows.append(row)
        holders[conversation.pk] = conversation
        if item.keyword is not None or item.opt_out_request:
            follow_up.append((item, conversation))
        if item.risk is not None and conversation.status != ConversationStatus.CLOSED:
            risky.append((item.risk, conversation))
    _insert(_inserts(rows), rows)
    sql.conversations_touch(conversation_ids=sorted(touched))
    _publish_created(rows, holders)
    replies.enqueue_on_commit()
    for hit, conversation in risky:
        conversation_raise_priority(
            conversation=conversation, priority=hit.priority, reason=hit.reason
        )
    if held:
        transaction.on_commit(lambda: hooks.conversations_held(held))
    for item, conversation in follow_up:
        if item.keyword is not None:
            apply_keyword(conversation=conversation, match=item.keyword, text=item.event.body)
        else:
            conversation_flag_opt_out_request(conversation=conversation, text=item.event.body)


class _KeywordContext:
    """Decides what a conditional keyword (YES) means for each person, in arrival order:
    an opt-in only while they are opted out or asked to confirm one, so a STOP earlier in
    the same batch counts."""

    def __init__(self) -> None:
        self.numbers: dict[int, Number] = {}
        self.opted_out: dict[tuple[int, int], bool] = {}  # (contact, number) -> decided here

    def resolve(
        self, match: KeywordMatch | None, *, contact: Contact, number_id: int, at: datetime
    ) -> KeywordMatch | None:
        key = (contact.pk, number_id)
        if not is_conditional(match):
            if match is not None and match.kind != KeywordKind.HELP:
                self.opted_out[key] = match.kind == KeywordKind.OPT_OUT
            return match
        number = self._number(number_id)
        awaited = match is not None and match.kind == KeywordKind.OPT_OUT  # CANCEL: asked?
        resolved = consent_keyword_in_context(
            match,
            organization_id=contact.organization_id,
            phone=contact.phone,
            simulated=number.simulated,
            toll_free=number.toll_free,
            opted_out=self.opted_out.get(key),  # a STOP earlier in this batch
            answer_awaited=awaited
            and answer_awaited(contact_id=contact.pk, number_id=number_id, at=at) is not None,
        )
        if resolved is not None:  # an opt-in (YES) or an opt-out (CANCEL) that counts
            self.opted_out[key] = resolved.kind == KeywordKind.OPT_OUT
        return resolved

    def _number(self, number_id: int) -> Number:
        if number_id not in self.numbers:
            self.numbers[number_id] = Number.objects.get(pk=number_id)
        return self.numbers[number_id]
