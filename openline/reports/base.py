"""What every report is: a function of the filters (organization, dates in its time zone,
inbox, channel) that returns a table, and the chart drawn from that table. The page, the
CSV downloads, the monthly summary and ``make bench-reports`` all go through ``REPORTS``.

Reports are computed with aggregate queries in the database (COUNT, GROUP BY, window-free
percentiles from ordered slices), never by looping over conversations in Python."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class ReportFilters:
    organization_id: int
    start: date  # first day, inclusive, in the organization's time zone
    end: date  # last day, inclusive
    tz: ZoneInfo
    number_id: int | None = None  # one inbox, or all
    channel: str | None = None  # "sms", "chat", "voice", or all
    # The form field report's choice: a form of the organization and one of its field keys.
    form_id: int | None = None
    field_key: str = ""

    @property
    def since(self) -> datetime:
        """The start as an aware datetime (midnight where the organization is)."""
        return datetime.combine(self.start, time.min, tzinfo=self.tz)

    @property
    def until(self) -> datetime:
        """The end, exclusive: midnight after the last day."""
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=self.tz)


@dataclass(slots=True)
class Chart:
    """What Chart.js draws: ``kind`` is "bar", "line", "doughnut" or "heatmap" (hour of
    week, drawn as a table with shaded cells), ``labels`` the x axis (or slices), and each
    series a name with one value per label."""

    kind: str
    labels: list[str]
    series: list[tuple[str, list[float | int | None]]]
    stacked: bool = False


@dataclass(slots=True)
class Report:
    key: str
    title: str
    columns: list[str]
    rows: list[list[object]]
    chart: Chart | None = None
    # Headline figures shown above the chart ("Answered": 412, "p50 to assume": "3 min").
    summary: list[tuple[str, object]] = field(default_factory=list)
    note: str = ""  # what the numbers count, in a sentence


ReportFunction = Callable[[ReportFilters], Report]

# key -> function; filled by openline.reports.selectors (imported by the app's ready()).
REPORTS: dict[str, ReportFunction] = {}


def report(key: str) -> Callable[[ReportFunction], ReportFunction]:
    """Register a report under ``key`` (the order of registration is the page's order)."""

    def register(fn: ReportFunction) -> ReportFunction:
        if key in REPORTS:
            raise ValueError(f"two reports are named {key}")
        REPORTS[key] = fn
        return fn

    return register
