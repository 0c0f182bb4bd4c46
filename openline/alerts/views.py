"""Alert pages: an inbox's alert policy with its calculator and the log (admins), and each
person's own alert phone, permission and preference (everyone). A phone typed on either
page is confirmed with a code texted to it, typed back here."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from openline.alerts import selectors
from openline.alerts.confirmation import CodeRefused, code_state, pending_code
from openline.alerts.forms import CodeForm, PolicyForm, ProfileForm
from openline.alerts.models import AlertPolicy, AlertProfile
from openline.alerts.services import (
    alert_policy_code_resend,
    alert_policy_confirm,
    alert_policy_set,
    alert_profile_code_resend,
    alert_profile_confirm,
    alert_profile_set,
    alert_readiness,
    permit_shown,
    policy_for,
    profile_for,
)
from openline.alerts.sweep import policy_plan
from openline.core.models import Organization, Role
from openline.core.web import console_view
from openline.providers.models import Number


def _inbox(request: HttpRequest, organization: Organization) -> Number | None:
    inboxes = Number.objects.filter(organization=organization, is_active=True).order_by("pk")
    chosen = request.GET.get("inbox") or request.POST.get("inbox") or ""
    return (inboxes.filter(pk=chosen).first() if chosen.isdigit() else None) or inboxes.first()


def _forbidden(request: HttpRequest) -> HttpResponse:
    return render(request, "console/forbidden.html", status=403)


@console_view
def alert_settings(request: HttpRequest, organization: Organization) -> HttpResponse:
    if request.membership.role != Role.ADMIN:  # type: ignore[attr-defined]
        return _forbidden(request)
    number = _inbox(request, organization)
    policy = policy_for(number) if number else None
    form = PolicyForm(request.POST or None, instance=policy)
    refused = None
    if request.method == "POST" and number is not None and form.is_valid():
        try:
            saved = alert_policy_set(number=number, actor_id=request.user.pk, **form.cleaned_data)
        except CodeRefused as exc:
            refused = exc
            form.add_error("after_hours_phone", exc)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, _policy_saved(number, saved))
            return redirect(f"{request.path}?inbox={number.pk}")
    context = _settings_context(request, organization, number, form)
    status = refused.status if refused else 422 if request.method == "POST" else 200
    return render(request, "alerts/settings.html", context, status=status)


def _policy_saved(number: Number, policy: AlertPolicy) -> str:
    if policy.after_hours_phone and not policy.after_hours_confirmed:
        return (
            f"Alert settings saved for {number.label}. After-hours notices start once "
            f"{policy.after_hours_phone} is confirmed with the code texted to it: type it below."
        )
    return f"Alert settings saved for {number.label}."


def _typed_code(code_form: CodeForm) -> str:
    if not code_form.is_valid():
        raise CodeRefused(code_form.errors["code"][0])
    return str(code_form.cleaned_data["code"])


def _settings_context(
    request: HttpRequest,
    organization: Organization,
    number: Number | None,
    form: PolicyForm,
    code_error: str = "",
) -> dict:
    saved = policy_for(number) if number else None
    pending = pending_code(saved) if saved is not None else None
    return {
        "inboxes": Number.objects.filter(organization=organization, is_active=True).order_by("pk"),
        "number": number,
        "form": form,
        "saved": saved,
        "code_form": CodeForm(),
        "code_error": code_error,
        "pending": pending,
        "code_state": code_state(pending),
        "log": selectors.alert_log(organization_id=organization.pk),
        **(_calculation(organization, number, form) if number else {}),
    }


def _calculation(organization: Organization, number: Number, form: PolicyForm) -> dict:
    """The calculator for the settings on the form (as typed, when they are valid)."""
    policy = form.instance
    if form.is_bound and form.is_valid():
        policy = form.save(commit=False)
    rows, staff, oncall = selectors.calculator(
        organization_id=organization.pk, number_id=number.pk, plan=policy_plan(policy)
    )
    return {"plan": rows, "staff_now": staff, "oncall_now": oncall, "policy": policy}


@console_view
def alert_calculator(request: HttpRequest, organization: Organization) -> HttpResponse:
    """The calculator alone, re-drawn as an admin changes the form (htmx)."""
    if request.membership.role != Role.ADMIN:  # type: ignore[attr-defined]
        return _forbidden(request)
    number = _inbox(request, organization)
    if number is None:
        return HttpResponse(status=204)
    form = PolicyForm(request.GET, instance=policy_for(number))
    context = {"number": number, **_calculation(organization, number, form)}
    return render(request, "alerts/_calculator.html", context)


@console_view
@require_POST
def after_hours_confirm(request: HttpRequest, organization: Organization) -> HttpResponse:
    """The code texted to an inbox's after-hours phone, typed by an admin."""
    return _after_hours_action(request, organization, confirm=True)


