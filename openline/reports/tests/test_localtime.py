"""Local dates, hours and weekdays computed in the database (reports.queries.local_*): the
same answers as Python's zoneinfo at every daylight-saving edge and local midnight, in
zones with whole-hour, half-hour and 30-minute-DST offsets, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db.models import Count

from openline.contacts.models import ConsentEvent, ConsentKind, ConsentSource
from openline.reports.base import ReportFilters
from openline.reports.queries import _offsets, local_date, local_hour, local_iso_weekday

ZONES = ["America/Chicago", "Asia/Kolkata", "Australia/Lord_Howe", "Europe/London", "UTC"]


def _filters(org: Any, zone: str) -> ReportFilters:
    return ReportFilters(
        organization_id=org.pk, start=date(2026, 1, 1), end=date(2026, 12, 31), tz=ZoneInfo(zone)
    )


def _instants(filters: ReportFilters) -> list[datetime]:
    """Each offset change and each local midnight of a few days, a second and a
    microsecond either side, and random instants over the year."""
    _, changes = _offsets(filters)
    edges = [at for at, _ in changes]
    for day in (date(2026, 1, 1), date(2026, 3, 8), date(2026, 7, 4), date(2026, 12, 31)):
        edges.append(datetime.combine(day, datetime.min.time(), tzinfo=filters.tz))
    instants = []
    for edge in edges:
        for delta in (-1_000_000, -1, 0, 1, 1_000_000):
            instants.append(edge + timedelta(microseconds=delta))
    rng = random.Random(7)
    since = filters.since.astimezone(UTC)
    instants += [since + timedelta(seconds=rng.randrange(365 * 86400)) for _ in range(60)]
    return [i for i in instants if filters.since <= i < filters.until]


@pytest.mark.django_db
@pytest.mark.parametrize("zone", ZONES)
def test_local_date_hour_and_weekday_match_zoneinfo_at_every_edge(org: Any, zone: str) -> None:
    filters = _filters(org, zone)
    instants = _instants(filters)
    events = ConsentEvent.objects.bulk_create(
        ConsentEvent(
            organization=org,
            phone=f"+1202555{n:04d}",
            kind=ConsentKind.OPT_IN,
            source=ConsentSource.STAFF,
            created_at=instant,
        )
        for n, instant in enumerate(instants)
    )
    found = {
        pk: (day, hour, weekday)
        for pk, day, hour, weekday in ConsentEvent.objects.filter(organization=org)
        .annotate(
            day=local_date("created_at", filters),
            hour=local_hour("created_at", filters),
            weekday=local_iso_weekday("created_at", filters),
        )
        .values_list("pk", "day", "hour", "weekday")
    }
    expected = {}
    for event in events:
        local = event.created_at.astimezone(filters.tz)
        expected[event.pk] = (local.date(), local.hour, local.isoweekday())
    assert found == expected


def test_offsets_find_the_two_chicago_changes_of_2026(org: Any) -> None:
    first, changes = _offsets(_filters(org, "America/Chicago"))
    assert first == -6 * 3600
    assert changes == [
        (datetime(2026, 3, 8, 8, tzinfo=UTC), -5 * 3600),
        (datetime(2026, 11, 1, 7, tzinfo=UTC), -6 * 3600),
    ]


@pytest.mark.django_db
def test_local_dates_group_in_one_query(org: Any, django_assert_num_queries: Any) -> None:
    filters = _filters(org, "America/Chicago")
    ConsentEvent.objects.bulk_create(
        ConsentEvent(
            organization=org,
            phone=f"+1202555{n:04d}",
            kind=ConsentKind.OPT_IN,
            source=ConsentSource.STAFF,
            created_at=datetime(2026, 3, 8, 5, 59, tzinfo=UTC) + timedelta(hours=n),
        )
        for n in range(3)  # 23:59 on the 7th, 00:59 and 01:59 on the 8th, Chicago time
    )
    with django_assert_num_queries(1):
        per_day = dict(
            ConsentEvent.objects.filter(organization=org)
            .annotate(day=local_date("created_at", filters))
            .values("day")
            .annotate(n=Count("id"))
            .values_list("day", "n")
        )
    assert per_day == {date(2026, 3, 7): 1, date(2026, 3, 8): 2}
