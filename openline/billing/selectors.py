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
