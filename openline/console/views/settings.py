"""Organization settings: name, contact line, the automatic keyword replies, the idle
timeout, who must sign in with a second factor and the survey skip word."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from openline.console.forms import ConsoleForm, OrganizationTextsForm
from openline.contacts.services.consent import help_text, opt_out_text, welcome_text
from openline.core.models import Organization, Role
from openline.core.second_factor import organization_set_second_factor_rule
from openline.core.security import organization_set_idle_timeout
from openline.core.services import organization_update_texts
from openline.core.web import console_view
from openline.forms.surveys.skip_word import survey_skip_word_set


class SecondFactorRuleForm(ConsoleForm):
    """Left out of a post (an older form): the rule stays as it is."""

    require_second_factor = forms.ChoiceField(
        required=False,
        choices=[
            ("none", "Nobody (each member may turn it on)"),
            ("managers", "Supervisors and admins"),
            ("everyone", "Every member"),
        ],
        label="Require a second factor",
        help_text=(
            "Who must confirm each sign-in with a code from an authenticator app. Members "
            "who must and have none are led to set it up at their next page."
        ),
    )


@console_view
def organization_settings(request: HttpRequest, organization: Organization) -> HttpResponse:
    if request.membership.role != Role.ADMIN:  # type: ignore[attr-defined]
        return render(request, "console/forbidden.html", status=403)
    form = OrganizationTextsForm(request.POST or None, instance_values=organization)
    rule_form = SecondFactorRuleForm(
        request.POST or None,
        initial={"require_second_factor": organization.require_second_factor},
    )
    if request.method == "POST" and form.is_valid() and rule_form.is_valid():
        values = dict(form.cleaned_data)
        rule = rule_form.cleaned_data["require_second_factor"] or organization.require_second_factor
        idle_minutes = values.pop("idle_timeout_minutes")
        # Left out of a post (an older form): the skip word stays as it is.
        skip_word = values.pop("survey_skip_word")
        if "survey_skip_word" not in request.POST:
            skip_word = organization.survey_skip_word
        try:
            with transaction.atomic():  # all of the form or none of it
                organization_update_texts(
                    organization=organization, actor_id=request.user.pk, **values
                )
                organization_set_idle_timeout(
                    organization=organization, actor_id=request.user.pk, minutes=idle_minutes
                )
                organization_set_second_factor_rule(
                    organization=organization, actor_id=request.user.pk, rule=rule
                )
                survey_skip_word_set(
                    organization=organization, actor_id=request.user.pk, word=skip_word
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
        "survey_skip_word": "SKIP",
    }
    status = 422 if request.method == "POST" else 200
    fields = [(form[name], defaults.get(name, "")) for name in form.fields]
    fields.append((rule_form["require_second_factor"], ""))
    return render(request, "console/settings.html", {"form": form, "fields": fields}, status=status)
