"""Signing in and staying signed in: failed sign-ins throttled per account and per address
(django-axes, with the handler below), and the limits of a console session (the
organization's idle timeout, 12 hours from signing in at most).

Growing pause. axes locks a client out at ``AXES_FAILURE_LIMIT`` failures for a cool-off
period; a cool-off callable alone cannot grow with the failures and still count them over a
longer window than the pause (axes counts only the failures inside the cool-off, so a slow
guesser would never reach the limit). So this handler remembers failures for an hour after
the latest one (``AXES_COOLOFF_TIME``) and pauses signing in for ``first pause × 2^(failures −
limit)``, at most the longest pause: 1, 2, 4 … 60 minutes. Counted per account (the e-mail,
lower-cased) and per address; an account's failures are forgotten when it signs in."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from importlib import import_module
from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username, get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from openline.core.models import Organization
from openline.core.services import audit_record

# --- failed sign-ins ----------------------------------------------------------------------------


def sign_in_name(request: HttpRequest, credentials: Mapping[str, Any] | None = None) -> str:
    """The account a sign-in is for, as axes counts it: "Ana@Example.org" and
    "ana@example.org " are one account (a guesser must not get fresh tries by changing case)."""
    if credentials and credentials.get("username"):
        name = credentials["username"]
    else:
        name = request.POST.get("username", "") if request.method == "POST" else ""
    return str(name or "").strip().lower()


def pause_after(failures: int) -> timedelta:
    """How long signing in pauses after ``failures`` failures (at or past the limit)."""
    doublings = min(max(failures - settings.AXES_FAILURE_LIMIT, 0), 16)
    pause: timedelta = settings.OPENLINE_SIGN_IN_FIRST_PAUSE * 2**doublings
    return min(pause, settings.OPENLINE_SIGN_IN_LONGEST_PAUSE)


def _remembered_since(request: HttpRequest | None) -> datetime:
    now = getattr(request, "axes_attempt_time", None) or timezone.now()
    return now - settings.AXES_COOLOFF_TIME


class SignInAttempts(AxesDatabaseHandler):
    """axes' database handler, with failures remembered for an hour and a pause that grows
    with them (see the module docstring)."""

    def get_user_attempts(
        self, request: HttpRequest, credentials: dict[str, Any] | None = None
    ) -> list[QuerySet[AccessAttempt]]:
        since = _remembered_since(request)
        return [
            attempts.filter(attempt_time__gte=since)
            for attempts in self.filter_user_attempts(request, credentials)
        ]

    def is_locked(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> bool:
        return self.wait(request, credentials) > timedelta(0)

    def wait(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> timedelta:
        """How much longer signing in stays paused for this account and this address."""
        now = getattr(request, "axes_attempt_time", None) or timezone.now()
        limit = get_failure_limit(request, credentials)
        longest = timedelta(0)
        for attempts in self.get_user_attempts(request, credentials):
            tally = attempts.aggregate(
                failures=Sum("failures_since_start"), last=Max("attempt_time")
            )
            failures = tally["failures"] or 0
            if failures >= limit:
                longest = max(longest, tally["last"] + pause_after(failures) - now)
        return longest

    def clean_expired_user_attempts(
        self, request: HttpRequest | None = None, credentials: dict[str, Any] | None = None
    ) -> int:
        count, _ = AccessAttempt.objects.filter(
            attempt_time__lt=_remembered_since(request)
        ).delete()
        return count

    def user_logged_in(self, sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
        """Every sign-in (the sign-in page, ``client.force_login``) starts the session's
        clocks: here, because axes already hears every one."""
        super().user_logged_in(sender, request, user, **kwargs)
        session_start(request.session, timezone.now(), again=True)

    def reset_user_attempts(
        self, request: HttpRequest, credentials: dict[str, Any] | None = None
    ) -> int:
        """Signing in forgives the account's own typos, not failures against other accounts
        from the same address (axes would clear the address too)."""
        count, _ = AccessAttempt.objects.filter(
            username=get_client_username(request, credentials)
        ).delete()
        return count


class SignInBackend(AxesStandaloneBackend):
    """axes' backend, which refuses a paused sign-in before any password is checked. A
    sign-in without a request is not one from the web (``client.login`` in tests, a shell):
    there is no address to count, so it is left to the model backend."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if request is not None:
            super().authenticate(request, username, password, **kwargs)


