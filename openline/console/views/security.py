"""The personal security page (second factor, recovery codes, password, login history), the
second-factor pages of signing in (verify, set up), and an admin's view of a member's
sign-ins and their lost-phone reset."""

from __future__ import annotations

from typing import Any, cast

import django_otp
import segno
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.forms import PasswordChangeForm
from django.contrib.auth.views import PasswordChangeView, redirect_to_login
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from openline.console.forms import ConsoleForm
from openline.core import second_factor as sf
from openline.core import signins
from openline.core.models import Membership, Organization, Role, User
from openline.core.web import console_view

FORBIDDEN = "console/forbidden.html"


class CodeForm(ConsoleForm):
    code = forms.CharField(
        max_length=20,
        label="Code from your authenticator app",
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "autofocus": True}
        ),
    )


class RecoveryForm(ConsoleForm):
    recovery_code = forms.CharField(
        max_length=40,
        label="Recovery code",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )


class PasswordConfirmForm(ConsoleForm):
    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self) -> str:
        password: str = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise ValidationError("That is not your password.")
        return password


def _me(request: HttpRequest) -> User:
    """The signed-in person (the views below are for signed-in people only)."""
    return cast(User, request.user)


def _where(request: HttpRequest) -> dict[str, Any]:
    return {
        "ip_address": request.META.get("REMOTE_ADDR") or None,
        "user_agent": str(request.META.get("HTTP_USER_AGENT", ""))[: signins.USER_AGENT_LENGTH],
    }


def _next(request: HttpRequest) -> str:
    """Where to go once the second factor is done: the page the person asked for, if it is
    one of ours."""
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    safe = url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return wanted if wanted and safe else reverse("console:home")


def _passed(request: HttpRequest, device: Any) -> None:
    """The session passed the second factor with ``device``; a new session key, as at sign-in."""
    django_otp.login(request, device)
    request.session.cycle_key()
    request.session.pop(sf.NO_DEVICE_AT, None)


# --- signing in: verify and set up ------------------------------------------------------------


def verify(request: HttpRequest) -> HttpResponseBase:
    """After the password: a code from the app, or a recovery code."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if request.user.is_verified() or not sf.has_confirmed_device(request.user.pk):  # type: ignore[attr-defined]
        return redirect(_next(request))
    recovery = "recovery_code" in request.POST
    code_form = CodeForm(request.POST if request.method == "POST" and not recovery else None)
    recovery_form = RecoveryForm(request.POST if recovery else None)
    form = recovery_form if recovery else code_form
    if request.method == "POST" and form.is_valid():
        field = "recovery_code" if recovery else "code"
        try:
            device = sf.second_factor_verify(
                user=_me(request),
                code=form.cleaned_data[field],
                recovery=recovery,
                **_where(request),
            )
        except ValidationError as exc:
            form.add_error(field, exc)
        else:
            _passed(request, device)
            if recovery:
                _warn_codes_left(request)
            return redirect(_next(request))
    context = {
        "code_form": code_form,
        "recovery_form": recovery_form,
        "recovery": recovery,
        "next": _next(request),
        "has_app": sf.second_factor_enabled(request.user.pk),
        "issuer": settings.OTP_TOTP_ISSUER,
        "membership": None,  # no console socket on this page
    }
    status = 422 if request.method == "POST" else 200
    return render(request, "console/security/verify.html", context, status=status)


def _warn_codes_left(request: HttpRequest) -> None:
    left = sf.recovery_codes_left(_me(request).pk)
    if left <= 3:
        messages.warning(
            request,
            f"You have {left} recovery codes left. Make new ones on your security page.",
        )


def setup(request: HttpRequest) -> HttpResponseBase:
    """Set up an authenticator app: scan the QR code (or type the secret), confirm with a
    code; then the recovery codes, shown once."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not request.user.is_verified() and sf.has_confirmed_device(request.user.pk):  # type: ignore[attr-defined]
        # A new app replaces the old one: only after passing the old one.
        return redirect_to_login(_next(request), login_url=reverse("security:verify"))
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            device, codes = sf.totp_confirm(
                user=_me(request),
                device_id=_int(request.POST.get("device")),
                code=form.cleaned_data["code"],
            )
        except ValidationError as exc:
            form.add_error("code", exc)
        else:
            _passed(request, device)
            return _show_codes(request, codes, first=True)
    device, uri = sf.totp_begin(user=_me(request))
    context = {
        "form": form,
        "device": device,
        "qr": segno.make(uri, error="m").svg_inline(scale=5, border=2, title="QR code"),
        "secret": _grouped(uri),
        "required": sf.second_factor_required(getattr(request, "membership", None)),
        "next": _next(request),
        "membership": None,
    }
    status = 422 if request.method == "POST" else 200
    return render(request, "console/security/setup.html", context, status=status)


