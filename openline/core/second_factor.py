"""A second factor at sign-in: an authenticator app (TOTP) and ten recovery codes, through
django-otp, and the organization's rule on who must have one.

The person's devices are django-otp's own rows: one ``TOTPDevice`` ("Authenticator app";
its secret is kept as django-otp stores it, the hex key in ``otp_totp_totpdevice.key``) and
one ``StaticDevice`` ("Recovery codes") whose tokens are deleted as they are used. A session
that passed the second factor holds the device's id under django-otp's
``DEVICE_ID_SESSION_KEY`` (``django_otp.login``); ``OTPMiddleware`` reads it back as
``request.user.is_verified()``. Both devices throttle wrong codes themselves (1, 2, 4 ...
seconds after each failure, django-otp's default factor of 1): a code sent too soon is
refused unchecked.

``SecondFactorMiddleware`` (after the session limits) sends a signed-in person whose session
has not passed their second factor to the verify page, and a member whose organization
requires one and who has none to the set-up page."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from openline.core.models import Membership, Organization, Role, User
from openline.core.selectors import current_membership, session_organization_id
from openline.core.services import audit_person_everywhere, audit_record

TOTP_NAME = "Authenticator app"
RECOVERY_NAME = "Recovery codes"
RECOVERY_CODE_COUNT = 10
# A set-up page shows the same secret when reloaded (the person may have scanned it
# already), for this long; then a fresh one.
PENDING_SETUP = timedelta(hours=1)
RULES = ("none", "managers", "everyone")

WRONG_CODE = "That code is not right. Type the 6 digits your app shows now."
WRONG_RECOVERY_CODE = "That recovery code is not right, or it was used already."


# --- who must have one, and who has one ------------------------------------------------------


def second_factor_required(membership: Membership | None) -> bool:
    """Whether this membership's organization requires its member to have a second factor:
    "everyone", or "managers" (supervisors and admins)."""
    if membership is None:
        return False
    rule = membership.organization.require_second_factor
    return rule == "everyone" or (rule == "managers" and membership.can_manage)


def second_factor_enabled(user_id: int) -> bool:
    """Whether this person has an authenticator app set up."""
    return bool(TOTPDevice.objects.filter(user_id=user_id, confirmed=True).exists())


def has_confirmed_device(user_id: int) -> bool:
    """Any device that can verify a sign-in (the app, or recovery codes left alone)."""
    return (
        second_factor_enabled(user_id)
        or StaticDevice.objects.filter(user_id=user_id, confirmed=True).exists()
    )


def recovery_codes_left(user_id: int) -> int:
    tokens = StaticToken.objects.filter(device__user_id=user_id, device__confirmed=True)
    return int(tokens.count())


def _session_device(user_id: int, session: Any) -> Device | None:
    persistent_id = session.get(DEVICE_ID_SESSION_KEY) if session is not None else None
    if not persistent_id:
        return None
    device: Device | None = Device.from_persistent_id(persistent_id)
    if device is None or device.user_id != user_id or not device.confirmed:
        return None
    return device


def second_factor_satisfied(user: Any, session: Any) -> bool:
    """Whether this signed-in session may use the console: it passed the person's second
    factor, or the person has none and the organization the session works in requires
    none. Sync (the console socket calls it through database_sync_to_async)."""
    if user is None or not user.is_authenticated:
        return False
    if _session_device(user.pk, session) is not None:
        return True
    if has_confirmed_device(user.pk):
        return False
    membership = current_membership(user.pk, session_organization_id(session))
    return not second_factor_required(membership)


# --- audit --------------------------------------------------------------------------------


# --- setting up the app --------------------------------------------------------------------


def totp_begin(*, user: User) -> tuple[TOTPDevice, str]:
    """A new authenticator app for ``user``, unconfirmed until ``totp_confirm``, and its
    otpauth:// address (for the QR code). A set-up started in the last hour is picked up
    again, so a reload does not change a secret the person may have scanned."""
    since = timezone.now() - PENDING_SETUP
    pending = TOTPDevice.objects.filter(user=user, confirmed=False)
    device = pending.filter(created_at__gte=since).order_by("-pk").first()
    if device is None:
        with transaction.atomic():
            pending.delete()
            device = TOTPDevice.objects.create(user=user, name=TOTP_NAME, confirmed=False)
    return device, device.config_url


def totp_confirm(*, user: User, device_id: int, code: str) -> tuple[TOTPDevice, list[str]]:
    """Confirm the app set up by ``totp_begin`` with a code it shows; it replaces any earlier
    app. Returns the device and new recovery codes (to show once). A wrong code raises
    ValidationError and counts towards the device's throttle."""
    with transaction.atomic():
        device = (
            TOTPDevice.objects.select_for_update()
            .filter(pk=device_id, user=user, confirmed=False)
            .first()
        )
        problem = "expired" if device is None else _check(device, _digits(code), WRONG_CODE)
        if problem is None:
            assert device is not None
            replaced = TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()[0]
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            codes = _new_recovery_codes(user)
            audit_person_everywhere(
                user_id=user.pk,
                action="second_factor.enabled",
                detail="a new authenticator app" if replaced else "authenticator app",
            )
            return device, codes
    if problem == "expired":
        raise ValidationError("This set-up has expired. Start again with the new QR code.")
    audit_person_everywhere(
        user_id=user.pk, action="auth.second_factor_failed", detail="while setting up"
    )
    raise ValidationError(problem)


