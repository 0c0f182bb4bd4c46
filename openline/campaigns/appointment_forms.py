"""Forms of the appointments pages: the day view's filters, an appointment by hand, a
reminder rule (with the minimum-necessary check of its template) and the organization's
reminder settings. Also, at the end, the three small writes these pages need beside
``appointment_save``; they belong with the reminder services and move there when
campaigns.reminders is next opened (see the commit)."""

from __future__ import annotations

import datetime as dt
import re
import string
import zoneinfo
from datetime import datetime, time, timedelta
from functools import cache
from typing import Any

from django import forms
from django.contrib.auth import get_user_model

from openline.campaigns.appointment_selectors import STATES
from openline.campaigns.appointments import (
    MAX_MINUTES,
    AppointmentData,
    AppointmentError,
    appointment_save,
    known_time_zones,
)
from openline.campaigns.compose import merge_keys
from openline.campaigns.models import (
    Appointment,
    AppointmentStatus,
    AppointmentType,
    ReminderRule,
    ReminderSettings,
)
from openline.campaigns.reminders import MERGE_FIELDS, reminder_text
from openline.contacts.models import Contact

MAX_TEMPLATE = 1000
MAX_DAYS_BEFORE = 60
# "N hours/minutes before": at most two weeks ahead (the preview's horizon).
MAX_MINUTES_BEFORE = 14 * 24 * 60


@cache
def time_zones() -> list[str]:
    return sorted(known_time_zones())


# --- the day view's filters ----------------------------------------------------------------------


def _on_the_calendar(day: dt.date) -> None:
    # Far days would overflow the day before or after (and mean a typing slip anyway).
    if not 2000 <= day.year <= 2100:
        raise forms.ValidationError("Choose a day between the years 2000 and 2100.")


class DayFilterForm(forms.Form):
    date = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        validators=[_on_the_calendar],
    )
    location = forms.CharField(required=False, max_length=120)
    state = forms.ChoiceField(
        required=False, choices=[("", "Any state"), *STATES.items()], label="State"
    )


class CallListForm(forms.Form):
    date = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        validators=[_on_the_calendar],
    )


# --- an appointment by hand ----------------------------------------------------------------------

# appointment_save names the field it refuses; the form shows the message beside it.
SERVICE_FIELDS = {
    "phone": "phone",
    "time_zone": "time_zone",
    "starts_at": "date",
    "minutes": "minutes",
    "external_id": "external_id",
}


