from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from openline.core import security
from openline.core.selectors import (
    active_memberships,
    choose_membership,
    session_organization_id,
)


class OrganizationMiddleware:
    """Puts the signed-in user's membership (and so organization) on the request: the
    organization chosen in this session, else their first; active memberships only."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.membership = None  # type: ignore[attr-defined]
        request.organization = None  # type: ignore[attr-defined]
        request.memberships = []  # type: ignore[attr-defined]
        if request.user.is_authenticated:
            # All of them: the header's organization switcher lists them too.
            memberships = active_memberships(request.user.pk)
            request.memberships = memberships  # type: ignore[attr-defined]
            membership = choose_membership(memberships, session_organization_id(request.session))
            if membership is not None:
                request.membership = membership  # type: ignore[attr-defined]
                request.organization = membership.organization  # type: ignore[attr-defined]
        return self.get_response(request)


# Requests that are the person using OpenLine keep their session alive; requests the page
# makes by itself (live refreshes after socket events, the 30-second safety polls, inbox
# states) must not, or an unattended console would stay signed in forever. Counted: every
# page load and every form or action sent (any method but GET/HEAD/OPTIONS), and htmx/fetch
# requests only when the page says the person pressed a key or the pointer in the last few
# seconds (console.js adds ACTIVITY_HEADER). The console WebSocket never counts.
ACTIVITY_HEADER = "X-OpenLine-Activity"


def counts_as_activity(request: HttpRequest) -> bool:
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        return True
    if request.headers.get(ACTIVITY_HEADER) == "1":
        return True
    if request.headers.get("HX-Request") == "true":
        return False
    # A plain GET counts when it is a page the person opened. A script's fetch() (the phone
    # simulator's once-a-second poll, notification look-ups) says so in Sec-Fetch-Mode;
    # clients that send no such header (older browsers, scripts) count as page loads.
    return request.method == "GET" and request.headers.get("Sec-Fetch-Mode", "navigate") in (
        "navigate",
        "nested-navigate",
    )


class SessionLimitsMiddleware:
    """Signs a member out after the organization's idle timeout or 12 hours after signing
    in. The request then goes on signed out: pages send it to the sign-in page (htmx
    requests get HX-Redirect there), where the reason is shown."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            self._check(request)
        return self.get_response(request)

    def _check(self, request: HttpRequest) -> None:
        now = timezone.now()
        organization = getattr(request, "organization", None)
        idle_minutes = security.idle_minutes_for(organization)
        security.session_start(request.session, now)
        reason = security.session_end_reason(request.session, idle_minutes, now)
        if reason is None:
            if counts_as_activity(request):
                security.session_touch(request.session, now)
            return
        logout(request)
        request.membership = None  # type: ignore[attr-defined]
        request.organization = None  # type: ignore[attr-defined]
        request.memberships = []  # type: ignore[attr-defined]
        messages.info(request, security.end_message(reason, idle_minutes))
