"""A person's shifts as an iCalendar feed, built with the icalendar package.

Only the owner's own sign-ups, each with the inbox and kind: no names of anyone else, no
conversation data. Times are in UTC, which every calendar program converts."""

from __future__ import annotations

import icalendar

from openline.availability.models import CalendarFeed, ShiftSignUp

PRODID = "-//OpenLine//Shifts//EN"


def summary(signup: ShiftSignUp) -> str:
    shift = signup.shift
    where = shift.number.label if shift.number else "All inboxes"
    text = f"{where} — {shift.get_kind_display()} shift"
    return f"{text}: {shift.title}" if shift.title else text


def uid(signup: ShiftSignUp) -> str:
    """Stable per occurrence, so a calendar updates an event instead of duplicating it."""
    return f"shift-{signup.shift_id}-{signup.occurrence_start:%Y%m%dT%H%M%SZ}@openline"


def calendar_bytes(feed: CalendarFeed, signups: list[ShiftSignUp]) -> bytes:
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", f"{feed.organization.name}: my shifts")
    for signup in signups:
        event = icalendar.Event()
        event.add("uid", uid(signup))
        event.add("dtstamp", signup.created_at)
        event.add("dtstart", signup.occurrence_start)
        event.add("dtend", signup.occurrence_end)
        event.add("summary", summary(signup))
        calendar.add_component(event)
    return calendar.to_ical()
