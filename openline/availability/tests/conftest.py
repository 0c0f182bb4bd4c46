"""Shift test helpers: a controllable clock, a supervisor and a second counselor, signed-in
clients, and a shift maker that goes through the service."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time
from typing import Any

import pytest
from django.test import Client

from conftest import Clock
from openline.availability.services import shift_create

START = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)  # a Monday; 06:00 in Chicago


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    from django.utils import timezone

    fixed = Clock(START)
    monkeypatch.setattr(timezone, "now", fixed)
    return fixed


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


MakeShift = Callable[..., Any]


@pytest.fixture
def make_shift(org: Any, alice: Any, sandbox_number: Any) -> MakeShift:
    """A shift in ``org`` (by alice, the admin) for the sandbox inbox unless told."""

    def make(
        *,
        day: date = date(2025, 3, 3),
        start: time = time(9, 0),
        minutes: int = 8 * 60,
        rrule: str = "",
        kind: str = "normal",
        places: int = 2,
        number: Any = "default",
        organization: Any = None,
        actor: Any = None,
        title: str = "",
    ) -> Any:
        return shift_create(
            organization_id=(organization or org).pk,
            actor_id=(actor or alice).pk,
            number_id=(sandbox_number.pk if number == "default" else number and number.pk),
            kind=kind,
            start_date=day,
            start_time=start,
            duration_minutes=minutes,
            places=places,
            rrule=rrule,
            title=title,
        )

    return make
