"""Every sign-in and failed sign-in, in the audit log of each organization the person works
in (auth.sign_in, auth.sign_in_failed), with the address and browser; and the login history
read back from it. A failed sign-in for an e-mail nobody has belongs to no organization and
is not recorded here (django-axes counts it for throttling)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ua_parser import parse

from openline.core.models import AuditEvent, User
from openline.core.second_factor import remember_no_device
from openline.core.services import audit_person_everywhere

SIGN_IN = "auth.sign_in"
SIGN_IN_FAILED = "auth.sign_in_failed"
HISTORY_ACTIONS = (SIGN_IN, SIGN_IN_FAILED, "auth.second_factor_failed", "auth.recovery_code_used")
HISTORY_LENGTH = 50
USER_AGENT_LENGTH = 300


def _where(request: HttpRequest | None) -> dict[str, Any]:
    """The address (uvicorn has already resolved trusted proxies into REMOTE_ADDR) and the
    browser's self-description, cut to what the audit log keeps."""
    if request is None:
        return {"ip_address": None, "user_agent": ""}
    return {
        "ip_address": request.META.get("REMOTE_ADDR") or None,
        "user_agent": str(request.META.get("HTTP_USER_AGENT", ""))[:USER_AGENT_LENGTH],
    }


def _record(user_id: int, action: str, detail: str, where: dict[str, Any]) -> None:
    audit_person_everywhere(user_id=user_id, action=action, detail=detail, **where)


def on_signed_in(sender: Any, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    """user_logged_in (the sign-in page, and ``client.force_login`` in tests): one event per
    organization; the session notes whether the person has a second factor to pass."""
    _record(user.pk, SIGN_IN, "", _where(request))
    session = getattr(request, "session", None)
    if session is not None:
        remember_no_device(session, user.pk)


def _account(credentials: Mapping[str, Any]) -> User | None:
    name = str(credentials.get("username") or credentials.get("email") or "").strip()
    if not name:
        return None
    exact = User.objects.filter(email=name).first()
    if exact is not None:
        return exact
    matches = list(User.objects.filter(email__iexact=name)[:2])
    return matches[0] if len(matches) == 1 else None


def on_sign_in_failed(
    sender: Any, credentials: Mapping[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    """user_login_failed: a wrong password, or a sign-in refused while signing in is paused
    (django-axes refuses it before the password is checked)."""
    user = _account(credentials)
    if user is None:
        return
    paused = bool(getattr(request, "axes_locked_out", False))
    _record(user.pk, SIGN_IN_FAILED, "signing in paused" if paused else "", _where(request))


# --- login history -------------------------------------------------------------------------


@dataclass(frozen=True)
class SignInEntry:
    at: datetime
    action: str
    succeeded: bool
    ip_address: str | None
    browser: str
    detail: str

    @property
    def label(self) -> str:
        return {
            SIGN_IN: "Signed in",
            SIGN_IN_FAILED: "Wrong password",
            "auth.second_factor_failed": "Wrong second-factor code",
            "auth.recovery_code_used": "Used a recovery code",
        }.get(self.action, self.action)


def browser_name(user_agent: str) -> str:
    """ "Chrome 130 on Linux" from a User-Agent header; "Unknown browser" when it says
    nothing recognisable."""
    if not user_agent:
        return "Unknown browser"
    result = parse(user_agent)
    agent = result.user_agent
    name = " ".join(p for p in (agent.family, agent.major) if p) if agent else ""
    name = name or "Unknown browser"
    os = result.os
    if os and os.family and os.family != "Other":
        return f"{name} on {' '.join(p for p in (os.family, os.major) if p)}"
    return name


def sign_in_history(*, organization_id: int, user_id: int) -> list[SignInEntry]:
    """The person's last 50 sign-ins, failures and second-factor events as recorded in
    this organization, newest first."""
    events = (
        AuditEvent.objects.filter(
            organization_id=organization_id, actor_id=user_id, action__in=HISTORY_ACTIONS
        )
        .order_by("-created_at", "-id")
        .values_list("created_at", "action", "ip_address", "user_agent", "detail")[:HISTORY_LENGTH]
    )
    return [
        SignInEntry(
            at=at,
            action=action,
            succeeded=action in (SIGN_IN, "auth.recovery_code_used"),
            ip_address=ip,
            browser=browser_name(agent),
            detail=detail,
        )
        for at, action, ip, agent, detail in events
    ]


# --- password ---------------------------------------------------------------------------------


def password_changed(*, user_id: int, ip_address: str | None = None, user_agent: str = "") -> None:
    """Audit a changed password (auth.password_changed) in each of the person's
    organizations; Django's PasswordChangeView has saved it and kept the session signed in."""
    _record(
        user_id, "auth.password_changed", "", {"ip_address": ip_address, "user_agent": user_agent}
    )
