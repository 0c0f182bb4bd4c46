"""What every staff page shares, whichever app it belongs to (console, availability, alerts,
the phone simulator): ``console_view`` (signed in, member of an organization, the
organization's time zone) and small helpers for lists, forms and htmx."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from functools import wraps
from typing import Any, Concatenate, ParamSpec
from urllib.parse import urlsplit

from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.utils import timezone

from openline.core.models import Organization

P = ParamSpec("P")
OrgView = Callable[Concatenate[HttpRequest, Organization, P], HttpResponseBase]

PAGE_SIZE = 50
# Rendered by name: the staff pages' shell (and this page) belong to the console's templates.
NO_ORGANIZATION_TEMPLATE = "console/no_organization.html"
FORBIDDEN_TEMPLATE = "console/forbidden.html"


def managers_only(request: HttpRequest) -> HttpResponse | None:
    """The "forbidden" page for a member who is not a supervisor or admin; None for one
    who is (``if refused := managers_only(request): return refused``)."""
    if not request.membership.can_manage:  # type: ignore[attr-defined]
        return render(request, FORBIDDEN_TEMPLATE, status=403)
    return None


def is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def console_view(view: OrgView[P]) -> Callable[Concatenate[HttpRequest, P], HttpResponseBase]:
    @wraps(view)
    def wrapped(request: HttpRequest, /, *args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return _login_redirect(request)
        organization: Organization | None = getattr(request, "organization", None)
        if organization is None:
            return render(request, NO_ORGANIZATION_TEMPLATE, status=403)
        with timezone.override(zoneinfo.ZoneInfo(organization.timezone)):
            return view(request, organization, *args, **kwargs)

    return wrapped


def _login_redirect(request: HttpRequest) -> HttpResponse:
    """A background htmx request (the 2-second poll) must not swap the login page into
    the thread: tell htmx to send the whole page there instead."""
    if not is_htmx(request):
        return redirect_to_login(request.get_full_path())
    page = urlsplit(request.headers.get("HX-Current-URL", "/"))
    login = redirect_to_login(page.path or "/")
    return HttpResponse(status=204, headers={"HX-Redirect": login["Location"]})


def paginate(request: HttpRequest, items: Any) -> Any:
    return Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))


def sentence(exc: Exception) -> str:
    """A service's error message as a sentence for a form."""
    text = str(exc)
    return text[:1].upper() + text[1:]
