"""Helpers shared by the shift tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from openline.availability.services import shift_sign_up


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