class AppointmentForm(forms.Form):
    phone = forms.CharField(max_length=40, label="Patient's mobile number")
    name = forms.CharField(
        max_length=200,
        required=False,
        label="Patient's name",
        help_text="Kept for a new contact; a known contact keeps the name on their contact page.",
    )
    date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    time = forms.TimeField(widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    time_zone = forms.CharField(
        max_length=64,
        label="Time zone",
        help_text="Where the visit takes place; the reminders use its local time.",
        widget=forms.TextInput(attrs={"list": "time-zones", "autocomplete": "off"}),
    )
    minutes = forms.IntegerField(min_value=1, max_value=MAX_MINUTES, initial=30, label="Minutes")
    staff_name = forms.CharField(max_length=120, required=False, label="Provider")
    location = forms.CharField(max_length=120, required=False)
    type_name = forms.CharField(
        max_length=80,
        required=False,
        label="Type",
        help_text="Its reminder rules apply (for example “Check-up”).",
        widget=forms.TextInput(attrs={"list": "appointment-types", "autocomplete": "off"}),
    )
    external_id = forms.CharField(
        max_length=100,
        required=False,
        label="External id",
        help_text="The scheduling system's id, if it has one.",
    )

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if editing:  # an appointment is found again by its external id: not changed here
            del self.fields["external_id"]

    @classmethod
    def initial_for(cls, appointment: Appointment) -> dict[str, Any]:
        local = appointment.starts_at.astimezone(zoneinfo.ZoneInfo(appointment.time_zone))
        kind = appointment.appointment_type
        return {
            "phone": appointment.contact.phone,
            "name": appointment.contact.name,
            "date": local.date(),
            "time": local.time().replace(second=0, microsecond=0),
            "time_zone": appointment.time_zone,
            "minutes": appointment.minutes,
            "staff_name": appointment.staff_name,
            "location": appointment.location,
            "type_name": kind.name if kind else "",
        }

    def appointment_data(self, *, status: str = AppointmentStatus.BOOKED) -> AppointmentData:
        data = self.cleaned_data
        return AppointmentData(
            phone=data["phone"],
            starts_at=datetime.combine(data["date"], data["time"]),  # local: with its zone
            time_zone=data["time_zone"].strip(),
            minutes=data["minutes"],
            staff_name=data["staff_name"],
            location=data["location"],
            type_name=data["type_name"],
            status=status,
            external_id=data.get("external_id", "").strip(),
            name=data["name"],
        )

    def clean_time_zone(self) -> str:
        zone: str = self.cleaned_data["time_zone"].strip()
        if zone not in known_time_zones():  # said beside the field
            raise forms.ValidationError(
                f"Unknown time zone “{zone}”: choose one like America/New_York."
            )
        return zone

    def clean_date(self) -> dt.date:
        day: dt.date = self.cleaned_data["date"]
        if not 2000 <= day.year <= dt.date.today().year + 10:  # noqa: DTZ011 (a bound only)
            raise forms.ValidationError("Choose a date within the next ten years.")
        return day

    def refused(self, error: AppointmentError) -> None:
        """Show the service's refusal beside the field it names."""
        name = SERVICE_FIELDS.get(error.field)
        text = str(error)
        self.add_error(name if name in self.fields else None, text[:1].upper() + text[1:] + ".")


def appointment_data_of(appointment: Appointment, *, status: str) -> AppointmentData:
    """The appointment as it is, with another status (for the detail page's actions)."""
    kind = appointment.appointment_type
    return AppointmentData(
        phone=appointment.contact.phone,
        starts_at=appointment.starts_at,
        time_zone=appointment.time_zone,
        minutes=appointment.minutes,
        staff_name=appointment.staff_name,
        location=appointment.location,
        type_name=kind.name if kind else "",
        status=status,
        external_id=appointment.external_id,
    )


# --- the minimum-necessary check -----------------------------------------------------------------

# A reminder is read on a lock screen, by whoever holds the phone: it should say when and
# where, not why. These words say why (a diagnosis, a test, a medicine, a note).
SENSITIVE_WORDS = (
    # diagnoses and conditions
    "hiv", "aids", "std", "stds", "sti", "stis", "hepatitis", "syphilis", "chlamydia",
    "gonorrhea", "herpes", "hpv", "cancer", "tumor", "tumour", "oncology", "diabetes",
    "dementia", "depression", "anxiety", "bipolar", "schizophrenia", "mental health",
    "psychiatric", "psychiatry", "behavioral health", "addiction", "substance use", "overdose",
    "pregnancy", "pregnant", "prenatal", "miscarriage", "abortion", "contraception",
    "birth control", "diagnosis", "diagnosed", "condition", "symptoms", "positive", "negative",
    # tests and procedures
    "test results", "lab results", "results", "blood test", "blood work", "biopsy",
    "screening", "mammogram", "colonoscopy", "ultrasound", "mri", "x-ray", "pap smear",
    "std test", "hiv test", "pregnancy test", "dialysis", "transplant", "surgery",
    # treatments and medicines
    "chemotherapy", "chemo", "radiation", "methadone", "suboxone", "buprenorphine",
    "naloxone", "narcan", "prep", "insulin", "antidepressant", "opioid", "detox", "rehab",
    "prescription", "medication", "refill", "dose",
    # free-text notes
    "note", "notes", "reason for visit", "because of",
)  # fmt: skip
_SENSITIVE = re.compile(
    r"(?<![\w-])(" + "|".join(re.escape(w) for w in SENSITIVE_WORDS) + r")(?![\w-])",
    re.IGNORECASE,
)


def sensitive_words(text: str) -> list[str]:
    """The words of ``text`` that say more than when and where, each once, as written."""
    found: dict[str, str] = {}
    for match in _SENSITIVE.finditer(text):
        found.setdefault(match.group(1).casefold(), match.group(1))
    return list(found.values())


def template_warnings(template: str, *, sample_text: str = "") -> list[str]:
    """Warnings (never refusals) for a reminder template that says more than the date,
    time and place: sensitive words, merge fields beyond the five, and words the sample
    appointment's own location or provider bring in."""
    warnings = []
    words = sensitive_words(_without_fields(template))
    if words:
        listed = ", ".join(f"“{w}”" for w in words)
        warnings.append(
            f"The text mentions {listed}. A reminder is read on a lock screen: say when "
            "and where, not why (no diagnosis, test, medicine or notes)."
        )
    unknown = sorted(merge_keys(template) - set(MERGE_FIELDS))
    if unknown:
        listed = ", ".join("{" + name + "}" for name in unknown)
        warnings.append(
            f"{listed} {'is not a merge field' if len(unknown) == 1 else 'are not merge fields'}"
            " for reminders and would be sent as typed. Only the date, time, place, provider "
            "and first name are filled in."
        )
    if sample_text:
        filled = sensitive_words(_without_fields(sample_text))
        extra = [w for w in filled if w.casefold() not in _folded(words)]
        if extra:
            listed = ", ".join(f"“{w}”" for w in extra)
            warnings.append(
                f"Filled in for the sample appointment, the text also says {listed} (from its "
                "location or provider)."
            )
    return warnings


def _folded(words: list[str]) -> set[str]:
    return {w.casefold() for w in words}


def _without_fields(template: str) -> str:
    return re.sub(r"\{[^{}]*\}", " ", template)


def template_problem(template: str) -> str:
    """Why the send service could not fill ``template`` in (a stray brace, a field with
    dots, brackets or a format), else ""."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError:
        return (
            "A { or } has no partner. Write merge fields as {first_name}; a brace on its "
            "own as {{ or }}."
        )
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            shown = "{" + name + (f"!{conversion}" if conversion else "")
            shown += (f":{spec}" if spec else "") + "}"
            fields = ", ".join("{" + field + "}" for field in MERGE_FIELDS)
            return f"{shown} cannot be filled in. Write merge fields as one of {fields}."
    return ""


# --- a reminder rule -----------------------------------------------------------------------------

TIMING = [
    ("days", "A number of days before, at a time of day"),
    ("before", "A number of hours or minutes before the start"),
]
UNITS = [("hours", "hours"), ("minutes", "minutes")]


class RuleForm(forms.Form):
    appointment_type = forms.ModelChoiceField(
        queryset=AppointmentType.objects.none(),
        required=False,
        label="Appointment type",
        empty_label="— a new type —",
    )
    new_type = forms.CharField(
        max_length=80,
        required=False,
        label="New type's name",
        help_text="As your scheduling system names it (for example “Check-up”).",
    )
    timing = forms.ChoiceField(
        choices=TIMING, initial="days", widget=forms.RadioSelect, label="When"
    )
    days_before = forms.IntegerField(
        min_value=0, max_value=MAX_DAYS_BEFORE, required=False, initial=2, label="Days before"
    )
    at_time = forms.TimeField(
        required=False,
        initial=time(10, 0),
        label="At",
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        help_text="The appointment's local time.",
    )
    amount = forms.IntegerField(
        min_value=1, max_value=MAX_MINUTES_BEFORE, required=False, label="How long before"
    )
    unit = forms.ChoiceField(choices=UNITS, initial="hours", required=False, label="Unit")
    template = forms.CharField(
        max_length=MAX_TEMPLATE,
        label="Text",
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Merge fields: " + ", ".join("{" + name + "}" for name in MERGE_FIELDS) + ". "
        "Unless the text says how to reply, it ends with “Reply C to confirm, X to cancel, "
        "R to reschedule. STOP ends all texts.”",
    )
    send_when_booked_late = forms.BooleanField(
        required=False,
        label="Send when booked late",
        help_text="Booked after this reminder's time: send it at once (in sending hours) "
        "instead of leaving it out.",
    )
    is_active = forms.BooleanField(required=False, initial=True, label="Active")

    def __init__(
        self, *args: Any, organization_id: int, rule: ReminderRule | None = None, **kwargs: Any
    ) -> None:
        if rule is not None and "initial" not in kwargs:
            kwargs["initial"] = self.initial_for(rule)
        super().__init__(*args, **kwargs)
        self.rule = rule
        kinds = self.fields["appointment_type"]
        assert isinstance(kinds, forms.ModelChoiceField)
        kinds.queryset = AppointmentType.objects.filter(organization_id=organization_id)
        if rule is not None:  # its planned reminders belong to that type's appointments
            del self.fields["appointment_type"], self.fields["new_type"]

    @staticmethod
    def initial_for(rule: ReminderRule) -> dict[str, Any]:
        minutes = rule.minutes_before or 0
        hours = minutes and minutes % 60 == 0
        return {
            "timing": "before" if rule.minutes_before is not None else "days",
            "days_before": rule.days_before,
            "at_time": rule.at_time,
            "amount": (minutes // 60 if hours else minutes) or None,
            "unit": "hours" if hours else "minutes",
            "template": rule.template,
            "send_when_booked_late": rule.send_when_booked_late,
            "is_active": rule.is_active,
        }

    def clean_template(self) -> str:
        template: str = self.cleaned_data["template"].strip()
        problem = template_problem(template)
        if problem:
            raise forms.ValidationError(problem)
        return template

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("timing") == "before":
            if data.get("amount") is None and "amount" not in self.errors:
                self.add_error("amount", "Say how long before the start.")
            elif data.get("amount") and self._minutes(data) > MAX_MINUTES_BEFORE:
                self.add_error("amount", "At most 14 days before; use “days before” for more.")
        else:
            if data.get("days_before") is None and "days_before" not in self.errors:
                self.add_error("days_before", "Say how many days before.")
            if data.get("at_time") is None and "at_time" not in self.errors:
                self.add_error("at_time", "Say at what time.")
        no_type = not data.get("appointment_type") and not (data.get("new_type") or "").strip()
        if "appointment_type" in self.fields and no_type:
            self.add_error("new_type", "Choose an appointment type or name a new one.")
        return data

    @staticmethod
    def _minutes(data: dict[str, Any]) -> int:
        amount = int(data.get("amount") or 0)
        return amount * 60 if data.get("unit") != "minutes" else amount

    def rule_fields(self) -> dict[str, Any]:
        """The rule's own columns from the form."""
        data = self.cleaned_data
        days = data.get("timing") != "before"
        return {
            "days_before": data.get("days_before") if days else None,
            "at_time": data.get("at_time") if days else None,
            "minutes_before": None if days else self._minutes(data),
            "template": data["template"],
            "send_when_booked_late": bool(data.get("send_when_booked_late")),
            "is_active": bool(data.get("is_active")),
        }

    def type_id(self) -> int | None:
        """The chosen type (None for a new one, or when the form is not valid)."""
        if self.rule is not None:
            return self.rule.appointment_type_id
        chosen = (
            self.cleaned_data.get("appointment_type") if hasattr(self, "cleaned_data") else None
        )
        return chosen.pk if chosen is not None else None

    def draft(self) -> ReminderRule:
        """An unsaved rule with what the form says so far, for the preview (the saved rule
        where a field does not say)."""
        base = self.rule or ReminderRule(days_before=2, at_time=time(10, 0), template="")
        draft = ReminderRule(
            pk=base.pk, days_before=base.days_before, at_time=base.at_time,
            minutes_before=base.minutes_before, template=base.template,
            send_when_booked_late=base.send_when_booked_late, is_active=base.is_active,
        )  # fmt: skip
        if self.is_bound and self.is_valid():
            for name, value in self.rule_fields().items():
                setattr(draft, name, value)
        elif self.is_bound:
            draft.template = str(self.data.get("template", draft.template))[:MAX_TEMPLATE]
        return draft


def sample_text(
    template: str, appointment: Appointment | None, zone: str, now: datetime
) -> tuple[str, str]:
    """(who, text): ``template`` filled in for ``appointment``, or for a made-up one
    tomorrow when the type has none coming; ("", "") when it cannot be filled in."""
    if appointment is None:
        tz = zoneinfo.ZoneInfo(zone)
        day = now.astimezone(tz).date() + timedelta(days=1)
        appointment = Appointment(
            contact=Contact(name="Alex Sample"),
            starts_at=datetime.combine(day, time(10, 30), tzinfo=tz),
            time_zone=zone,
            staff_name="Dr. Lee",
            location="Main Street clinic",
        )
        who = "a made-up appointment (Alex Sample, tomorrow 10:30 AM)"
    else:
        who = f"{appointment.contact.label}'s appointment"
    if not template.strip() or template_problem(template):
        return who, ""
    return who, reminder_text(template, appointment)


# --- the organization's reminder settings --------------------------------------------------------


class SettingsForm(forms.Form):
    max_per_day = forms.IntegerField(
        min_value=1,
        max_value=10,
        label="At most a day",
        help_text="Reminders per patient in a day.",
    )
    max_per_week = forms.IntegerField(
        min_value=1,
        max_value=30,
        label="At most a week",
        help_text="Reminders per patient in seven days.",
    )
    notify_user = forms.ModelChoiceField(
        queryset=get_user_model().objects.none(),
        required=False,
        label="Who hears of a cancellation by text",
        empty_label="— nobody —",
        help_text="A notification in the console while they are signed in.",
    )
    notify_by_text = forms.BooleanField(
        required=False,
        label="Also by text",
        help_text="To their confirmed alert phone (My alerts).",
    )

    def __init__(self, *args: Any, organization_id: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        people = self.fields["notify_user"]
        assert isinstance(people, forms.ModelChoiceField)
        people.queryset = (
            get_user_model()
            .objects.filter(
                memberships__organization_id=organization_id, memberships__is_active=True
            )
            .order_by("email")
        )

    @staticmethod
    def initial_for(settings: ReminderSettings | None) -> dict[str, Any]:
        if settings is None:
            return {"max_per_day": 1, "max_per_week": 3}
        return {
            "max_per_day": settings.max_per_day,
            "max_per_week": settings.max_per_week,
            "notify_user": settings.notify_user_id,
            "notify_by_text": settings.notify_by_text,
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        day, week = data.get("max_per_day"), data.get("max_per_week")
        if day is not None and week is not None and week < day:
            self.add_error("max_per_week", "A week allows at least as many as a day.")
        if data.get("notify_by_text") and not data.get("notify_user"):
            self.add_error("notify_by_text", "Choose who is told first.")
        return data


# --- writes these pages need (service functions: see the module docstring) -----------------------


def appointment_change(
    *, appointment: Appointment, actor_id: int | None, data: AppointmentData
) -> tuple[Appointment, bool]:
    """``appointment_save`` for an appointment the console has by its id."""
    return appointment_save(
        organization_id=appointment.organization_id,
        data=data,
        actor_id=actor_id,
        appointment_id=appointment.pk,
    )
