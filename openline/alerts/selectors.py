"""Reads for the alert pages: the calculator's roster and the log of alerts sent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from openline.alerts.models import Alert, AlertKind
from openline.alerts.sweep import Roster, Step


@dataclass(frozen=True, slots=True)
class PlannedText:
    step: Step
    recipients: int
    total_so_far: int


def calculator(
    *, organization_id: int, number_id: int, plan: list[Step], at: datetime | None = None
) -> tuple[list[PlannedText], int, int]:
    """How many texts one unanswered conversation would produce with ``plan`` and the roster
    of ``at`` (now): each step with its recipients, and the people reached on shift and on
    call. Uses the sweep's own rules for who is reachable."""
    at = at or timezone.now()
    roster = Roster(at, [number_id], [organization_id])
    staff = len(roster.staff.get(number_id, []))
    oncall = len(roster.oncall.get(organization_id, []))
    rows, total = [], 0
    for step in plan:
        count = oncall if step.kind == AlertKind.ESCALATION else staff
        total += count
        rows.append(PlannedText(step, count, total))
    return rows, staff, oncall


def alert_log(*, organization_id: int, limit: int = 100) -> QuerySet[Alert]:
    return (
        Alert.objects.filter(organization_id=organization_id)
        .select_related("user", "message", "conversation__number")
        .order_by("-created_at", "-pk")[:limit]
    )
