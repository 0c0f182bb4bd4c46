"""Shift test helpers: a controllable clock, a supervisor and a second counselor, signed-in
clients, and a shift maker that goes through the service (the clock and the shift maker
live in ``support``, so the auto-response and offline report tests elsewhere use them too)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from openline.availability.tests.support import clock, make_shift  # noqa: F401


def _member(org: Any, email: str, role: str, name: str = "") -> Any:
    from openline.core.services import user_create

    return user_create(
        organization=org, email=email, role=role, password=f"{role}-pass-123", display_name=name
    ).user


@pytest.fixture
def sue(org: Any) -> Any:
    """A supervisor."""
    return _member(org, "sue@example.org", "supervisor", "Sue")


@pytest.fixture
def dora(org: Any) -> Any:
    """A second counselor."""
    return _member(org, "dora@example.org", "counselor", "Dora")


def _client(user: Any) -> Client:
    signed_in = Client()
    signed_in.force_login(user)
    return signed_in


@pytest.fixture
def alice_client(alice: Any) -> Client:
    return _client(alice)


@pytest.fixture
def bob_client(bob: Any) -> Client:
    return _client(bob)


@pytest.fixture
def sue_client(sue: Any) -> Client:
    return _client(sue)


@pytest.fixture
def charlie_client(charlie: Any) -> Client:
    return _client(charlie)
