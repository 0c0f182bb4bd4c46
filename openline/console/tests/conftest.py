"""Console test helpers: signed-in clients for alice and charlie, and texting in through
the real inbound pipeline (intake's InboundEvent, then processing); the shift tests' clock
and shift maker for the offline messages report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from openline.availability.tests.support import clock, make_shift  # noqa: F401
from openline.messaging.models import Conversation, Message

PERSON = "+12025550187"


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
def text_in(text_in: Callable[..., Message], sandbox_number: Any) -> TextIn:
    """The shared ``text_in`` (root conftest) shaped for console tests: text ``body`` from
    ``from_number`` to ``number`` (default: the sandbox number); returns the conversation."""

    def send(body: str, *, from_number: str = PERSON, number: Any = None) -> Conversation:
        return text_in(number or sandbox_number, from_number, body).conversation

    return send


@pytest.fixture
def conversation(text_in: TextIn) -> Conversation:
    return text_in("Hi, is anyone there? I need to talk to someone.")


def _client_for(user: Any) -> Client:
    signed_in = Client()
    signed_in.force_login(user)
    return signed_in


@pytest.fixture
def bob_client(bob: Any) -> Client:
    return _client_for(bob)


@pytest.fixture
def dora_client(dora: Any) -> Client:
    return _client_for(dora)


@pytest.fixture
def sue_client(sue: Any) -> Client:
    return _client_for(sue)
