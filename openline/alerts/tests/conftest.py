"""Alert test helpers: a controllable clock, people on shift with confirmed alert phones,
and the code texted to a phone (read back from the message store)."""

from __future__ import annotations

import re
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
    inbox unless told), with a confirmed alert phone (unless ``phone=False``) and, unless
    told not to, their permission."""
    from openline.availability.services import shift_create, shift_sign_up

    phones = iter(f"+1312555{n:04d}" for n in range(100, 200))

    def put(
        user: Any,
        *,
        kind: str = "normal",
        permit: bool = True,
        number: Any = None,
        phone: bool = True,
    ) -> str:
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
        if not phone:  # they will type it on My alerts themselves
            return ""
        mobile = next(phones)
        give_confirmed_phone(org, user, mobile, permit=permit)
        return mobile

    return put


def give_confirmed_phone(org: Any, user: Any, phone: str, *, permit: bool = True) -> Any:
    """``user``'s alert phone as if they had typed the code texted to it (no code text is
    sent, so tests that count alert texts count only alerts), with their permission in the
    ledger unless told not to: what ``alert_profile_confirm`` leaves behind."""
    from django.utils import timezone

    from openline.alerts.models import AlertProfile
    from openline.alerts.services import CONFIRMED_TEXT, PERMIT_TEXT
    from openline.contacts.services.consent import consent_record

    profile, _ = AlertProfile.objects.update_or_create(
        organization=org,
        user=user,
        defaults={
            "mobile": phone,
            "confirmed_phone": phone,
            "confirmed_at": timezone.now(),
            "new_conversation_sms": True,
        },
    )
    if permit:
        consent_record(
            organization_id=org.pk,
            phone=phone,
            kind="opt_in",
            source="staff",
            evidence=PERMIT_TEXT.format(org=org.name) + CONFIRMED_TEXT,
            actor_id=user.pk,
        )
    return profile


CODE = re.compile(r"your code to confirm alerts for .+ is (\d{6})\.")


def texted_codes(phone: str) -> list[str]:
    """The confirmation codes texted to ``phone``, oldest first (from the stored texts)."""
    from openline.messaging.models import Message, MessageKind

    bodies = Message.objects.filter(
        kind=MessageKind.ALERT, conversation__contact__phone=phone
    ).order_by("created_at", "pk")
    found = (CODE.search(body) for body in bodies.values_list("body", flat=True))
    return [match.group(1) for match in found if match]