def _int(value: str | None) -> int:
    try:
        return int(value or "")
    except ValueError:
        return 0


def _grouped(uri: str) -> str:
    """The base32 secret from the otpauth:// address, in groups of four for typing."""
    from urllib.parse import parse_qs, urlsplit

    secret = parse_qs(urlsplit(uri).query).get("secret", [""])[0]
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def _show_codes(request: HttpRequest, codes: list[str], *, first: bool) -> HttpResponse:
    after = _next(request) if first else reverse("security:home")
    context = {"codes": codes, "first": first, "next": after, "membership": None}
    return render(request, "console/security/codes.html", context)


# --- the personal page ----------------------------------------------------------------------


@console_view
def home(request: HttpRequest, organization: Organization) -> HttpResponse:
    return _home(request, organization)


def _home(
    request: HttpRequest,
    organization: Organization,
    disable_form: PasswordConfirmForm | None = None,
    status: int = 200,
) -> HttpResponse:
    user_id = _me(request).pk
    enabled = sf.second_factor_enabled(user_id)
    required = any(
        sf.second_factor_required(m)
        for m in Membership.objects.select_related("organization").filter(
            user_id=user_id, is_active=True
        )
    )
    context = {
        "enabled": enabled,
        "required": required,
        "codes_left": sf.recovery_codes_left(user_id) if enabled else 0,
        "disable_form": disable_form or PasswordConfirmForm(user=request.user),
        "history": signins.sign_in_history(organization_id=organization.pk, user_id=user_id),
    }
    return render(request, "console/security/home.html", context, status=status)


@console_view
@require_POST
def recovery_codes(request: HttpRequest, organization: Organization) -> HttpResponse:
    try:
        codes = sf.recovery_codes_regenerate(user=_me(request))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("security:home")
    return _show_codes(request, codes, first=False)


@console_view
@require_POST
def disable(request: HttpRequest, organization: Organization) -> HttpResponse:
    form = PasswordConfirmForm(request.POST, user=request.user)
    if form.is_valid():
        try:
            sf.second_factor_disable(user=_me(request))
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, "Your second factor is off.")
            return redirect("security:home")
    return _home(request, organization, disable_form=form, status=422)


class _PasswordChange(PasswordChangeView):
    """Django's password change (its validators), audited; this session stays signed in
    and every other one ends (the password is part of the session hash)."""

    template_name = "console/security/password.html"
    success_url = reverse_lazy("security:home")
    form_class = PasswordChangeForm

    def get_form(self, form_class: Any = None) -> Any:
        form = super().get_form(form_class)
        form.label_suffix = ""
        return form

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        signins.password_changed(user_id=_me(self.request).pk, **_where(self.request))
        messages.success(self.request, "Your password is changed. Other browsers are signed out.")
        return response

    def form_invalid(self, form: Any) -> HttpResponse:
        response = super().form_invalid(form)
        response.status_code = 422
        return response


password = console_view(_PasswordChange.as_view())


# --- admins: a member's sign-ins, and resetting a lost phone ---------------------------------


def _member(request: HttpRequest, organization: Organization, membership_id: int) -> Membership:
    try:
        return Membership.objects.select_related("user").get(
            organization=organization, pk=membership_id
        )
    except Membership.DoesNotExist:
        raise Http404("No such member") from None


def _is_admin(request: HttpRequest) -> bool:
    return request.membership.role == Role.ADMIN  # type: ignore[attr-defined,no-any-return]


@console_view
def member_sign_ins(
    request: HttpRequest, organization: Organization, membership_id: int
) -> HttpResponse:
    if not _is_admin(request):
        return render(request, FORBIDDEN, status=403)
    member = _member(request, organization, membership_id)
    history = signins.sign_in_history(organization_id=organization.pk, user_id=member.user_id)
    context = {"member": member, "history": history}
    return render(request, "console/security/member_sign_ins.html", context)


@console_view
def member_reset(
    request: HttpRequest, organization: Organization, membership_id: int
) -> HttpResponse:
    """GET: the confirmation; POST: remove the member's second factor and sign them out."""
    if not _is_admin(request):
        return render(request, FORBIDDEN, status=403)
    member = _member(request, organization, membership_id)
    error = ""
    if request.method == "POST":
        try:
            sf.second_factor_reset_by_admin(
                organization=organization, membership_id=member.pk, actor_id=_me(request).pk
            )
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            messages.success(
                request,
                f"{member.user}'s second factor was removed and they were signed out "
                "everywhere. They sign in with their password"
                + (" and set up a new one." if sf.second_factor_required(member) else "."),
            )
            return redirect("console:team")
    context = {
        "member": member,
        "has_device": sf.has_confirmed_device(member.user_id),
        "error": error,
    }
    status = 422 if error else 200
    return render(request, "console/security/member_reset.html", context, status=status)
