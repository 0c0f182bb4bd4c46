"""What the shift pages share: reading form values, the way back, refusals."""

from __future__ import annotations

from datetime import UTC, date, datetime
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from openline.availability.services import ShiftError
from openline.core.web import sentence


def parse_date(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw or "")
    except ValueError:
        return None


def parse_int(raw: str | None) -> int | None:
    raw = (raw or "").strip()
    return int(raw) if raw.isdigit() else None


def parse_moment(raw: str | None) -> datetime:
    """An occurrence start posted back by a form (ISO 8601 with offset)."""
    try:
        moment = datetime.fromisoformat(raw or "")
    except ValueError:
        raise Http404("no such occurrence") from None
    if moment.tzinfo is None:
        raise Http404("no such occurrence")
    return moment.astimezone(UTC)


def is_manager(request: HttpRequest) -> bool:
    return bool(request.membership.can_manage)  # type: ignore[attr-defined]


def week_url(week: date | None = None, inbox: int | None = None) -> str:
    query = {k: v for k, v in (("week", week and week.isoformat()), ("inbox", inbox)) if v}
    return reverse("availability:shifts") + (f"?{urlencode(query)}" if query else "")


def safe_next(request: HttpRequest, target: str | None) -> str:
    """A page of this site to return to (never another site or a javascript: URL)."""
    target = target or ""
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return week_url()
    return target


def go_back(request: HttpRequest) -> HttpResponse:
    return redirect(safe_next(request, request.POST.get("next")))


def refused(request: HttpRequest, exc: ShiftError) -> HttpResponse:
    """Not found and forbidden are answered as such; other refusals go back with a note."""
    if exc.code == "not_found":
        raise Http404(str(exc))
    if exc.code == "forbidden":
        return render(request, "console/forbidden.html", status=403)
    messages.error(request, sentence(exc))
    return go_back(request)
