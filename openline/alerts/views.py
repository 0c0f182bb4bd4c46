"""Alert pages: an inbox's alert policy with its calculator and the log (admins), and each
person's own alert phone, permission and preference (everyone)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from openline.alerts import selectors
from openline.alerts.forms import PolicyForm, ProfileForm
from openline.alerts.services import (
    alert_policy_set,
    alert_profile_set,
    alert_readiness,
    policy_for,
    profile_for,
)
from openline.alerts.sweep import permits_sms, policy_plan
from openline.console.views.common import console_view
from openline.core.models import Organization, Role
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
    if request.method == "POST" and number is not None and form.is_valid():
        try:
            alert_policy_set(number=number, actor_id=request.user.pk, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Alert settings saved for {number.label}.")
            return redirect(f"{request.path}?inbox={number.pk}")
    context = {
        "inboxes": Number.objects.filter(organization=organization, is_active=True).order_by("pk"),
        "number": number,
        "form": form,
        "log": selectors.alert_log(organization_id=organization.pk),
        **(_calculation(organization, number, form) if number else {}),
    }
    status = 422 if request.method == "POST" else 200
    return render(request, "alerts/settings.html", context, status=status)


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
def my_alerts(request: HttpRequest, organization: Organization) -> HttpResponse:
    profile = profile_for(organization_id=organization.pk, user_id=request.user.pk)
    permitted = bool(profile.mobile) and permits_sms(
        organization_id=organization.pk, phone=profile.mobile
    )
    form = ProfileForm(request.POST or None, instance=profile, initial={"permit": permitted})
    if request.method == "POST" and form.is_valid():
        try:
            alert_profile_set(
                organization_id=organization.pk,
                organization_name=organization.name,
                user_id=request.user.pk,
                mobile=form.cleaned_data["mobile"],
                permit=form.cleaned_data["permit"],
                new_conversation_sms=form.cleaned_data["new_conversation_sms"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, "Alert settings saved.")
            return redirect("alerts:mine")
    context = {
        "form": form,
        "missing": alert_readiness(organization_id=organization.pk, user_id=request.user.pk),
    }
    return render(request, "alerts/mine.html", context, status=422 if form.errors else 200)
