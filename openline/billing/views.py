"""The Credits page: balance, spending by day, the ledger; admins add credits here."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from openline.billing.models import CreditKind
from openline.billing.selectors import credit_entries, credit_usage_by_day, credit_usage_chart
from openline.billing.services import (
    MAX_CREDITS_ADDED,
    MAX_NOTE,
    CreditError,
    credit_balance,
    credits_add,
)
from openline.core.models import Organization, Role
from openline.core.web import console_view, paginate, sentence


class AddCreditsForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[(CreditKind.PURCHASE, "Purchase"), (CreditKind.ALLOWANCE, "Allowance")]
    )
    credits = forms.IntegerField(min_value=1, max_value=MAX_CREDITS_ADDED)
    note = forms.CharField(
        max_length=MAX_NOTE, help_text="An invoice number or the month of an allowance."
    )


@console_view
def credits_page(request: HttpRequest, organization: Organization) -> HttpResponse:
    membership = request.membership  # type: ignore[attr-defined]
    if not membership.can_manage:
        return render(request, "console/forbidden.html", status=403)
    is_admin = membership.role == Role.ADMIN
    user_id = request.user.pk
    assert user_id is not None  # console_view: signed in
    form = AddCreditsForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if not is_admin:
            return render(request, "console/forbidden.html", status=403)
        if form.is_valid():
            try:
                entry = credits_add(
                    organization_id=organization.pk,
                    actor_id=user_id,
                    **form.cleaned_data,
                )
            except CreditError as exc:
                form.add_error(None, sentence(exc))
            else:
                messages.success(request, f"{entry.credits:,} credits added.")
                return redirect("billing:credits")
        status = 422
    usage = credit_usage_by_day(organization_id=organization.pk, time_zone=organization.timezone)
    context = {
        "balance": credit_balance(organization_id=organization.pk),
        "usage": usage,
        "usage_max": max((day.total for day in usage), default=0),
        "chart": credit_usage_chart(usage=usage, time_zone=organization.timezone)
        if usage
        else None,
        "entries": paginate(request, credit_entries(organization_id=organization.pk)),
        "form": form if is_admin else None,
    }
    return render(request, "billing/credits.html", context, status=status)
