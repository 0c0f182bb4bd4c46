"""Hand-built rows with known answers for the reports (straight into the tables: a report
reads what is stored, whichever service stored it)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from openline.contacts.models import Contact
from openline.messaging.models import Conversation, Direction, Message, MessageKind
from openline.messaging.services.outbound import conversation_touch_sent
from openline.reports.base import ReportFilters

CHICAGO = ZoneInfo("America/Chicago")
_phones = itertools.count(1000)


def at(text: str, zone: ZoneInfo = CHICAGO) -> datetime:
    """A local time in ``zone`` ("2026-11-03 23:30")."""
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def filters_for(organization: Any, start: str, end: str, **more: Any) -> ReportFilters:
    return ReportFilters(
        organization_id=organization.pk,
        start=date.fromisoformat(start),
        end=date.fromisoformat(end),
        tz=ZoneInfo(organization.timezone),
        **more,
    )


def conversation_at(
    organization: Any, number: Any, created: datetime, **fields: Any
) -> Conversation:
    contact = Contact.objects.create(organization=organization, phone=f"+1202555{next(_phones)}")
    fields.setdefault("last_message_at", created)
    conversation = Conversation.objects.create(
        organization=organization, number=number, contact=contact, **fields
    )
    Conversation.objects.filter(pk=conversation.pk).update(created_at=created)
    conversation.created_at = created
    return conversation


def message_at(
    conversation: Conversation,
    created: datetime,
    *,
    direction: str = Direction.INBOUND,
    kind: str = MessageKind.PERSONAL,
    **fields: Any,
) -> Message:
    message = Message.objects.create(
        organization_id=conversation.organization_id,
        conversation=conversation,
        direction=direction,
        kind=kind,
        body="hello",
        created_at=created,
        **{"status": "received" if direction == Direction.INBOUND else "sent", **fields},
    )
    if direction == Direction.OUTBOUND:  # as the send service records it
        conversation_touch_sent(conversation_id=conversation.pk, at=created, kind=kind)
    return message


@pytest.fixture
def make_conversation(org: Any, sandbox_number: Any) -> Callable[..., Conversation]:
    def make(created: datetime, number: Any = None, **fields: Any) -> Conversation:
        return conversation_at(org, number or sandbox_number, created, **fields)

    return make


@pytest.fixture
def second_number(org: Any) -> Any:
    from openline.providers.services import number_add

    return number_add(organization=org, provider="sandbox", e164="+12025550143", name="Youth line")


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)
