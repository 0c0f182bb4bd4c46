"""Organization settings: name, contact line, the automatic keyword replies and the idle
timeout."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from openline.console.forms import OrganizationTextsForm
from openline.contacts.services.consent import help_text, opt_out_text, welcome_text
from openline.core.models import Organization, Role
from openline.core.security import organization_set_idle_timeout
from openline.core.services import organization_update_texts
from openline.core.web import console_view


@console_view
def organization_settings(request: HttpRequest, organization: Organization) -> HttpResponse:
    if request.membership.role != Role.ADMIN:  # type: ignore[attr-defined]
        return render(request, "console/forbidden.html", status=403)
    form = OrganizationTextsForm(request.POST or None, instance_values=organization)
    if request.method == "POST" and form.is_valid():
        values = dict(form.cleaned_data)
        idle_minutes = values.pop("idle_timeout_minutes")
        try:
            with transaction.atomic():  # all of the form or none of it
                organization_update_texts(
                    organization=organization, actor_id=request.user.pk, **values
                )
                organization_set_idle_timeout(
                    organization=organization, actor_id=request.user.pk, minutes=idle_minutes
                )
        except ValidationError as exc:
            organization.refresh_from_db()
            form.add_error(None, exc)
        else:
            messages.success(request, "Settings saved.")
            return redirect("console:settings")
    blank = Organization(name=organization.name, contact_info=organization.contact_info)
    defaults = {
        "welcome_text": welcome_text(blank),
        "opt_out_text": opt_out_text(blank),
        "help_text": help_text(blank),
        "idle_timeout_minutes": f"{Organization.DEFAULT_IDLE_TIMEOUT_MINUTES} minutes",
    }
    status = 422 if request.method == "POST" else 200
    fields = [(form[name], defaults.get(name, "")) for name in form.fields]
    return render(request, "console/settings.html", {"form": form, "fields": fields}, status=status)
