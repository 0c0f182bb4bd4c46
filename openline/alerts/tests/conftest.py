"""Alert test helpers: a controllable clock and people on shift with alert phones."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from conftest import Clock

START = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)  # a Monday, 09:00 in Chicago


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    from django.utils import timezone

    fixed = Clock(START)
    monkeypatch.setattr(timezone, "now", fixed)
    return fixed


OnShift = Callable[..., Any]


@pytest.fixture
def on_shift(clock: Clock, org: Any, alice: Any, sandbox_number: Any) -> OnShift:
    """Put ``user`` on a shift covering the next 8 hours (normal shifts of the sandbox
    inbox unless told), with an alert phone and, unless told not to, their permission."""
    from openline.alerts.services import alert_profile_set
    from openline.availability.services import shift_create, shift_sign_up

    phones = iter(f"+1312555{n:04d}" for n in range(100, 200))

    def put(user: Any, *, kind: str = "normal", permit: bool = True, number: Any = None) -> str:
        local = (clock() - timedelta(minutes=30)).astimezone(ZoneInfo(org.timezone))
        shift = shift_create(
            organization_id=org.pk,
            actor_id=alice.pk,
            number_id=None if kind == "oncall" else (number or sandbox_number).pk,
            kind=kind,
            start_date=local.date(),
            start_time=local.time().replace(second=0, microsecond=0),
            duration_minutes=8 * 60,
            places=5,
        )
        shift_sign_up(
            organization_id=org.pk,
            actor_id=alice.pk,
            shift_id=shift.pk,
            occurrence_start=shift.first_start,
            user_id=user.pk,
        )
        phone = next(phones)
        alert_profile_set(
            organization_id=org.pk,
            organization_name=org.name,
            user_id=user.pk,
            mobile=phone,
            permit=permit,
            new_conversation_sms=True,
        )
        return phone

    return put
