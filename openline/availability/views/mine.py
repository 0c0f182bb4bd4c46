"""A person's own shifts and their private calendar feed (no sign-in: the unguessable
token is the key)."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from openline.availability import services
from openline.availability.feed import calendar_bytes
from openline.availability.selectors import feed_for_token, feed_signups, upcoming_shifts
from openline.core.models import Organization
from openline.core.web import console_view


@require_GET
@console_view
def my_shifts(request: HttpRequest, organization: Organization) -> HttpResponse:
    feed = services.calendar_feed_get(organization_id=organization.pk, user_id=request.user.pk)
    context = {
        "signups": upcoming_shifts(organization_id=organization.pk, user_id=request.user.pk),
        "feed_url": request.build_absolute_uri(reverse("availability:feed", args=[feed.token])),
    }
    return render(request, "availability/my_shifts.html", context)


@require_POST
@console_view
def feed_rotate(request: HttpRequest, organization: Organization) -> HttpResponse:
    services.calendar_feed_rotate(organization_id=organization.pk, user_id=request.user.pk)
    messages.success(request, "New calendar address made; the old one no longer works.")
    return redirect("availability:my_shifts")


@require_GET
def feed(request: HttpRequest, token: str) -> HttpResponse:
    calendar = feed_for_token(token)
    if calendar is None:
        raise Http404("no such calendar")
    content = calendar_bytes(calendar, feed_signups(calendar))
    response = HttpResponse(content, content_type="text/calendar; charset=utf-8")
    response["Cache-Control"] = "private, max-age=300"
    response["X-Robots-Tag"] = "noindex"
    return response