def sign_in_paused(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """axes' lockout answer: the sign-in page again, saying how long to wait (429)."""
    from axes.handlers.proxy import AxesProxyHandler

    handler = AxesProxyHandler.get_implementation()
    wait = handler.wait(request) if isinstance(handler, SignInAttempts) else pause_after(0)
    minutes = max(1, math.ceil(wait.total_seconds() / 60))
    return render(
        request,
        "console/login.html",
        {
            "paused_minutes": minutes,
            "username": sign_in_name(request),
            "next": request.POST.get("next", ""),
        },
        status=429,
    )


# --- session limits -----------------------------------------------------------------------------

SIGNED_IN_AT = "openline.signed_in_at"
ACTIVE_AT = "openline.active_at"
# Activity is written to the session at most this often: the idle timeout is then exact to
# within a minute, and a busy console does not write its session on every click.
ACTIVITY_RESOLUTION = timedelta(seconds=60)
IDLE = "idle"
LIFETIME = "lifetime"


def session_start(session: Any, now: datetime, *, again: bool = False) -> None:
    """Mark a session as signed in ``now``: on every sign-in (``again``: signing in once
    more restarts the clocks), or on the first request of a session signed in before this
    rule existed."""
    if again or SIGNED_IN_AT not in session:
        session[SIGNED_IN_AT] = now.timestamp()
        session[ACTIVE_AT] = now.timestamp()


def session_touch(session: Any, now: datetime) -> None:
    """Record activity (see SessionLimitsMiddleware for what counts)."""
    last = session.get(ACTIVE_AT)
    if last is None or now.timestamp() - last >= ACTIVITY_RESOLUTION.total_seconds():
        session[ACTIVE_AT] = now.timestamp()


def session_end_reason(session: Mapping[str, Any], idle_minutes: int, now: datetime) -> str | None:
    """Why this signed-in session is over (IDLE or LIFETIME), or None while it is not. A
    session from before this rule has no marks yet: not over (it is marked now)."""
    signed_in = session.get(SIGNED_IN_AT)
    if signed_in is None:
        return None
    moment = now.timestamp()
    if moment - signed_in >= settings.OPENLINE_SESSION_LIFETIME.total_seconds():
        return LIFETIME
    if moment - session.get(ACTIVE_AT, signed_in) >= idle_minutes * 60:
        return IDLE
    return None


def idle_minutes_for(organization: Organization | None) -> int:
    if organization is None:
        return Organization.DEFAULT_IDLE_TIMEOUT_MINUTES
    return organization.idle_timeout_minutes


def end_message(reason: str, idle_minutes: int) -> str:
    if reason == LIFETIME:
        hours = int(settings.OPENLINE_SESSION_LIFETIME.total_seconds() // 3600)
        return (
            f"For safety, a sign-in lasts at most {hours} hours, so you were signed out. "
            "Please sign in again to go on."
        )
    return (
        f"You were signed out after {idle_minutes} minutes without activity, so nobody else "
        "could read the console. Please sign in again to go on."
    )


def stored_session_over(session_key: str | None, idle_minutes: int, now: datetime) -> bool:
    """For the console socket: whether its sign-in has ended (read afresh from the session
    store, where page requests record activity)."""
    if not session_key:
        return True
    data = import_module(settings.SESSION_ENGINE).SessionStore(session_key).load()
    if not data:
        return True  # signed out, or expired in the store
    return session_end_reason(data, idle_minutes, now) is not None


# --- the organization's setting -----------------------------------------------------------------


def organization_set_idle_timeout(
    *, organization: Organization, actor_id: int, minutes: int
) -> Organization:
    """Change how long members stay signed in without activity; audited."""
    low, high = Organization.IDLE_TIMEOUT_BOUNDS
    if not low <= minutes <= high:
        raise ValidationError(f"the idle timeout must be between {low} and {high} minutes")
    if organization.idle_timeout_minutes == minutes:
        return organization
    with transaction.atomic():
        organization.idle_timeout_minutes = minutes
        organization.save(update_fields=["idle_timeout_minutes"])
        audit_record(
            organization_id=organization.pk,
            actor_id=actor_id,
            action="organization.idle_timeout",
            object_type="organization",
            object_id=organization.pk,
        )
    return organization
