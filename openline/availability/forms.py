"""The new-shift form: shape checks, and turning "weekly on Mon and Wed, 10 times" into an
RRULE with dateutil. The rules themselves (who may, places, validity) are the service's."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from dateutil import rrule as du
from django import forms

from openline.availability.models import (
    MAX_OFFLINE_PERIOD_HOURS,
    MAX_PLACES,
    MAX_RESPONSE_CHARS,
    ShiftKind,
)
from openline.providers.models import Number

WEEKDAYS = [
    ("MO", "Mon"),
    ("TU", "Tue"),
    ("WE", "Wed"),
    ("TH", "Thu"),
    ("FR", "Fri"),
    ("SA", "Sat"),
    ("SU", "Sun"),
]
_DU_WEEKDAYS = dict(zip([code for code, _ in WEEKDAYS], du.weekdays, strict=True))
REPEATS = [("none", "Does not repeat"), ("daily", "Daily"), ("weekly", "Weekly")]
ENDS = [("never", "Never"), ("until", "On a date"), ("count", "After a number of times")]
ALL_INBOXES = ""


class ShiftForm(forms.Form):
    number = forms.ChoiceField(label="Inbox", required=False)
    kind = forms.ChoiceField(label="Type", choices=ShiftKind.choices, initial=ShiftKind.NORMAL)
    title = forms.CharField(label="Title (optional)", max_length=100, required=False)
    start_date = forms.DateField(label="Date", widget=forms.DateInput(attrs={"type": "date"}))
    start_time = forms.TimeField(label="From", widget=forms.TimeInput(attrs={"type": "time"}))
    end_time = forms.TimeField(
        label="To",
        widget=forms.TimeInput(attrs={"type": "time"}),
        help_text="Earlier than the start: it ends the next day.",
    )
    places = forms.IntegerField(label="Places", min_value=1, max_value=MAX_PLACES, initial=1)
    repeat = forms.ChoiceField(label="Repeats", choices=REPEATS, initial="none")
    interval = forms.IntegerField(label="Every", min_value=1, max_value=52, initial=1)
    weekdays = forms.MultipleChoiceField(
        label="On", choices=WEEKDAYS, required=False, widget=forms.CheckboxSelectMultiple
    )
    ends = forms.ChoiceField(label="Ends", choices=ENDS, initial="never")
    until = forms.DateField(
        label="Last date", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    count = forms.IntegerField(label="Times", min_value=1, max_value=1000, required=False)

    def __init__(self, *args: Any, numbers: list[Number], **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        choices = [(str(n.pk), n.label) for n in numbers]
        self.fields["number"].choices = [*choices, (ALL_INBOXES, "All inboxes (on call only)")]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        data["number_id"] = int(data["number"]) if data.get("number") else None
        data["duration_minutes"] = duration_minutes(data["start_time"], data["end_time"])
        data["rrule"] = self._rrule(data)
        return data

    def _rrule(self, data: dict[str, Any]) -> str:
        if data["repeat"] == "none":
            return ""
        dtstart = datetime.combine(data["start_date"], data["start_time"])
        options: dict[str, Any] = {"dtstart": dtstart, "interval": data["interval"]}
        if data["repeat"] == "weekly":
            days = data["weekdays"] or [WEEKDAYS[dtstart.weekday()][0]]
            options["byweekday"] = [_DU_WEEKDAYS[day] for day in days]
        if data["ends"] == "until":
            if data.get("until") is None:
                raise forms.ValidationError("Choose the last date.")
            options["until"] = datetime.combine(data["until"], time(23, 59, 59))
        elif data["ends"] == "count":
            if not data.get("count"):
                raise forms.ValidationError("Say how many times.")
            options["count"] = data["count"]
        freq = du.DAILY if data["repeat"] == "daily" else du.WEEKLY
        return rrule_value(du.rrule(freq, **options))


def rrule_value(rule: du.rrule) -> str:
    """The RRULE value of a dateutil rule (its text without the DTSTART line)."""
    for line in str(rule).splitlines():
        if line.startswith("RRULE:"):
            return line.removeprefix("RRULE:")
    raise ValueError("dateutil gave no RRULE line")


def duration_minutes(start: time, end: time) -> int:
    """Wall-clock minutes from ``start`` to ``end``, ending the next day when ``end`` is
    not later than ``start`` (22:00–06:00 is eight hours)."""
    day = datetime(2000, 1, 1)  # noqa: DTZ001  (a wall-clock difference, no zone involved)
    delta = datetime.combine(day, end) - datetime.combine(day, start)
    if delta <= timedelta(0):
        delta += timedelta(days=1)
    return int(delta.total_seconds() // 60)


class ResponsesForm(forms.Form):
    """An inbox's auto-responses; whether a switched-on answer has words is the service's."""

    offline_enabled = forms.BooleanField(
        label="Answer texts that arrive while offline", required=False
    )
    offline_text = forms.CharField(
        label="Offline answer",
        max_length=MAX_RESPONSE_CHARS,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="{next_open} becomes when you open again, from the shift calendar "
        '("Tuesday at 9:00 AM"; "as soon as we can" when the inbox is switched off or no '
        "staffed shift lies ahead). {organization} becomes your organization's name.",
    )
    offline_period_hours = forms.IntegerField(
        label="At most one offline answer per person every (hours)",
        min_value=1,
        max_value=MAX_OFFLINE_PERIOD_HOURS,
    )
    greeting_enabled = forms.BooleanField(
        label="Greet a person texting for the first time", required=False
    )
    greeting_text = forms.CharField(
        label="First-contact greeting",
        max_length=MAX_RESPONSE_CHARS,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Sent while online when someone's first conversation with this inbox begins.",
    )
    busy_enabled = forms.BooleanField(label="Tell people when the queue is long", required=False)
    busy_text = forms.CharField(
        label="“All counselors are busy” answer",
        max_length=MAX_RESPONSE_CHARS,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    busy_threshold = forms.IntegerField(
        label="Send it when this many wait in the queue (the new person included)",
        min_value=1,
        max_value=1000,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
