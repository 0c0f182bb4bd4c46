"""What every report query shares: the filters as a ``Q`` on conversations (or on a model
that reaches them), the days of the range, percentiles from an ordered slice, and how
durations read in a headline."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db.models import (
    DateField,
    F,
    FloatField,
    Func,
    IntegerField,
    Q,
    QuerySet,
)
from django.db.models.functions import ExtractHour, ExtractIsoWeekDay, TruncDate

from openline.messaging.models import Channel
from openline.reports.base import ReportFilters


def conversation_q(filters: ReportFilters, prefix: str = "", *, dated: bool = True) -> Q:
    """The conversations the filters select, as seen from a model ``prefix`` away
    ("conversation__" from a message). ``dated`` False leaves the date to the caller (a
    message counted on its own day). Staff-alert records are never conversations."""
    q = Q(**{f"{prefix}organization_id": filters.organization_id}) & ~Q(
        **{f"{prefix}channel": Channel.ALERT}
    )
    # Conversations born closed hold only texts the system sent (a broadcast, a reminder
    # nobody answered: messaging.services.outbound) or a lone STOP: nobody reached out.
    # They are closed as they are made, so their close is not after their start.
    q &= ~Q(**{f"{prefix}closed_at__lte": F(f"{prefix}created_at")})
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


class ElapsedSeconds(Func):
    """Seconds from ``earlier`` to ``later`` in the database's own arithmetic. Django's
    DurationField subtraction calls a Python function per row on SQLite, which made the
    year's percentiles and length buckets take seconds (bench/README.md, bench-reports)."""

    output_field = FloatField()
    arity = 2

    def as_sqlite(
        self, compiler: Any, connection: Any, **extra: Any
    ) -> tuple[str, tuple[Any, ...]]:
        later, earlier = (compiler.compile(e) for e in self.get_source_expressions())
        sql = f"((julianday({later[0]}) - julianday({earlier[0]})) * 86400.0)"
        return sql, (*later[1], *earlier[1])

    def as_sql(  # type: ignore[override]  # compiled from its two sources, no template
        self, compiler: Any, connection: Any, **extra: Any
    ) -> tuple[str, tuple[Any, ...]]:
        later, earlier = (compiler.compile(e) for e in self.get_source_expressions())
        return f"EXTRACT(EPOCH FROM ({later[0]} - {earlier[0]}))::float8", (*later[1], *earlier[1])


def duration(later: str, earlier: str) -> ElapsedSeconds:
    """Seconds from the field ``earlier`` to ``later`` (see ElapsedSeconds)."""
    return ElapsedSeconds(F(later), F(earlier))


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
        value = ordered.values_list("_value", flat=True)[k]
        # ElapsedSeconds gives seconds; headlines and tables read durations.
        values.append(timedelta(seconds=value) if isinstance(value, int | float) else value)
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


# --- local dates and hours, computed in the database ---------------------------------------
# Django's TruncDate/ExtractHour with ``tzinfo`` are native on PostgreSQL, but on SQLite they
# call a Python function per row (parse the text, convert the zone): about 10x slower than
# SQLite's own date()/strftime() (bench/README.md, `make bench-reports`). Between two
# daylight-saving transitions a zone's offset is constant, so on SQLite the column is shifted
# by the offset in force: a CASE over the range's transitions, exact for every row within
# [since, until) and in any zone (half-hour offsets and 30-minute DST shifts included).

_STEP = timedelta(days=1)  # no zone changes its offset twice in a day


def _offsets(filters: ReportFilters) -> tuple[int, list[tuple[datetime, int]]]:
    """The offset (seconds) in force at the range's start, and each (UTC instant, new
    offset) where it changes before the range's end."""
    start = filters.since.astimezone(UTC) - timedelta(days=1)
    end = filters.until.astimezone(UTC) + timedelta(days=1)

    def offset(at: datetime) -> int:
        value = at.astimezone(filters.tz).utcoffset()
        return int(value.total_seconds()) if value is not None else 0

    first = current = offset(start)
    changes: list[tuple[datetime, int]] = []
    at = start
    while at < end:
        later = at + _STEP
        if offset(later) != current:
            low, high = at, later  # bisect to the second the offset changes
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                low, high = (middle, high) if offset(middle) == current else (low, middle)
            current = offset(high)
            changes.append((high.replace(microsecond=0), current))
        at = later
    return first, changes


class _Local(Func):
    """A SQLite function of the column shifted to local time (``template`` with %(modifier)s
    where the offset goes); elsewhere the Django expression ``native``."""

    template = ""

    def __init__(self, field: str, filters: ReportFilters, native: Func, **extra: Any) -> None:
        super().__init__(F(field), **extra)
        self.filters = filters
        self.native = native

    def resolve_expression(self, *args: Any, **kwargs: Any) -> Any:
        resolved = super().resolve_expression(*args, **kwargs)
        resolved.native = self.native.resolve_expression(*args, **kwargs)
        return resolved

    def as_sql(  # type: ignore[override]  # every other database: Django's own function
        self, compiler: Any, connection: Any, **extra: Any
    ) -> Any:
        return compiler.compile(self.native)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        column, column_params = compiler.compile(self.source_expressions[0])
        first, changes = _offsets(self.filters)
        if not changes:
            modifier, params = "%s", [f"{first:+d} seconds"]
        else:
            whens, params = [], []
            previous = first
            for at, offset in changes:
                whens.append(f"WHEN {column} < %s THEN %s")
                params += [
                    *column_params,
                    at.strftime("%Y-%m-%d %H:%M:%S"),
                    f"{previous:+d} seconds",
                ]
                previous = offset
            modifier = f"CASE {' '.join(whens)} ELSE %s END"
            params.append(f"{previous:+d} seconds")
        # Whole seconds: SQLite's date arithmetic keeps milliseconds, so 23:59:59.9999
        # would round up into the next day.
        sql = self.template % {"column": f"substr({column}, 1, 19)", "modifier": modifier}
        return sql, (*column_params, *params)


class _LocalDate(_Local):
    template = "date(%(column)s, %(modifier)s)"
    output_field = DateField()


class _LocalHour(_Local):
    template = "CAST(strftime('%%%%H', %(column)s, %(modifier)s) AS INTEGER)"
    output_field = IntegerField()


class _LocalIsoWeekDay(_Local):
    # strftime's %w is 0 for Sunday; ISO counts Monday 1 to Sunday 7.
    template = "((CAST(strftime('%%%%w', %(column)s, %(modifier)s) AS INTEGER) + 6) %%%% 7 + 1)"
    output_field = IntegerField()


def local_date(field: str, filters: ReportFilters) -> Func:
    """``field``'s date in the organization's time zone (TruncDate with its tzinfo)."""
    return _LocalDate(field, filters, TruncDate(field, tzinfo=filters.tz))


def local_hour(field: str, filters: ReportFilters) -> Func:
    """``field``'s hour (0–23) in the organization's time zone."""
    return _LocalHour(field, filters, ExtractHour(field, tzinfo=filters.tz))


def local_iso_weekday(field: str, filters: ReportFilters) -> Func:
    """``field``'s ISO weekday (Monday 1 … Sunday 7) in the organization's time zone."""
    return _LocalIsoWeekDay(field, filters, ExtractIsoWeekDay(field, tzinfo=filters.tz))
