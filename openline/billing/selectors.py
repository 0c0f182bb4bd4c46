"""Reading the credit ledger: an organization's entries and its spending by day and purpose,
summed by the database."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from openline.billing.models import CreditEntry, CreditKind, CreditPurpose


def credit_entries(*, organization_id: int) -> QuerySet[CreditEntry]:
    """Newest first, with who recorded them."""
    return (
        CreditEntry.objects.filter(organization_id=organization_id)
        .select_related("actor")
        .order_by("-created_at", "-id")
    )


@dataclass(frozen=True)
class UsageDay:
    day: date
    by_purpose: dict[str, int]  # purpose label -> credits spent (refunds taken off)
    total: int


def credit_usage_by_day(*, organization_id: int, time_zone: str, days: int = 30) -> list[UsageDay]:
    """Credits spent per day (in the organization's time zone) and purpose, newest day
    first, over the last ``days`` days; days without spending are left out."""
    tz = zoneinfo.ZoneInfo(time_zone)
    since = timezone.now() - timedelta(days=days)
    rows = (
        CreditEntry.objects.filter(
            organization_id=organization_id,
            kind__in=(CreditKind.DEBIT, CreditKind.REFUND),
            created_at__gte=since,
        )
        .annotate(day=TruncDate("created_at", tzinfo=tz))
        .values_list("day", "purpose", "kind")
        .annotate(total=Sum("credits"))
    )
    labels = dict(CreditPurpose.choices)
    spent: dict[date, dict[str, int]] = {}
    for day, purpose, kind, total in rows:
        sign = -1 if kind == CreditKind.REFUND else 1
        label = labels.get(purpose, "Other")
        by_purpose = spent.setdefault(day, {})
        by_purpose[label] = by_purpose.get(label, 0) + sign * total
    return [
        UsageDay(day, by_purpose, sum(by_purpose.values()))
        for day, by_purpose in sorted(spent.items(), reverse=True)
    ]


@dataclass(frozen=True)
class ChartColumn:
    day: date
    total: int
    x: float
    bars: list[tuple[str, str, int, float, float]]  # (purpose, label, credits, y, height)


@dataclass(frozen=True)
class UsageChart:
    """Credits spent per day as stacked columns by purpose, oldest day left, on a
    ``width`` x ``height`` SVG (the page's content policy allows no inline styles)."""

    columns: list[ChartColumn]
    totals: list[tuple[str, str, int]]  # (purpose, label, credits) over the period
    peak: int
    width: int = 600
    height: int = 160

    @property
    def column_width(self) -> float:
        return self.width / max(len(self.columns), 1) * 0.8


def credit_usage_chart(*, usage: list[UsageDay], time_zone: str, days: int = 30) -> UsageChart:
    """Every one of the last ``days`` days up to today in ``time_zone`` (an empty column
    for a day without spending) from ``credit_usage_by_day``; a day whose refunds exceed
    its debits draws nothing."""
    by_day = {item.day: item for item in usage}
    keys = {label: value for value, label in CreditPurpose.choices}
    today = timezone.localdate(timezone=zoneinfo.ZoneInfo(time_zone))
    span = [today - timedelta(days=n) for n in range(days - 1, -1, -1)]
    peak = max((max(by_day[day].total, 0) for day in span if day in by_day), default=0)
    width, height = 600, 160
    step = width / days
    columns, totals = [], dict.fromkeys(keys, 0)
    for index, day in enumerate(span):
        item = by_day.get(day)
        bars, y = [], float(height)
        for label, credits in sorted((item.by_purpose if item else {}).items()):
            totals[label] = totals.get(label, 0) + credits
            if credits <= 0 or not peak:
                continue
            size = height * credits / peak
            y -= size
            top = round(max(y, 0.0), 2) + 0.0  # never -0.0
            bars.append((keys.get(label, "other"), label, credits, top, round(size, 2)))
        columns.append(ChartColumn(day, item.total if item else 0, round(index * step, 2), bars))
    named = [(keys.get(label, "other"), label, n) for label, n in totals.items() if n]
    return UsageChart(columns=columns, totals=named, peak=peak, width=width, height=height)
