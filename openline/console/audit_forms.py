"""The audit log's filters, and the API token form."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django import forms

from openline.core.audit import action_choices
from openline.core.models import Membership, TokenScope

# An id beyond this is no row's (and keeps the filter's SQL parameter a plain integer).
MAX_ID = 2**53
# Dates far outside these would overflow when turned into a UTC range.
YEARS = (1970, 9998)


class AuditFilterForm(forms.Form):
    person = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        label="Person",
        error_messages={"invalid_choice": "Choose a member of this organization from the list."},
    )
    action = forms.ChoiceField(
        required=False,
        label="Action",
        error_messages={"invalid_choice": "Choose an action from the list."},
    )
    conversation = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_ID,
        label="Conversation",
        error_messages={"invalid": "A conversation is a number (its page's address shows it)."},
        widget=forms.TextInput(attrs={"inputmode": "numeric", "size": 8}),
    )
    date_from = forms.DateField(
        required=False,
        label="From",
        error_messages={"invalid": "Enter a date like 2026-03-01."},
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    date_to = forms.DateField(
        required=False,
        label="To",
        error_messages={"invalid": "Enter a date like 2026-03-31."},
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def __init__(self, data: Any, *, members: list[Membership]) -> None:
        super().__init__(data)
        person: Any = self.fields["person"]
        person.choices = [("", "Everyone"), *((m.user_id, _member_label(m)) for m in members)]
        action: Any = self.fields["action"]
        action.choices = [("", "Every action"), *action_choices()]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name in ("date_from", "date_to"):
            day = cleaned.get(name)
            if day and not YEARS[0] <= day.year <= YEARS[1]:
                self.add_error(name, f"Enter a date between {YEARS[0]} and {YEARS[1]}.")
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and end < start:
            self.add_error("date_to", "The end date comes before the start date.")
        return cleaned

    def filters(self, zone: str) -> dict[str, Any]:
        """The selector's keyword arguments; the dates are whole days in ``zone``."""
        data = self.cleaned_data
        return {
            "actor_id": data.get("person"),
            "action": data.get("action") or None,
            "conversation_id": data.get("conversation"),
            "since": _start_of(data.get("date_from"), zone),
            "until": _start_of(_next_day(data.get("date_to")), zone),
        }

    def description(self) -> str:
        """The filters in words, for the export's audit event."""
        data = self.cleaned_data
        parts = [f"{name}={data[name]}" for name in self.fields if data.get(name) not in (None, "")]
        return ", ".join(parts) or "everything"


def _member_label(membership: Membership) -> str:
    label = str(membership.user)
    return label if membership.is_active else f"{label} (deactivated)"


def _next_day(day: date | None) -> date | None:
    return day + timedelta(days=1) if day else None


def _start_of(day: date | None, zone: str) -> datetime | None:
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(zone)) if day else None


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        label="Name",
        help_text="What uses it, e.g. “Case management sync”.",
        error_messages={
            "required": "Give the token a name, so you know what to revoke later.",
            "max_length": "Keep the name under 100 characters.",
        },
    )
    scope = forms.ChoiceField(
        choices=TokenScope.choices,
        initial=TokenScope.READ,
        label="Scope",
        widget=forms.RadioSelect,
        error_messages={"required": "Choose what the token may do."},
    )

    def clean_name(self) -> str:
        name = str(self.cleaned_data["name"]).strip()
        if not name:
            raise forms.ValidationError("Give the token a name, so you know what to revoke later.")
        return name
