"""Expanding shifts into occurrences: dateutil does the recurrence, this module only keeps
it in local wall-clock time.

A rule is expanded over *naive local* datetimes and each occurrence is then placed in the
shift's time zone, so a 09:00–17:00 shift is 09:00–17:00 local on both sides of a
daylight-saving change (its length in real hours changes instead). The end is wall-clock
too: start + duration in local time. A start inside the spring-forward gap (02:30 on the
night clocks jump from 02:00 to 03:00) falls back on the offset before the change, which
puts it at 03:30; an ambiguous start in the autumn is the first (daylight) one (PEP 495,
fold=0)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import icalendar
from dateutil.rrule import rrule, rruleset, rrulestr
from django.core.exceptions import ValidationError

if TYPE_CHECKING:
    from openline.availability.models import Shift

ALLOWED_FREQS = {"YEARLY", "MONTHLY", "WEEKLY", "DAILY"}
# The shift's own start time places each occurrence; sub-day parts would add more.
REFUSED_PARTS = {"BYHOUR", "BYMINUTE", "BYSECOND", "DTSTART"}
MAX_COUNT = 1000
MAX_SPAN = timedelta(days=3660)  # a rule's UNTIL at most ten years after its start
# Local and UTC clocks differ by at most a day; expansion windows are widened by this and
# then cut exactly.
SLACK = timedelta(days=1)


@dataclass(frozen=True)
class Occurrence:
    shift: Shift
    start: datetime  # UTC
    end: datetime  # UTC

    @property
    def key(self) -> tuple[int, datetime]:
        return (self.shift.pk, self.start)


def to_utc(local: datetime, tz: ZoneInfo) -> datetime:
    """A naive local wall-clock time in ``tz`` as an aware UTC datetime (fold=0)."""
    return local.replace(tzinfo=tz).astimezone(UTC)


def to_local(moment: datetime, tz: ZoneInfo) -> datetime:
    return moment.astimezone(tz).replace(tzinfo=None)


def normalize_rrule(value: str) -> str:
    value = value.strip()
    if value.upper().startswith("RRULE:"):
        value = value[len("RRULE:") :]
    return value.upper()


def validate_rrule(value: str, *, dtstart: datetime) -> str:
    """The normalized rule, or ValidationError. ``dtstart`` is naive local time."""
    value = normalize_rrule(value)
    if not value:
        return ""
    if any(c.isspace() for c in value) or ":" in value:
        raise ValidationError("give one RRULE value, like FREQ=WEEKLY;BYDAY=MO,WE")
    try:
        _check_parts(dict(icalendar.vRecur.from_ical(value)), dtstart)
        rule = rrulestr(value, dtstart=dtstart)
    except (ValueError, TypeError) as exc:
        raise ValidationError(f"not a valid recurrence rule: {exc}") from exc
    if not isinstance(rule, rrule) or rule.after(dtstart, inc=True) is None:
        raise ValidationError("the recurrence rule has no occurrences")
    return value


def _check_parts(parts: dict[str, list[object]], dtstart: datetime) -> None:
    freq = [str(f) for f in parts.get("FREQ", [])]
    if len(freq) != 1 or freq[0] not in ALLOWED_FREQS:
        raise ValidationError("shifts repeat daily, weekly, monthly or yearly")
    if REFUSED_PARTS & set(parts):
        raise ValidationError("the shift's start time sets the hour; leave BYHOUR etc. out")
    if "COUNT" in parts and "UNTIL" in parts:
        raise ValidationError("a rule ends after a count or on a date, not both")
    count = parts.get("COUNT", [0])[0]
    if isinstance(count, int) and not 0 <= count <= MAX_COUNT:
        raise ValidationError(f"at most {MAX_COUNT} occurrences")
    for until in parts.get("UNTIL", []):
        if not isinstance(until, datetime) or until.tzinfo is not None:
            raise ValidationError("UNTIL must be a local date and time, like 20250630T235959")
        if until - dtstart > MAX_SPAN:
            raise ValidationError("a repeating shift can end at most ten years ahead")


def local_start(shift: Shift) -> datetime:
    return datetime.combine(shift.start_date, shift.start_time)


def rule_set(shift: Shift) -> rruleset:
    """The shift's occurrences as local naive start times (cached on the instance)."""
    cached: rruleset | None = getattr(shift, "_rule_set", None)
    if cached is not None:
        return cached
    dtstart = local_start(shift)
    rules = rruleset()
    if shift.rrule:
        rules.rrule(rrulestr(shift.rrule, dtstart=dtstart))
    else:
        rules.rdate(dtstart)
    for exdate in shift.exdates:
        rules.exdate(datetime.fromisoformat(exdate))
    shift._rule_set = rules  # type: ignore[attr-defined]
    return rules


def _occurrence(shift: Shift, start: datetime, tz: ZoneInfo) -> Occurrence:
    end = start + timedelta(minutes=shift.duration_minutes)
    return Occurrence(shift=shift, start=to_utc(start, tz), end=to_utc(end, tz))


def expand(shift: Shift, start: datetime, end: datetime) -> list[Occurrence]:
    """The shift's occurrences that overlap [start, end) (aware datetimes)."""
    tz = ZoneInfo(shift.timezone)
    duration = timedelta(minutes=shift.duration_minutes)
    low = to_local(start, tz) - duration - SLACK
    high = to_local(end, tz) + SLACK
    found = (_occurrence(shift, s, tz) for s in rule_set(shift).between(low, high, inc=True))
    return [o for o in found if o.start < end and o.end > start]


def expand_all(shifts: Iterable[Shift], start: datetime, end: datetime) -> list[Occurrence]:
    found = [o for shift in shifts for o in expand(shift, start, end)]
    return sorted(found, key=lambda o: (o.start, o.end, o.shift.pk))


def find(shift: Shift, start: datetime) -> Occurrence | None:
    """The occurrence of ``shift`` that starts at ``start`` (UTC), if there is one."""
    for occurrence in expand(shift, start, start + timedelta(seconds=1)):
        if occurrence.start == start:
            return occurrence
    return None


def bounds(shift: Shift) -> tuple[datetime, datetime | None]:
    """UTC start of the first occurrence and end of the last (None: no end). Precondition:
    the rule has been validated (finite rules are bounded by MAX_COUNT / MAX_SPAN)."""
    tz = ZoneInfo(shift.timezone)
    rules = rule_set(shift)
    first = next(iter(rules), None)
    if first is None:
        raise ValidationError("the shift has no occurrences")
    if shift.rrule and not {"COUNT", "UNTIL"} & set(icalendar.vRecur.from_ical(shift.rrule)):
        return _occurrence(shift, first, tz).start, None
    last = rules[-1]
    return _occurrence(shift, first, tz).start, _occurrence(shift, last, tz).end


def exdate_key(shift: Shift, start: datetime) -> str:
    """How a cancelled occurrence is remembered: its local naive start (matches rrule)."""
    tz = ZoneInfo(shift.timezone)
    for local in rule_set(shift).between(
        to_local(start, tz) - SLACK, to_local(start, tz) + SLACK, inc=True
    ):
        if to_utc(local, tz) == start:
            return local.isoformat()
    raise ValidationError("that date is not an occurrence of the shift")


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def local_day_bounds(day: date, days: int, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """UTC instants of local midnight at the start of ``day`` and ``days`` later."""
    start = datetime.combine(day, time.min)
    return to_utc(start, tz), to_utc(start + timedelta(days=days), tz)
