"""Helpers shared by the shift tests, and by the tests of what reads shifts from other apps
(auto-responses, the offline report): a controllable clock and a shift maker (fixtures:
import them into a test module or conftest) and sign-ups."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time
from typing import Any

import pytest

from conftest import Clock
from openline.availability.services import shift_create, shift_sign_up

START = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)  # a Monday; 06:00 in Chicago


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    from django.utils import timezone

    fixed = Clock(START)
    monkeypatch.setattr(timezone, "now", fixed)
    return fixed


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


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def sign_up(shift: Any, user: Any, start: datetime, actor: Any = None) -> Any:
    return shift_sign_up(
        organization_id=shift.organization_id,
        actor_id=(actor or user).pk,
        shift_id=shift.pk,
        occurrence_start=start,
        user_id=user.pk,
    )
