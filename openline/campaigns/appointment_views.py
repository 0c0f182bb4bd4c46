"""The appointments pages: the day view (per location, filterable by the state of the
reminder and the reply), the "call these people" list for tomorrow, an appointment by hand
and its page (edit, move, cancel, completed, no-show: all through appointment_save, so each
re-plans its reminders and is audited), and the reminder rules with the organization's
limits (admins and supervisors, like broadcasts).

Who sees what: every member of the organization sees the appointments (the people who
answer the queue, where the patients' replies land, are the ones who call them); only
admins and supervisors see and change the reminder rules and limits. The pages show the
state of a reply (confirmed, cancelled...) and when, never a message's text, so none of
them is a transcript read."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from openline.campaigns import appointment_selectors as selectors
from openline.campaigns.appointment_forms import (
    AppointmentForm,
    CallListForm,
    DayFilterForm,
    RuleForm,
    SettingsForm,
    appointment_change,
    appointment_data_of,
    sample_text,
    template_warnings,
    time_zones,
)
from openline.campaigns.appointments import (
    AppointmentError,
    appointment_cancel,
    appointment_save,
)
from openline.campaigns.models import (
    Appointment,
    AppointmentStatus,
    AppointmentType,
    ReminderRule,
    ReminderSettings,
)
from openline.campaigns.reminders import (
    ENDED,
    MERGE_FIELDS,
    reminder_rule_save,
    reminder_settings_save,
)
from openline.core.models import Organization
from openline.core.web import console_view, is_htmx, managers_only
from openline.messaging.segments import count_segments

# The detail page's buttons: the status each sets, and what the page then says.
ACTIONS: dict[str, tuple[str, str]] = {
    "confirmed": (AppointmentStatus.CONFIRMED, "Marked as confirmed."),
    "cancel": (AppointmentStatus.CANCELLED, "Cancelled. Its planned reminders are withdrawn."),
    "completed": (AppointmentStatus.COMPLETED, "Marked as completed."),
    "no_show": (AppointmentStatus.NO_SHOW, "Marked as a no-show."),
}
MERGE_FIELD_HELP = {
    "first_name": "the patient's first name (“there” without one)",
    "date": "the day, as “Tue Dec 10”",
    "time": "the time, as “3:00 PM”",
    "location": "the location",
    "provider": "the provider's name",
}


def _appointment_or_404(organization: Organization, appointment_id: int) -> Appointment:
    return get_object_or_404(
        Appointment.objects.select_related("contact", "appointment_type"),
        organization_id=organization.pk,
        pk=appointment_id,
    )


# --- the day view ----------------------------------------------------------------------------


@console_view
@require_GET
def day_view(request: HttpRequest, organization: Organization) -> HttpResponse:
    form = DayFilterForm(request.GET)
    valid = form.is_valid()
    data = form.cleaned_data if valid else {}
    today = timezone.localdate()  # console_view: the organization's time zone
    day = data.get("date") or today
    location = data.get("location") or None
    state = data.get("state") or ""
    start, end = selectors.day_bounds(day, organization.timezone)
    appointments = selectors.appointments_between(
        organization_id=organization.pk, start=start, end=end, location=location
    )
    counts = selectors.day_counts(appointments)
    context = {
        "form": form,
        "day": day,
        "today": today,
        "previous_day": day - timedelta(days=1),
        "next_day": day + timedelta(days=1),
        "previous_url": _day_url(day - timedelta(days=1), location, state),
        "next_url": _day_url(day + timedelta(days=1), location, state),
        "today_url": _day_url(today, location, state),
        "location": location or "",
        "state": state,
        "total": counts["total"],
        "state_links": [
            (key, label, counts[key], _day_url(day, location, key), key == state)
            for key, label in selectors.STATES.items()
        ],
        "all_url": _day_url(day, location, ""),
        "rows": selectors.day_rows(
            appointments,
            organization_id=organization.pk,
            organization_zone=organization.timezone,
            state=state,
        ),
        "locations": selectors.day_locations(organization_id=organization.pk, start=start, end=end),
        "can_manage": request.membership.can_manage,  # type: ignore[attr-defined]
    }
    return render(request, "campaigns/appointments/day.html", context, status=200 if valid else 400)


def _day_url(day: date, location: str | None, state: str) -> str:
    params = {"date": day.isoformat()}
    if location:
        params["location"] = location
    if state:
        params["state"] = state
    return f"{reverse('appointments:day')}?{urlencode(params)}"


@console_view
@require_GET
def call_list(request: HttpRequest, organization: Organization) -> HttpResponse:
    form = CallListForm(request.GET)
    valid = form.is_valid()
    tomorrow = timezone.localdate() + timedelta(days=1)
    day = (form.cleaned_data.get("date") if valid else None) or tomorrow
    start, end = selectors.day_bounds(day, organization.timezone)
    calls = selectors.calls_for(organization_id=organization.pk, start=start, end=end)
    context = {
        "form": form,
        "day": day,
        "is_tomorrow": day == tomorrow,
        "unconfirmed": [a for a in calls if a.status == AppointmentStatus.BOOKED],
        "reschedule": [a for a in calls if a.status == AppointmentStatus.RESCHEDULE],
        "printed_at": timezone.now(),
    }
    return render(
        request, "campaigns/appointments/call_list.html", context, status=200 if valid else 400
    )


# --- an appointment by hand --------------------------------------------------------------------


def _form_context(organization: Organization) -> dict[str, Any]:
    return {
        "time_zones": time_zones(),
        "type_names": AppointmentType.objects.filter(organization_id=organization.pk)
        .order_by("name")
        .values_list("name", flat=True),
    }


@console_view
@require_http_methods(["GET", "POST"])
def appointment_new(request: HttpRequest, organization: Organization) -> HttpResponse:
    if request.method == "POST":
        form = AppointmentForm(request.POST)
    else:
        form = AppointmentForm(initial=_new_initial(request, organization))
    if form.is_bound and form.is_valid():
        try:
            appointment, _ = appointment_save(
                organization_id=organization.pk,
                data=form.appointment_data(),
                actor_id=request.user.pk,
            )
        except AppointmentError as exc:
            form.refused(exc)
        else:
            messages.success(request, "Appointment saved; its reminders are planned.")
            return redirect("appointments:detail", appointment_id=appointment.pk)
    context = {"form": form, **_form_context(organization)}
    status = 422 if form.errors else 200
    return render(request, "campaigns/appointments/new.html", context, status=status)


def _new_initial(request: HttpRequest, organization: Organization) -> dict[str, Any]:
    initial: dict[str, Any] = {"time_zone": organization.timezone, "minutes": 30}
    chosen = DayFilterForm(request.GET)
    if chosen.is_valid():
        if chosen.cleaned_data.get("date"):
            initial["date"] = chosen.cleaned_data["date"]
        if chosen.cleaned_data.get("location"):
            initial["location"] = chosen.cleaned_data["location"]
    return initial


@console_view
@require_http_methods(["GET", "POST"])
def appointment_detail(
    request: HttpRequest, organization: Organization, appointment_id: int
) -> HttpResponse:
    appointment = _appointment_or_404(organization, appointment_id)
    form = AppointmentForm(initial=AppointmentForm.initial_for(appointment), editing=True)
    error = ""
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            if action == "edit":
                form = AppointmentForm(request.POST, editing=True)
                if form.is_valid():
                    appointment_change(
                        appointment=appointment,
                        actor_id=request.user.pk,
                        data=form.appointment_data(status=appointment.status),
                    )
                    messages.success(request, "Saved; its reminders follow the new details.")
                    return redirect("appointments:detail", appointment_id=appointment.pk)
            elif action == "cancel":
                appointment_cancel(
                    organization_id=organization.pk,
                    appointment_id=appointment.pk,
                    actor_id=request.user.pk,
                )
                messages.success(request, ACTIONS["cancel"][1])
                return redirect("appointments:detail", appointment_id=appointment.pk)
            elif action in ACTIONS:
                status, done = ACTIONS[action]
                appointment_change(
                    appointment=appointment,
                    actor_id=request.user.pk,
                    data=appointment_data_of(appointment, status=status),
                )
                messages.success(request, done)
                return redirect("appointments:detail", appointment_id=appointment.pk)
            else:
                error = "Choose what to do with the appointment."
        except AppointmentError as exc:
            if action == "edit":
                form.refused(exc)
            else:
                error = str(exc)[:1].upper() + str(exc)[1:] + "."
    context = {
        "appointment": appointment,
        "form": form,
        "editing": form.is_bound,
        "error": error,
        "ended": appointment.status in ENDED,
        "reply": selectors.reply_state(appointment),
        "timeline": selectors.appointment_timeline(appointment),
        "local_start": selectors.local_label(appointment),
        "other_zone": appointment.time_zone != organization.timezone,
        **_form_context(organization),
    }
    code = 422 if (form.errors or error) else 200
    return render(request, "campaigns/appointments/detail.html", context, status=code)


# --- reminder rules and limits -----------------------------------------------------------------


@console_view
@require_http_methods(["GET", "POST"])
def rules(request: HttpRequest, organization: Organization) -> HttpResponse:
    if refused := managers_only(request):
        return refused
    current = ReminderSettings.objects.filter(organization_id=organization.pk).first()
    if request.method == "POST":
        form = SettingsForm(request.POST, organization_id=organization.pk)
        if form.is_valid():
            reminder_settings_save(
                organization_id=organization.pk,
                actor_id=request.user.pk,
                values=form.cleaned_data,
            )
            messages.success(request, "Reminder settings saved.")
            return redirect("appointments:rules")
    else:
        form = SettingsForm(
            initial=SettingsForm.initial_for(current), organization_id=organization.pk
        )
    context = {
        "types": selectors.appointment_types(organization_id=organization.pk),
        "settings_form": form,
    }
    status = 422 if form.errors else 200
    return render(request, "campaigns/appointments/rules.html", context, status=status)


@console_view
@require_http_methods(["GET", "POST"])
def rule_edit(request: HttpRequest, organization: Organization, rule_id: int) -> HttpResponse:
    """``rule_id`` 0 is a new rule (``?type=`` preselects its appointment type)."""
    if refused := managers_only(request):
        return refused
    rule = None
    if rule_id:
        rule = get_object_or_404(
            ReminderRule.objects.select_related("appointment_type"),
            organization_id=organization.pk,
            pk=rule_id,
        )
    previewing = request.method == "POST" and request.POST.get("preview") == "1"
    if request.method == "POST":
        form = RuleForm(request.POST, organization_id=organization.pk, rule=rule)
    else:
        form = RuleForm(
            organization_id=organization.pk, rule=rule, initial=_rule_initial(request, rule)
        )
    if form.is_bound and not previewing and form.is_valid():
        saved = reminder_rule_save(
            organization_id=organization.pk,
            actor_id=request.user.pk,
            rule=rule,
            type_id=form.type_id(),
            new_type=form.cleaned_data.get("new_type", ""),
            fields=form.rule_fields(),
        )
        messages.success(request, "Reminder rule saved.")
        return redirect(f"{reverse('appointments:rules')}#type-{saved.appointment_type_id}")
    context = {"form": form, "rule": rule, **_preview(form, organization)}
    if previewing and is_htmx(request):
        return render(request, "campaigns/appointments/_rule_preview.html", context)
    status = 422 if form.errors and not previewing else 200
    return render(request, "campaigns/appointments/rule_edit.html", context, status=status)


def _rule_initial(request: HttpRequest, rule: ReminderRule | None) -> dict[str, Any]:
    if rule is not None:
        return RuleForm.initial_for(rule)
    initial: dict[str, Any] = {"timing": "days", "days_before": 2, "is_active": True}
    initial["template"] = (
        "Hi {first_name}, a reminder of your appointment on {date} at {time} at {location}."
    )
    chosen = request.GET.get("type", "")
    if chosen.isdigit() and len(chosen) <= 12:
        initial["appointment_type"] = int(chosen)
    return initial


def _preview(form: RuleForm, organization: Organization) -> dict[str, Any]:
    """The text as a patient would get it, its segments and warnings, and what the rule
    would do over the next two weeks."""
    now = timezone.now()
    draft = form.draft()
    type_id = form.type_id() if form.is_bound else _initial_type(form)
    sample = selectors.sample_appointment(organization_id=organization.pk, type_id=type_id, now=now)
    who, text = sample_text(draft.template, sample, organization.timezone, now)
    return {
        "sample_who": who,
        "sample": text,
        "segments": count_segments(text),
        "length": len(text),
        "max_body": settings.OPENLINE_MAX_BODY_CHARS,
        "warnings": template_warnings(draft.template, sample_text=text),
        "merge_fields": MERGE_FIELD_HELP,
        "merge_names": MERGE_FIELDS,
        "forecast": selectors.rule_preview(
            organization_id=organization.pk, rule=draft, type_id=type_id, now=now
        ),
    }


def _initial_type(form: RuleForm) -> int | None:
    if form.rule is not None:
        return form.rule.appointment_type_id
    chosen = form.initial.get("appointment_type")
    return chosen if isinstance(chosen, int) else None
