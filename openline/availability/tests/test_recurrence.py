"""Expanding shifts: local wall-clock hours across daylight-saving changes in New York and
London, overnight shifts, times in the gap and the overlap, cancelled dates, rule checks."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from openline.availability.models import Shift
from openline.availability.recurrence import bounds, expand, find, validate_rrule
from openline.availability.tests.support import utc

NEW_YORK = "America/New_York"
LONDON = "Europe/London"
WEEKDAYS = "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"


def _shift(tz: str, day: date, start: time, minutes: int, rrule: str = "", **extra) -> Shift:
    return Shift(
        pk=1,
        timezone=tz,
        start_date=day,
        start_time=start,
        duration_minutes=minutes,
        rrule=rrule,
        **extra,
    )


def _local(occurrences, tz: str) -> list[tuple[str, str]]:
    zone = ZoneInfo(tz)
    return [
        (o.start.astimezone(zone).strftime("%a %d %H:%M"), o.end.astimezone(zone).strftime("%H:%M"))
        for o in occurrences
    ]


def test_weekday_shift_keeps_nine_to_five_across_new_york_spring_forward():
    shift = _shift(NEW_YORK, date(2025, 3, 3), time(9), 8 * 60, WEEKDAYS)
    found = expand(shift, utc(2025, 3, 7), utc(2025, 3, 11))
    assert _local(found, NEW_YORK) == [("Fri 07 09:00", "17:00"), ("Mon 10 09:00", "17:00")]
    # The same local hours are an hour earlier in UTC once daylight time starts (9 March).
    assert [o.start for o in found] == [utc(2025, 3, 7, 14), utc(2025, 3, 10, 13)]
    assert [o.end for o in found] == [utc(2025, 3, 7, 22), utc(2025, 3, 10, 21)]


def test_weekday_shift_keeps_nine_to_five_across_new_york_fall_back():
    shift = _shift(NEW_YORK, date(2025, 10, 1), time(9), 8 * 60, WEEKDAYS)
    found = expand(shift, utc(2025, 10, 31), utc(2025, 11, 4))
    assert _local(found, NEW_YORK) == [("Fri 31 09:00", "17:00"), ("Mon 03 09:00", "17:00")]
    assert [o.start for o in found] == [utc(2025, 10, 31, 13), utc(2025, 11, 3, 14)]


@pytest.mark.parametrize(
    "day, expected_utc_hours",
    [
        (date(2025, 3, 29), [9, 8]),  # BST starts Sunday 30 March
        (date(2025, 10, 25), [8, 9]),  # and ends Sunday 26 October
    ],
)
def test_daily_shift_in_london_stays_at_nine_local(day, expected_utc_hours):
    shift = _shift(LONDON, date(2025, 1, 1), time(9), 4 * 60, "FREQ=DAILY")
    start = utc(day.year, day.month, day.day)
    found = expand(shift, start, utc(day.year, day.month, day.day + 2))
    assert [o.start.hour for o in found] == expected_utc_hours
    assert _local(found, LONDON)[0][0].endswith("09:00")
    assert {end for _, end in _local(found, LONDON)} == {"13:00"}


def test_overnight_shift_ends_at_the_same_local_time_so_its_length_changes():
    shift = _shift(NEW_YORK, date(2025, 3, 1), time(22), 8 * 60, "FREQ=DAILY")
    spring = expand(shift, utc(2025, 3, 9, 3), utc(2025, 3, 9, 4))
    assert _local(spring, NEW_YORK) == [("Sat 08 22:00", "06:00")]
    assert spring[0].end - spring[0].start == utc(2025, 1, 1, 7) - utc(2025, 1, 1)  # 7 hours
    autumn = expand(shift, utc(2025, 11, 2, 3), utc(2025, 11, 2, 4))
    assert _local(autumn, NEW_YORK) == [("Sat 01 22:00", "06:00")]
    assert autumn[0].end - autumn[0].start == utc(2025, 1, 1, 9) - utc(2025, 1, 1)  # 9 hours


def test_start_in_the_spring_gap_moves_forward_and_in_the_autumn_overlap_is_the_first():
    gap = _shift(NEW_YORK, date(2025, 3, 8), time(2, 30), 60, "FREQ=DAILY;COUNT=3")
    assert _local(expand(gap, utc(2025, 3, 8), utc(2025, 3, 11)), NEW_YORK) == [
        ("Sat 08 02:30", "03:30"),
        ("Sun 09 03:30", "03:30"),  # 02:30 does not exist that night; nor does the hour
        ("Mon 10 02:30", "03:30"),
    ]
    overlap = _shift(NEW_YORK, date(2025, 11, 2), time(1, 30), 60)
    (only,) = expand(overlap, utc(2025, 11, 2), utc(2025, 11, 3))
    assert only.start == utc(2025, 11, 2, 5, 30)  # 01:30 EDT, the first of the two


def test_window_takes_occurrences_that_overlap_it_and_not_those_that_touch_it():
    shift = _shift("UTC", date(2025, 3, 3), time(9), 8 * 60, "FREQ=DAILY")
    assert [o.start for o in expand(shift, utc(2025, 3, 4, 16), utc(2025, 3, 4, 18))] == [
        utc(2025, 3, 4, 9)
    ]
    assert expand(shift, utc(2025, 3, 4, 17), utc(2025, 3, 5, 9)) == []


def test_overlapping_shifts_each_keep_their_occurrences():
    from openline.availability.recurrence import expand_all

    day = _shift("UTC", date(2025, 3, 3), time(9), 8 * 60, "FREQ=DAILY")
    evening = Shift(
        pk=2,
        timezone="UTC",
        start_date=date(2025, 3, 3),
        start_time=time(12),
        duration_minutes=8 * 60,
        rrule="FREQ=DAILY",
    )
    found = expand_all([evening, day], utc(2025, 3, 3, 13), utc(2025, 3, 3, 14))
    assert [(o.shift.pk, o.start.hour) for o in found] == [(1, 9), (2, 12)]


def test_cancelled_date_is_left_out():
    shift = _shift(
        NEW_YORK, date(2025, 3, 3), time(9), 60, WEEKDAYS, exdates=["2025-03-11T09:00:00"]
    )
    found = expand(shift, utc(2025, 3, 10), utc(2025, 3, 13))
    assert _local(found, NEW_YORK) == [("Mon 10 09:00", "10:00"), ("Wed 12 09:00", "10:00")]


def test_find_matches_only_an_exact_occurrence_start():
    shift = _shift(NEW_YORK, date(2025, 3, 3), time(9), 60, WEEKDAYS)
    assert find(shift, utc(2025, 3, 10, 13)) is not None
    assert find(shift, utc(2025, 3, 10, 14)) is None  # 10:00 local, not a start
    assert find(shift, utc(2025, 3, 8, 14)) is None  # a Saturday


def test_monthly_rules_work_too():
    shift = _shift(NEW_YORK, date(2025, 1, 1), time(18), 120, "FREQ=MONTHLY;BYDAY=2TU;COUNT=3")
    found = expand(shift, utc(2025, 1, 1), utc(2025, 12, 31))
    assert [o.start.astimezone(ZoneInfo(NEW_YORK)).day for o in found] == [14, 11, 11]


def test_bounds_of_finite_and_endless_rules():
    finite = _shift(NEW_YORK, date(2025, 3, 3), time(9), 60, "FREQ=DAILY;COUNT=10")
    assert bounds(finite) == (utc(2025, 3, 3, 14), utc(2025, 3, 12, 14))
    endless = _shift(NEW_YORK, date(2025, 3, 3), time(9), 60, "FREQ=DAILY")
    assert bounds(endless) == (utc(2025, 3, 3, 14), None)
    one_off = _shift(NEW_YORK, date(2025, 3, 3), time(9), 60)
    assert bounds(one_off) == (utc(2025, 3, 3, 14), utc(2025, 3, 3, 15))
    late_start = _shift("UTC", date(2025, 3, 4), time(9), 60, "FREQ=WEEKLY;BYDAY=MO;COUNT=2")
    assert bounds(late_start) == (utc(2025, 3, 10, 9), utc(2025, 3, 17, 10))  # first Monday


def test_rule_is_normalized():
    dtstart = datetime(2025, 3, 3, 9)
    assert validate_rrule("rrule:freq=weekly;byday=mo,we", dtstart=dtstart) == (
        "FREQ=WEEKLY;BYDAY=MO,WE"
    )
    assert validate_rrule("  ", dtstart=dtstart) == ""


@pytest.mark.parametrize(
    "rule, message",
    [
        ("FREQ=HOURLY", "daily, weekly"),
        ("FREQ=DAILY;BYHOUR=9,17", "BYHOUR"),
        ("FREQ=SOMETIMES", "not a valid"),
        ("DTSTART:20200101T000000\nRRULE:FREQ=DAILY", "one RRULE"),
        ("FREQ=DAILY;COUNT=3;UNTIL=20250401T000000", "not both"),
        ("FREQ=DAILY;UNTIL=20250401T000000Z", "local date and time"),
        ("FREQ=DAILY;COUNT=5000", "at most"),
        ("FREQ=DAILY;UNTIL=20250101T000000", "no occurrences"),
        ("FREQ=DAILY;UNTIL=20450101T000000", "ten years"),
        ("BYDAY=MO", "daily, weekly"),
    ],
)
def test_bad_rules_are_refused(rule, message):
    with pytest.raises(ValidationError) as refused:
        validate_rrule(rule, dtstart=datetime(2025, 3, 3, 9))
    assert message in " ".join(refused.value.messages)
