"""The hand-built statements of messaging.sql say what their ORM versions would."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.utils import timezone

from openline.contacts.models import Contact
from openline.messaging import sql
from openline.messaging.models import (
    Conversation,
    ConversationStatus,
    Direction,
    InboundEvent,
    Message,
    MessageStatus,
)

PERSON = "+12025550111"


def _event_values(number: Any, message_id: str, **values: Any) -> dict[str, Any]:
    return {
        "organization_id": number.organization_id,
        "number_id": number.pk,
        "provider": number.provider,
        "provider_message_id": message_id,
        "from_number": PERSON,
        "body": "running late",
        "media_urls": [],
        "received_at": timezone.now(),
        **values,
    }


def _conversation(number: Any, phone: str = PERSON, **values: Any) -> Conversation:
    contact, _ = Contact.objects.get_or_create(organization=number.organization, phone=phone)
    return Conversation.objects.create(
        organization=number.organization,
        number=number,
        contact=contact,
        last_message_at=timezone.now() - dt.timedelta(days=1),
        **values,
    )


def _message(conversation: Conversation, body: str = "hi", **values: Any) -> Message:
    return Message.objects.create(
        organization_id=conversation.organization_id,
        conversation=conversation,
        direction=values.pop("direction", Direction.INBOUND),
        status=values.pop("status", MessageStatus.RECEIVED),
        body=body,
        created_at=values.pop("created_at", timezone.now()),
        **values,
    )


def test_event_insert_returns_only_the_keys_it_stored(sandbox_number: Any) -> None:
    with transaction.atomic():
        first = sql.inbound_events_insert(rows=[_event_values(sandbox_number, "SM1")])
    with transaction.atomic():
        again = sql.inbound_events_insert(
            rows=[_event_values(sandbox_number, "SM1"), _event_values(sandbox_number, "SM2")]
        )

    assert first == {("sandbox", "SM1")}
    assert again == {("sandbox", "SM2")}
    assert InboundEvent.objects.count() == 2


def test_event_insert_stores_values_as_the_orm_reads_them(sandbox_number: Any) -> None:
    received = timezone.now().replace(microsecond=123456)
    media = ["https://example.org/a.jpg"]
    with transaction.atomic():
        sql.inbound_events_insert(
            rows=[_event_values(sandbox_number, "SM9", media_urls=media, received_at=received)]
        )

    event = InboundEvent.objects.get()
    assert (event.media_urls, event.received_at) == (media, received)
    assert (event.processed_at, event.attempts) == (None, 0)


def test_event_insert_statement_has_one_parameter_per_placeholder(sandbox_number: Any) -> None:
    rows = [_event_values(sandbox_number, f"SM{i}") for i in range(3)]

    statement, params = sql.inbound_events_insert_statement(
        rows=rows, db=connection, placeholder="?"
    )

    assert statement.count("?") == len(params) == 3 * 10
    assert "%s" not in statement


@dataclass
class _Row:
    organization_id: int
    conversation_id: int
    body: str
    created_at: dt.datetime
    pk: int | None = None


_FIELDS = frozenset({"organization_id", "conversation_id", "body", "created_at"})


def test_message_insert_returns_ids_in_row_order_with_inbound_defaults(
    sandbox_number: Any,
) -> None:
    conversation = _conversation(sandbox_number)
    now = timezone.now()
    rows = [_Row(conversation.organization_id, conversation.pk, f"text {i}", now) for i in range(3)]

    prepared = sql.inbound_messages_insert_prepare(rows=rows, fields=_FIELDS)
    with transaction.atomic():
        ids = sql.inbound_messages_insert(prepared=prepared)

    stored = Message.objects.in_bulk(ids)
    assert [stored[pk].body for pk in ids] == ["text 0", "text 1", "text 2"]
    assert {(m.direction, m.status, m.kind) for m in stored.values()} == {
        (Direction.INBOUND, MessageStatus.RECEIVED, "personal")
    }


def test_message_insert_refuses_a_field_message_does_not_have() -> None:
    with pytest.raises(ImproperlyConfigured):
        sql.inbound_messages_insert_prepare(rows=[], fields={"no_such_field"})


def _events(number: Any, count: int) -> list[InboundEvent]:
    now = timezone.now()
    return [
        InboundEvent.objects.create(
            organization_id=number.organization_id,
            number=number,
            provider=number.provider,
            provider_message_id=f"SM{i}",
            from_number=PERSON,
            received_at=now,
        )
        for i in range(count)
    ]


def test_claim_takes_only_events_still_waiting(sandbox_number: Any) -> None:
    waiting, done = _events(sandbox_number, 2)
    InboundEvent.objects.filter(pk=done.pk).update(processed_at=timezone.now())

    with transaction.atomic():
        claimed = sql.inbound_events_claim(event_ids=[waiting.pk, done.pk])

    assert claimed == {waiting.pk}


def test_mark_processed_stamps_only_the_given_events(sandbox_number: Any) -> None:
    first, second = _events(sandbox_number, 2)
    at = timezone.now().replace(microsecond=654321)

    sql.inbound_events_mark_processed(event_ids=[first.pk], at=at)
    sql.inbound_events_mark_processed(event_ids=[], at=at)

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.processed_at, second.processed_at) == (at, None)


def test_open_count_leaves_out_closed_conversations(sandbox_number: Any) -> None:
    open_one = _conversation(sandbox_number)
    closed = _conversation(sandbox_number, "+12025550112", status=ConversationStatus.CLOSED)

    count = sql.conversations_open_count(conversation_ids=[open_one.pk, closed.pk])

    assert count == 1


def test_touch_gives_each_conversation_its_newest_message_time(sandbox_number: Any) -> None:
    first, second = _conversation(sandbox_number), _conversation(sandbox_number, "+12025550112")
    newest = timezone.now().replace(microsecond=0)
    _message(first, created_at=newest - dt.timedelta(minutes=5))
    _message(first, created_at=newest)
    untouched = second.last_message_at
    _message(second, created_at=newest)

    sql.conversations_touch(conversation_ids=[first.pk])
    sql.conversations_touch(conversation_ids=[])

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.last_message_at, second.last_message_at) == (newest, untouched)


def test_message_search_finds_all_words_last_as_prefix_in_the_view(
    sandbox_number: Any, other_number: Any
) -> None:
    waiting = _conversation(sandbox_number)
    _message(waiting, "can you call the pharmacy tomorrow")
    closed = _conversation(sandbox_number, "+12025550112", status=ConversationStatus.CLOSED)
    _message(closed, "pharmacy tomorrow")
    elsewhere = _conversation(other_number)
    _message(elsewhere, "pharmacy tomorrow")
    _message(_conversation(sandbox_number, "+12025550113"), "pharmacy only")

    def search(words: list[str], statuses: tuple[str, ...]) -> list[int]:
        return sql.message_search_conversation_ids(
            organization_id=sandbox_number.organization_id,
            words=words,
            statuses=statuses,
            holder_id=None,
            limit=10,
        )

    assert search(["pharmacy", "tomor"], (ConversationStatus.WAITING,)) == [waiting.pk]
    assert search(["pharmacy", "tomor"], (ConversationStatus.CLOSED,)) == [closed.pk]


def test_message_search_narrows_to_the_holder(sandbox_number: Any, bob: Any, dora: Any) -> None:
    held = _conversation(sandbox_number, status=ConversationStatus.ACTIVE, assigned_to=bob)
    _message(held, "ride to the doctor")
    _message(
        _conversation(
            sandbox_number, "+12025550112", status=ConversationStatus.ACTIVE, assigned_to=dora
        ),
        "ride to the doctor",
    )

    found = sql.message_search_conversation_ids(
        organization_id=sandbox_number.organization_id,
        words=["doctor"],
        statuses=(ConversationStatus.ACTIVE,),
        holder_id=bob.pk,
        limit=10,
    )

    assert found == [held.pk]


def test_messages_unsettled_are_outbound_queued_sending_or_unknown(sandbox_number: Any) -> None:
    conversation = _conversation(sandbox_number)
    out = {"direction": Direction.OUTBOUND}
    open_ones = {
        _message(conversation, status=status, **out).pk
        for status in (MessageStatus.QUEUED, MessageStatus.SENDING, MessageStatus.UNKNOWN)
    }
    _message(conversation, status=MessageStatus.DELIVERED, **out)
    _message(conversation)  # inbound, received

    found = set(Message.objects.filter(sql.messages_unsettled()).values_list("pk", flat=True))

    assert found == open_ones


@pytest.mark.django_db
def test_messages_unsettled_repeats_the_partial_index_condition_in_literals() -> None:
    """The reason it is hand-built: SQLite takes the partial index only then."""
    query = Message.objects.filter(sql.messages_unsettled(), direction=Direction.OUTBOUND)
    statement, _ = query.query.sql_with_params()

    assert "IN ('queued', 'sending', 'unknown')" in statement
    if connection.vendor == "sqlite":  # PostgreSQL's planner picks by table size
        assert "message_unsettled_idx" in query.explain()
