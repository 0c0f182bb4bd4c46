"""The reports' filters: dates in the organization's time zone, an inbox, a channel and,
for the form report, a form and one of its fields; the monthly summary's month. Anything
not the organization's is refused with the message next to its filter."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django import forms

from openline.forms.models import Form
from openline.messaging.models import Channel
from openline.providers.models import Number
from openline.reports.base import ReportFilters
from openline.reports.selectors.form_fields import form_fields

DEFAULT_DAYS = 30
MAX_DAYS = 3 * 366  # "at most three years"
YEARS = (1970, 9998)
CHANNELS = [("", "Every channel")] + [(c.value, c.label) for c in Channel if c != Channel.ALERT]


def _choice(label: str, message: str) -> forms.TypedChoiceField:
    return forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        label=label,
        error_messages={"invalid_choice": message},
    )


class ScopeForm(forms.Form):
    """What both pages share: inbox, channel, form and field."""

    inbox = _choice("Inbox", "Choose one of this organization's inboxes from the list.")
    channel = forms.ChoiceField(
        required=False,
        label="Channel",
        choices=CHANNELS,
        error_messages={"invalid_choice": "Choose a channel from the list."},
    )
    form = _choice("Form", "Choose one of this organization's forms from the list.")
    field = forms.ChoiceField(
        required=False,
        label="Form field",
        error_messages={"invalid_choice": "Choose a field of the chosen form from the list."},
    )

    def __init__(self, data: Any, *, organization_id: int, zone: ZoneInfo) -> None:
        super().__init__(data)
        self.organization_id = organization_id
        self.zone = zone
        inboxes = Number.objects.filter(organization_id=organization_id).order_by("name", "pk")
        inbox: Any = self.fields["inbox"]
        inbox.choices = [("", "Every inbox"), *((n.pk, n.name or n.e164) for n in inboxes)]
        self.form_list = list(Form.objects.filter(organization_id=organization_id).order_by("name"))
        form: Any = self.fields["form"]
        form.choices = [("", "No form"), *((f.pk, f.name) for f in self.form_list)]
        self.form_fields = {
            f.pk: form_fields(organization_id=organization_id, form_id=f.pk) for f in self.form_list
        }
        field: Any = self.fields["field"]
        field.choices = [("", "Choose a field")] + [
            (f.name, [(key, fld.label) for key, fld in self.form_fields[f.pk].items()])
            for f in self.form_list
            if self.form_fields[f.pk]
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        form_id, key = cleaned.get("form"), cleaned.get("field") or ""
        if key and form_id is None and "form" not in self.errors:
            self.add_error("form", "Choose the form this field belongs to.")
        elif form_id is not None and key and key not in self.form_fields.get(form_id, {}):
            self.add_error("field", "That field is not one of the chosen form's.")
        return cleaned

    def filters(self, start: date, end: date) -> ReportFilters:
        data = self.cleaned_data
        return ReportFilters(
            organization_id=self.organization_id,
            start=start,
            end=end,
            tz=self.zone,
            number_id=data.get("inbox"),
            channel=data.get("channel") or None,
            form_id=data.get("form"),
            field_key=data.get("field") or "",
        )


class ReportFilterForm(ScopeForm):
    start = forms.DateField(
        required=False,
        label="From",
        error_messages={"invalid": "Enter a date like 2026-03-01."},
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    end = forms.DateField(
        required=False,
        label="To",
        error_messages={"invalid": "Enter a date like 2026-03-31."},
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    field_order = ["start", "end", "inbox", "channel", "form", "field"]

    def __init__(self, data: Any, *, organization_id: int, zone: ZoneInfo, today: date) -> None:
        super().__init__(data, organization_id=organization_id, zone=zone)
        self.today = today

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for name in ("start", "end"):
            day = cleaned.get(name)
            if day and not YEARS[0] <= day.year <= YEARS[1]:
                self.add_error(name, f"Enter a date between {YEARS[0]} and {YEARS[1]}.")
        if self.errors:
            return cleaned
        end = cleaned.get("end") or self.today
        start = cleaned.get("start") or end - timedelta(days=DEFAULT_DAYS - 1)
        if end < start:
            self.add_error("end", "The end date comes before the start date.")
        elif (end - start).days + 1 > MAX_DAYS:
            self.add_error("end", "Choose at most three years at a time.")
        cleaned["start"], cleaned["end"] = start, end
        return cleaned

    def report_filters(self) -> ReportFilters:
        return self.filters(self.cleaned_data["start"], self.cleaned_data["end"])

    def query(self) -> dict[str, str]:
        """The filters as the page's query, for the CSV buttons and the summary link."""
        return {
            name: str(value)
            for name, value in self.cleaned_data.items()
            if value not in (None, "") and name in self.fields
        }


class MonthForm(ScopeForm):
    month = forms.CharField(
        required=False,
        label="Month",
        widget=forms.TextInput(attrs={"type": "month", "placeholder": "2026-03"}),
    )
    field_order = ["month", "inbox", "channel", "form", "field"]

    def __init__(self, data: Any, *, organization_id: int, zone: ZoneInfo, today: date) -> None:
        super().__init__(data, organization_id=organization_id, zone=zone)
        self.today = today

    def clean_month(self) -> date:
        text = (self.cleaned_data.get("month") or "").strip()
        if not text:
            return self.today.replace(day=1)
        try:
            year, month = (int(part) for part in text.split("-"))
            first = date(year, month, 1)
        except ValueError:
            raise forms.ValidationError("Enter a month like 2026-03.") from None
        if not YEARS[0] <= first.year <= YEARS[1]:
            raise forms.ValidationError(f"Enter a month between {YEARS[0]} and {YEARS[1]}.")
        return first

    def report_filters(self) -> ReportFilters:
        first: date = self.cleaned_data["month"]
        last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        return self.filters(first, last)
