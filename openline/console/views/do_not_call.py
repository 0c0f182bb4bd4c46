"""The voice do-not-call list: numbers no voice broadcast calls. A person puts their own
number on it by pressing 9 on a call, and staff cannot take that off; staff add a number for
a person who asked them, and remove what staff added, saying why. Supervisors and admins
only; the consent service audits every change staff make."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from openline.contacts.models import ConsentSource, Contact
from openline.contacts.phones import InvalidPhoneNumber, format_phone, normalize_phone
from openline.contacts.selectors import voice_do_not_call_entry, voice_do_not_call_list
from openline.contacts.services.consent import ConsentError
from openline.contacts.services.voice import voice_opt_out_record, voice_opt_out_remove
from openline.core.models import Organization
from openline.core.web import console_view, paginate, sentence

MAX_REASON = 1000


class AddForm(forms.Form):
    phone = forms.CharField(max_length=40, label="Number")
    reason = forms.CharField(
        max_length=MAX_REASON,
        label="Why",
        help_text="For the record, e.g. “asked on the phone not to be called”.",
    )


class RemoveForm(forms.Form):
    phone = forms.CharField(max_length=20, widget=forms.HiddenInput)
    reason = forms.CharField(max_length=MAX_REASON, required=False, label="Why they may be called")


def _forbidden(request: HttpRequest) -> HttpResponse | None:
    if not request.membership.can_manage:  # type: ignore[attr-defined]
        return render(request, "console/forbidden.html", status=403)
    return None


def _page(
    request: HttpRequest, organization: Organization, status: int = 200, **extra: Any
) -> HttpResponse:
    page = paginate(request, voice_do_not_call_list(organization_id=organization.pk))
    phones = [entry.phone for entry in page]
    contacts = {
        contact.phone: contact
        for contact in Contact.objects.filter(organization_id=organization.pk, phone__in=phones)
    }
    for entry in page:
        entry.contact = contacts.get(entry.phone)
        entry.phone_display = format_phone(entry.phone)
        entry.by_person = entry.source == ConsentSource.KEYPRESS
    error = extra.get("remove_error")
    if error and error[0] not in phones:  # not a row on this page: said above the list
        extra["remove_error"] = ("", error[1])
    context = {
        "page": page,
        "add_form": extra.pop("add_form", None) or AddForm(),
        "staff": ConsentSource.STAFF,
        **extra,
    }
    return render(request, "console/do_not_call.html", context, status=status)


@console_view
@require_http_methods(["GET", "POST"])
def do_not_call(request: HttpRequest, organization: Organization) -> HttpResponse:
    """The list; a POST adds a number to it for a person who asked staff."""
    if refused := _forbidden(request):
        return refused
    if request.method == "GET":
        return _page(request, organization)
    form = AddForm(request.POST)
    if not form.is_valid():
        return _page(request, organization, 422, add_form=form)
    try:
        phone = normalize_phone(form.cleaned_data["phone"])
    except InvalidPhoneNumber as exc:
        form.add_error("phone", sentence(exc))
        return _page(request, organization, 422, add_form=form)
    if voice_do_not_call_entry(organization_id=organization.pk, phone=phone) is not None:
        messages.info(request, f"{format_phone(phone)} is already on the do-not-call list.")
        return redirect("console:do_not_call")
    try:
        voice_opt_out_record(
            organization_id=organization.pk,
            phone=phone,
            source=ConsentSource.STAFF,
            text=form.cleaned_data["reason"].strip(),
            actor_id=request.user.pk,
        )
    except ConsentError as exc:
        form.add_error("phone", sentence(exc))
        return _page(request, organization, 422, add_form=form)
    messages.success(request, f"{format_phone(phone)} will not be called by voice broadcasts.")
    return redirect("console:do_not_call")


@console_view
@require_POST
def do_not_call_remove(request: HttpRequest, organization: Organization) -> HttpResponse:
    """Take a number staff added off the list, saying why (a number whose owner pressed 9
    stays on it: the consent service refuses, and the page says so)."""
    if refused := _forbidden(request):
        return refused
    form = RemoveForm(request.POST)
    if not form.is_valid():
        return _page(request, organization, 422, remove_error=("", "Choose a number to remove."))
    phone = form.cleaned_data["phone"]
    try:
        voice_opt_out_remove(
            organization_id=organization.pk,
            phone=phone,
            actor_id=request.user.pk,
            evidence=form.cleaned_data["reason"],
        )
    except ConsentError as exc:
        return _page(request, organization, 422, remove_error=(phone, sentence(exc) + "."))
    messages.success(request, f"{format_phone(phone)} is off the do-not-call list.")
    return redirect("console:do_not_call")
