"""Console test helpers: signed-in clients for alice and charlie, and texting in through
the real inbound pipeline (intake's InboundEvent, then processing)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from openline.messaging.models import Conversation, InboundEvent, Message

PERSON = "+12025550187"

_ids = itertools.count(1)


@pytest.fixture
def alice_client(client: Client, alice: Any) -> Client:
    client.force_login(alice)
    return client


@pytest.fixture
def charlie_client(charlie: Any) -> Client:
    other = Client()
    other.force_login(charlie)
    return other


TextIn = Callable[..., Conversation]


@pytest.fixture
def text_in(pipeline: Any, sandbox_number: Any) -> TextIn:
    """Text ``body`` from ``from_number`` to ``number`` and run the pipeline; returns the
    conversation the message landed in."""

    def send(body: str, *, from_number: str = PERSON, number: Any = None) -> Conversation:
        to = number or sandbox_number
        event = pipeline.run(
            lambda: InboundEvent.objects.create(
                organization_id=to.organization_id,
                number=to,
                provider="sandbox",
                provider_message_id=f"SBIN{next(_ids):08d}",
                from_number=from_number,
                body=body,
                received_at=timezone.now(),
            )
        )
        return Message.objects.select_related("conversation").get(inbound_event=event).conversation

    return send


@pytest.fixture
def conversation(text_in: TextIn) -> Conversation:
    return text_in("Hi, is anyone there? I need to talk to someone.")
