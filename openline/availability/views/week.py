"""The week of shifts, and the inboxes' switch and state at the top of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from openline.availability import services
from openline.availability.models import AvailabilityMode
from openline.availability.recurrence import local_day_bounds, week_start
from openline.availability.selectors import Slot, inbox_states, schedule
from openline.availability.services import ShiftError
from openline.availability.views.common import (
    go_back,
    is_manager,
    parse_date,
    parse_int,
    refused,
    week_url,
)
from openline.core.models import Membership, Organization
from openline.core.web import console_view, is_htmx


@dataclass
class Day:
    date: date
    slots: list[Slot]


@require_GET
@console_view
def shifts_week(request: HttpRequest, organization: Organization) -> HttpResponse:
    tz = ZoneInfo(organization.timezone)
    monday = week_start(parse_date(request.GET.get("week")) or timezone.localdate())
    states = inbox_states(organization_id=organization.pk)
    numbers = [state.number for state in states]
    inbox = next((n for n in numbers if n.pk == parse_int(request.GET.get("inbox"))), None)
    start, end = local_day_bounds(monday, 7, tz)
    slots = schedule(
        organization_id=organization.pk,
        start=start,
        end=end,
        number_id=inbox.pk if inbox else None,
    )
    days = [Day(monday + timedelta(days=i), []) for i in range(7)]
    for slot in slots:
        offset = (slot.start.astimezone(tz).date() - monday).days
        if 0 <= offset < 7:  # an overnight shift from last Sunday belongs to last week
            days[offset].slots.append(slot)
    context = {
        "days": days,
        "states": states,
        "numbers": numbers,
        "inbox": inbox,
        "week": monday,
        "previous_url": week_url(monday - timedelta(days=7), inbox and inbox.pk),
        "next_url": week_url(monday + timedelta(days=7), inbox and inbox.pk),
        "today_url": week_url(None, inbox and inbox.pk),
        "members": _members(organization) if is_manager(request) else [],
        "is_manager": is_manager(request),
        "modes": AvailabilityMode.choices,
        "series_weeks": services.SERIES_WEEKS,
    }
    return render(request, "availability/shifts.html", context)


def _members(organization: Organization) -> list[Membership]:
    return list(
        Membership.objects.filter(organization=organization, is_active=True)
        .select_related("user")
        .order_by("user__display_name", "user__email")
    )


@require_GET
@console_view
def inbox_state(request: HttpRequest, organization: Organization) -> HttpResponse:
    """The inboxes' switch and state, re-fetched by the week page every half minute (a
    shift starting or ending changes it without any write to push)."""
    return _states(request, organization)


def _states(request: HttpRequest, organization: Organization) -> HttpResponse:
    context = {
        "states": inbox_states(organization_id=organization.pk),
        "is_manager": is_manager(request),
        "modes": AvailabilityMode.choices,
    }
    return render(request, "availability/_inbox_states.html", context)


@require_POST
@console_view
def inbox_switch(request: HttpRequest, organization: Organization, number_id: int) -> HttpResponse:
    mode = request.POST.get("mode", "")
    try:
        services.availability_set(
            organization_id=organization.pk,
            actor_id=request.user.pk,
            number_id=number_id,
            mode=mode,
            note=request.POST.get("note", ""),
        )
    except ShiftError as exc:
        return refused(request, exc)
    if is_htmx(request):
        return _states(request, organization)
    offline = mode == AvailabilityMode.OFFLINE
    messages.success(request, "Inbox taken offline." if offline else "Inbox back on shifts.")
    return go_back(request)
