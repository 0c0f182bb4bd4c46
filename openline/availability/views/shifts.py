"""Making, cancelling and deleting shifts; signing up and withdrawing."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.utils import timezone
from django.utils.formats import date_format
from django.views.decorators.http import require_http_methods, require_POST

from openline.availability import services
from openline.availability.forms import ShiftForm
from openline.availability.models import Shift
from openline.availability.recurrence import find, week_start
from openline.availability.services import ShiftError
from openline.availability.views.common import (
    go_back,
    is_manager,
    parse_date,
    parse_int,
    parse_moment,
    refused,
    safe_next,
    week_url,
)
from openline.core.models import Organization
from openline.core.web import console_view, sentence
from openline.providers.models import Number


@require_http_methods(["GET", "POST"])
@console_view
def shift_new(request: HttpRequest, organization: Organization) -> HttpResponse:
    if not is_manager(request):
        return render(request, "console/forbidden.html", status=403)
    numbers = list(Number.objects.filter(organization=organization, is_active=True).order_by("pk"))
    initial = {
        "start_date": parse_date(request.GET.get("date")) or timezone.localdate(),
        "number": str(numbers[0].pk) if numbers else "",
    }
    form = ShiftForm(request.POST or None, numbers=numbers, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            shift = services.shift_create(
                organization_id=organization.pk,
                actor_id=request.user.pk,
                number_id=data["number_id"],
                kind=data["kind"],
                start_date=data["start_date"],
                start_time=data["start_time"],
                duration_minutes=data["duration_minutes"],
                places=data["places"],
                rrule=data["rrule"],
                title=data["title"],
            )
        except ShiftError as exc:
            form.add_error(None, sentence(exc))
        else:
            messages.success(request, "Shift created.")
            first = shift.first_start.astimezone(ZoneInfo(shift.timezone)).date()
            return redirect(week_url(week_start(first), shift.number_id))
    status = 422 if form.errors else 200
    return render(request, "availability/shift_new.html", {"form": form}, status=status)


@require_http_methods(["GET", "POST"])
@console_view
def shift_delete(request: HttpRequest, organization: Organization, shift_id: int) -> HttpResponse:
    """Cancel one date (``occurrence``) or delete the whole shift, after a confirmation."""
    if not is_manager(request):
        return render(request, "console/forbidden.html", status=403)
    shift = Shift.objects.filter(pk=shift_id, organization=organization).first()
    if shift is None:
        raise Http404("no such shift")
    raw = request.POST.get("occurrence") or request.GET.get("occurrence")
    occurrence = find(shift, parse_moment(raw)) if raw else None
    if raw and occurrence is None:
        raise Http404("no such occurrence")
    if request.method == "POST":
        try:
            if occurrence is not None and shift.is_recurring:
                services.shift_cancel_occurrence(
                    organization_id=organization.pk,
                    actor_id=request.user.pk,
                    shift_id=shift.pk,
                    occurrence_start=occurrence.start,
                )
                messages.success(request, "That date is cancelled.")
            else:
                services.shift_delete(
                    organization_id=organization.pk, actor_id=request.user.pk, shift_id=shift.pk
                )
                messages.success(request, "Shift deleted.")
        except ShiftError as exc:
            return refused(request, exc)
        return go_back(request)
    signed_up = shift.signups.filter(occurrence_start=occurrence.start) if occurrence else None
    context = {
        "shift": shift,
        "occurrence": occurrence,
        "signed_up": signed_up.count() if signed_up is not None else shift.signups.count(),
        "next": safe_next(request, request.GET.get("next")),
    }
    return render(request, "availability/shift_delete.html", context)


def _sign(
    request: HttpRequest, organization: Organization, shift_id: int, *, join: bool
) -> HttpResponse:
    call = {
        "organization_id": organization.pk,
        "actor_id": request.user.pk,
        "shift_id": shift_id,
        "occurrence_start": parse_moment(request.POST.get("occurrence")),
        "user_id": parse_int(request.POST.get("user")),
    }
    try:
        if join and request.POST.get("series"):
            series = services.shift_sign_up_series(**call)
            messages.success(request, _series_note(series))
        elif join:
            services.shift_sign_up(**call)
            messages.success(request, "Signed up.")
        else:
            services.shift_withdraw(**call)
            messages.success(request, "Withdrawn.")
    except ShiftError as exc:
        return refused(request, exc)
    return go_back(request)


def _series_note(series: services.SeriesSignUp) -> str:
    note = f"Signed up for {len(series.created)} date{pluralize(len(series.created))}."
    if series.full:
        days = ", ".join(date_format(timezone.localtime(d), "D j M") for d in series.full)
        note += f" Already full: {days}."
    return note


@require_POST
@console_view
def shift_sign_up(request: HttpRequest, organization: Organization, shift_id: int) -> HttpResponse:
    return _sign(request, organization, shift_id, join=True)


@require_POST
@console_view
def shift_withdraw(request: HttpRequest, organization: Organization, shift_id: int) -> HttpResponse:
    return _sign(request, organization, shift_id, join=False)