def _new_recovery_codes(user: User) -> list[str]:
    """Ten fresh recovery codes in the person's one recovery device; the old ones stop
    working. The device itself is kept: a session verified with a recovery code stays so."""
    device = StaticDevice.objects.filter(user=user).order_by("pk").first()
    if device is None:
        device = StaticDevice.objects.create(user=user, name=RECOVERY_NAME, confirmed=True)
    StaticDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    if not device.confirmed:
        device.confirmed = True
        device.save(update_fields=["confirmed"])
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=c) for c in codes])
    return codes


def recovery_codes_regenerate(*, user: User) -> list[str]:
    """Ten new recovery codes (to show once); the old ones stop working."""
    if not second_factor_enabled(user.pk):
        raise ValidationError("Set up an authenticator app first.")
    with transaction.atomic():
        codes = _new_recovery_codes(user)
        audit_person_everywhere(user_id=user.pk, action="recovery_codes.regenerated")
    return codes


# --- checking a code at sign-in ------------------------------------------------------------


def _digits(code: str) -> str:
    return "".join(str(code or "").split())


def _recovery(code: str) -> str:
    return _digits(code).replace("-", "").lower()


def _check(device: TOTPDevice | StaticDevice, token: str, wrong: str) -> str | None:
    """None when ``device`` accepts ``token``; else why not. Call inside a transaction
    holding the device's row lock (concurrent tries must not share a throttle step)."""
    allowed, info = device.verify_is_allowed()
    if not allowed:
        until = (info or {}).get("locked_until")
        seconds = int((until - timezone.now()).total_seconds()) + 1 if until else 1
        return f"Too many wrong codes. Wait {max(seconds, 1)} seconds, then try again."
    return None if device.verify_token(token) else wrong


def second_factor_verify(
    *,
    user: User,
    code: str,
    recovery: bool = False,
    ip_address: str | None = None,
    user_agent: str = "",
) -> TOTPDevice | StaticDevice:
    """The device that accepts ``code`` (from the app, or a recovery code, which then stops
    working); the caller records it in the session (``django_otp.login``). A wrong or
    throttled code is audited (auth.second_factor_failed) and raises ValidationError."""
    model: type[TOTPDevice] | type[StaticDevice] = StaticDevice if recovery else TOTPDevice
    token = _recovery(code) if recovery else _digits(code)
    wrong = WRONG_RECOVERY_CODE if recovery else WRONG_CODE
    with transaction.atomic():
        device: TOTPDevice | StaticDevice | None = (
            model.objects.select_for_update()
            .filter(user=user, confirmed=True)
            .order_by("pk")
            .first()
        )
        problem = _check(device, token, wrong) if device is not None else wrong
    if problem is None:
        assert device is not None
        if recovery:
            left = recovery_codes_left(user.pk)
            audit_person_everywhere(
                user_id=user.pk,
                action="auth.recovery_code_used",
                detail=f"{left} recovery codes left",
                ip_address=ip_address,
                user_agent=user_agent,
            )
        return device
    kind = "recovery code" if recovery else "authenticator code"
    paused = " (paused after wrong codes)" if problem.startswith("Too many") else ""
    audit_person_everywhere(
        user_id=user.pk,
        action="auth.second_factor_failed",
        detail=kind + paused,
        ip_address=ip_address,
        user_agent=user_agent,
    )
    raise ValidationError(problem)


# --- turning it off ------------------------------------------------------------------------


def second_factor_disable(*, user: User) -> None:
    """Remove the person's app and recovery codes, unless an organization they work in
    requires a second factor of them."""
    for membership in Membership.objects.select_related("organization").filter(
        user=user, is_active=True
    ):
        if second_factor_required(membership):
            raise ValidationError(
                f"{membership.organization.name} requires a second factor of you, so it "
                "cannot be turned off. To move it to a new phone, set it up again."
            )
    with transaction.atomic():
        if not _delete_devices(user.pk):
            raise ValidationError("You have no second factor to turn off.")
        audit_person_everywhere(user_id=user.pk, action="second_factor.disabled")


def _delete_devices(user_id: int) -> int:
    return int(
        TOTPDevice.objects.filter(user_id=user_id).delete()[0]
        + StaticDevice.objects.filter(user_id=user_id).delete()[0]
    )