@console_view
@require_POST
def after_hours_code(request: HttpRequest, organization: Organization) -> HttpResponse:
    """Text a new code to an inbox's after-hours phone."""
    return _after_hours_action(request, organization, confirm=False)


def _after_hours_action(
    request: HttpRequest, organization: Organization, *, confirm: bool
) -> HttpResponse:
    if request.membership.role != Role.ADMIN:  # type: ignore[attr-defined]
        return _forbidden(request)
    number = _inbox(request, organization)  # only this organization's inboxes
    if number is None:
        return redirect("alerts:settings")
    code_form = CodeForm(request.POST)
    try:
        if not confirm:
            alert_policy_code_resend(number=number, actor_id=request.user.pk)
            done = "We texted a new code to the after-hours phone."
        else:
            alert_policy_confirm(
                number=number, actor_id=request.user.pk, code=_typed_code(code_form)
            )
            done = "After-hours phone confirmed: notices go to it from now on."
    except CodeRefused as exc:
        form = PolicyForm(instance=policy_for(number))
        context = _settings_context(request, organization, number, form, exc.messages[0])
        return render(request, "alerts/settings.html", context, status=exc.status)
    messages.success(request, done)
    return redirect(f"{reverse('alerts:settings')}?inbox={number.pk}")


def _mine_context(
    request: HttpRequest, organization: Organization, form: ProfileForm, code_error: str = ""
) -> dict:
    profile = profile_for(organization_id=organization.pk, user_id=request.user.pk)
    pending = pending_code(profile)
    return {
        "form": form,
        "profile": profile,
        "pending": pending,
        "code_state": code_state(pending),
        "code_form": CodeForm(),
        "code_error": code_error,
        "missing": alert_readiness(organization_id=organization.pk, user_id=request.user.pk),
    }


def _profile_form(profile: AlertProfile, data: QueryDict | None = None) -> ProfileForm:
    return ProfileForm(data, instance=profile, initial={"permit": permit_shown(profile)})


@console_view
def my_alerts(request: HttpRequest, organization: Organization) -> HttpResponse:
    profile = profile_for(organization_id=organization.pk, user_id=request.user.pk)
    form = _profile_form(profile, request.POST or None)
    refused = None
    if request.method == "POST" and form.is_valid():
        try:
            saved = alert_profile_set(
                organization_id=organization.pk,
                organization_name=organization.name,
                user_id=request.user.pk,
                mobile=form.cleaned_data["mobile"],
                permit=form.cleaned_data["permit"],
                new_conversation_sms=form.cleaned_data["new_conversation_sms"],
            )
        except CodeRefused as exc:
            refused = exc
            form.add_error(None, exc)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, _profile_saved(saved.code_sent, saved.profile))
            return redirect("alerts:mine")
    context = _mine_context(request, organization, form)
    status = refused.status if refused else 422 if form.errors else 200
    return render(request, "alerts/mine.html", context, status=status)


def _profile_saved(code_sent: bool, profile: AlertProfile) -> str:
    if code_sent:
        return (
            f"Alert settings saved. We texted a code to {profile.mobile}: type it below to "
            "confirm your number. Alerts start once it is confirmed."
        )
    return "Alert settings saved."


@console_view
@require_POST
def my_alerts_confirm(request: HttpRequest, organization: Organization) -> HttpResponse:
    """The code texted to the person's own phone (their profile in this organization)."""
    try:
        note = alert_profile_confirm(
            organization_id=organization.pk,
            organization_name=organization.name,
            user_id=request.user.pk,
            code=_typed_code(CodeForm(request.POST)),
        )
    except CodeRefused as exc:
        return _mine_refused(request, organization, exc)
    if note:
        messages.warning(request, f"Your number is confirmed, but {note}.")
    else:
        messages.success(request, "Your number is confirmed: alerts can reach it now.")
    return redirect("alerts:mine")


@console_view
@require_POST
def my_alerts_code(request: HttpRequest, organization: Organization) -> HttpResponse:
    """Text a new code to the person's own unconfirmed phone."""
    try:
        alert_profile_code_resend(
            organization_id=organization.pk,
            organization_name=organization.name,
            user_id=request.user.pk,
        )
    except CodeRefused as exc:
        return _mine_refused(request, organization, exc)
    messages.success(request, "We texted you a new code.")
    return redirect("alerts:mine")


def _mine_refused(
    request: HttpRequest, organization: Organization, exc: CodeRefused
) -> HttpResponse:
    profile = profile_for(organization_id=organization.pk, user_id=request.user.pk)
    context = _mine_context(request, organization, _profile_form(profile), exc.messages[0])
    return render(request, "alerts/mine.html", context, status=exc.status)
