"""What every report query shares: the filters as a ``Q`` on conversations (or on a model
that reaches them), the days of the range, percentiles from an ordered slice, and how
durations read in a headline."""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any

from django.db.models import DurationField, ExpressionWrapper, F, Q, QuerySet
from django.db.models.expressions import CombinedExpression

from openline.messaging.models import Channel
from openline.reports.base import ReportFilters


def conversation_q(filters: ReportFilters, prefix: str = "", *, dated: bool = True) -> Q:
    """The conversations the filters select, as seen from a model ``prefix`` away
    ("conversation__" from a message). ``dated`` False leaves the date to the caller (a
    message counted on its own day). Staff-alert records are never conversations."""
    q = Q(**{f"{prefix}organization_id": filters.organization_id}) & ~Q(
        **{f"{prefix}channel": Channel.ALERT}
    )
    if dated:
        q &= Q(
            **{f"{prefix}created_at__gte": filters.since, f"{prefix}created_at__lt": filters.until}
        )
    if filters.number_id is not None:
        q &= Q(**{f"{prefix}number_id": filters.number_id})
    if filters.channel:
        q &= Q(**{f"{prefix}channel": filters.channel})
    return q


def in_range(filters: ReportFilters, field: str = "created_at") -> Q:
    return Q(**{f"{field}__gte": filters.since, f"{field}__lt": filters.until})


def days(filters: ReportFilters) -> list[date]:
    count = (filters.end - filters.start).days + 1
    return [filters.start + timedelta(days=n) for n in range(count)]


def duration(later: str, earlier: str) -> ExpressionWrapper[CombinedExpression]:
    return ExpressionWrapper(F(later) - F(earlier), output_field=DurationField())


def percentiles(
    queryset: QuerySet[Any], expression: Any, points: tuple[float, ...] = (0.5, 0.9)
) -> tuple[int, list[Any]]:
    """The nearest-rank percentiles of ``expression`` over ``queryset`` (rows where it is
    null must already be filtered out): one COUNT, then one ordered one-row slice per
    point, so the database never sends more than a row. Returns (n, values)."""
    ordered = queryset.annotate(_value=expression).order_by("_value")
    n = ordered.count()
    if not n:
        return 0, [None for _ in points]
    values = []
    for point in points:
        k = max(math.ceil(point * n) - 1, 0)
        values.append(ordered.values_list("_value", flat=True)[k])
    return n, values


def seconds(value: timedelta | None) -> int | None:
    return None if value is None else round(value.total_seconds())


def readable(value: timedelta | None) -> str:
    """ "45 s", "3 min", "1 h 20 min", "2 d 3 h"; "–" for none."""
    if value is None:
        return "–"
    total = round(value.total_seconds())
    if total < 60:
        return f"{total} s"
    minutes = total // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days_, hours = divmod(hours, 24)
    return f"{days_} d {hours} h" if hours else f"{days_} d"


def share(part: int, whole: int) -> str:
    return f"{part * 100 / whole:.0f}%" if whole else "–"


def column(rows: list[list[object]], index: int) -> list[int | float | None]:
    """One column of a report's table as a chart series (counts, seconds, or none)."""
    return [value if isinstance(value, int | float) else None for value in (r[index] for r in rows)]


def total(rows: list[list[object]], index: int) -> int:
    return sum(value for value in column(rows, index) if isinstance(value, int))