def second_factor_reset_by_admin(
    *, organization: Organization, membership_id: int, actor_id: int
) -> Membership:
    """A lost phone: an admin of ``organization`` removes a member's app and recovery codes
    and ends all their sessions; they sign in with their password and set it up again if
    required. Raises PermissionDenied for a non-admin, Membership.DoesNotExist for a
    membership of another organization, ValidationError if there is nothing to reset."""
    if not Membership.objects.filter(
        organization=organization, user_id=actor_id, role=Role.ADMIN, is_active=True
    ).exists():
        raise PermissionDenied("only an admin can reset a member's second factor")
    membership = Membership.objects.select_related("user").get(
        organization=organization, pk=membership_id
    )
    with transaction.atomic():
        if not _delete_devices(membership.user_id):
            raise ValidationError(f"{membership.user} has no second factor to reset.")
        User.objects.filter(pk=membership.user_id).update(session_epoch=F("session_epoch") + 1)
        audit_record(
            organization_id=organization.pk,
            actor_id=actor_id,
            action="second_factor.reset",
            object_type="membership",
            object_id=membership.pk,
            detail=f"for {membership.user.email}",
        )
    return membership


# --- the organization's rule ----------------------------------------------------------------


def organization_set_second_factor_rule(
    *, organization: Organization, actor_id: int, rule: str
) -> Organization:
    """Who must sign in with a second factor: "none", "managers" (supervisors and admins)
    or "everyone". Members who now need one and have none are led to set it up at their
    next request (SecondFactorMiddleware). Audited."""
    if rule not in RULES:
        raise ValidationError(f"unknown second-factor rule {rule!r}")
    before = organization.require_second_factor
    if before == rule:
        return organization
    with transaction.atomic():
        organization.require_second_factor = rule
        organization.save(update_fields=["require_second_factor"])
        audit_record(
            organization_id=organization.pk,
            actor_id=actor_id,
            action="organization.second_factor_rule",
            object_type="organization",
            object_id=organization.pk,
            detail=f"{before} → {rule}",
        )
    return organization


# --- enforcement ----------------------------------------------------------------------------

# Answered without the second factor: signing in and out, static files, the pages that set
# a password (reset, invitation), health checks, the token-authenticated API, and what
# providers and website visitors call (voice callbacks, webhooks, the chat widget). The
# phone simulator under /sandbox/ is a staff page and is not here.
EXEMPT_PREFIXES = (
    "/login/",
    "/logout/",
    "/account/password-reset/",
    "/invitations/",
    # Someone led to set up a second factor that another of their organizations does not
    # ask for may go and work there instead.
    "/account/organization/",
    "/healthz",
    "/api/",
    "/voice/",
    "/hooks/",
    "/widget.js",
    "/widget-demo/",
    "/chat/",
)
# A session of a person without a second factor re-checks whether they set one up (in
# another browser) this often, not on every request.
NO_DEVICE_AT = "openline.no_second_factor_at"
RECHECK_SECONDS = 60


def remember_no_device(session: Any, user_id: int) -> None:
    """At sign-in: note in the session that the person has no second factor (so their
    first requests need not look), or forget the note if they have one."""
    if has_confirmed_device(user_id):
        session.pop(NO_DEVICE_AT, None)
    else:
        session[NO_DEVICE_AT] = time.time()


def _has_device(request: HttpRequest) -> bool:
    session = request.session
    seen = session.get(NO_DEVICE_AT)
    if isinstance(seen, int | float) and 0 <= time.time() - seen < RECHECK_SECONDS:
        return False
    user_id = request.user.pk
    assert user_id is not None  # signed in
    remember_no_device(session, user_id)
    return NO_DEVICE_AT not in session


def _exempt(path: str) -> bool:
    return path.startswith(settings.STATIC_URL) or path.startswith(EXEMPT_PREFIXES)


def _send_to(request: HttpRequest, url: str) -> HttpResponse:
    """A redirect to ``url`` that brings the person back afterwards; htmx requests get
    HX-Redirect (a fragment must not be swapped for the whole page)."""
    if request.headers.get("HX-Request") != "true":
        next_page = request.get_full_path() if request.method == "GET" else "/"
        return redirect_to_login(next_page, login_url=url)
    page = urlsplit(request.headers.get("HX-Current-URL", "/")).path or "/"
    target = redirect_to_login(page, login_url=url)["Location"]
    return HttpResponse(status=204, headers={"HX-Redirect": target})


def second_factor_refusal(request: HttpRequest) -> HttpResponse | None:
    """Where a signed-in request must go first (verify or set up), or None to go on."""
    if not request.user.is_authenticated or _exempt(request.path_info):
        return None
    if request.user.is_verified():  # type: ignore[attr-defined]
        return None
    verify, setup = reverse("security:verify"), reverse("security:setup")
    if _has_device(request):
        return None if request.path_info == verify else _send_to(request, verify)
    if second_factor_required(getattr(request, "membership", None)):
        return None if request.path_info == setup else _send_to(request, setup)
    return None


class SecondFactorMiddleware:
    """Signed in is not enough: a person with a second factor passes it once per sign-in,
    and a member whose organization requires one sets it up first (see
    ``second_factor_refusal``)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return second_factor_refusal(request) or self.get_response(request)
