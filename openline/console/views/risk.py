"""The risk phrases page: the words, phrases and emoji that raise a conversation's priority
(messaging.risk). Admins edit the list; supervisors read it; both may try a message against
it. The sample text is matched and shown back, never stored or logged."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from openline.core.models import Organization, Role
from openline.core.web import console_view, sentence
from openline.messaging.models import Priority
from openline.messaging.risk import MAX_PHRASE, phrase_list, risk_match
from openline.messaging.services.risk_phrases import (
    MAX_PHRASES,
    PRIORITIES,
    RiskPhraseError,
    risk_phrase_add,
    risk_phrase_remove,
    risk_phrases_reset,
)

MAX_SAMPLE = 1600


class AddForm(forms.Form):
    phrase = forms.CharField(
        max_length=MAX_PHRASE,
        label="Word, phrase or emoji",
        help_text="Matched as whole words in order, within a sentence; case, accents and "
        "punctuation do not matter. No other forms of a word: add “ending it all” as well "
        "as “end it all”.",
    )
    priority = forms.TypedChoiceField(
        coerce=int,
        choices=[(p.value, p.label) for p in PRIORITIES],
        initial=Priority.URGENT,
        label="Priority",
    )


class TryForm(forms.Form):
    sample = forms.CharField(
        max_length=MAX_SAMPLE,
        label="Try a message",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Not stored: only whether a phrase matches is shown.",
    )


def _role(request: HttpRequest) -> str:
    return str(request.membership.role)  # type: ignore[attr-defined]


def _page(
    request: HttpRequest, organization: Organization, status: int = 200, **extra: Any
) -> HttpResponse:
    listed = phrase_list(organization_id=organization.pk)
    labels = dict(Priority.choices)
    error = extra.get("remove_error")
    if error and error[0] not in {phrase for phrase, _ in listed.rows}:
        extra["remove_error"] = ("", error[1])  # not a row: said above the list
    context = {
        "rows": [(phrase, priority, labels[priority]) for phrase, priority in listed.rows],
        "suggested": listed.suggested,
        "is_admin": _role(request) == Role.ADMIN,
        "add_form": extra.pop("add_form", None) or AddForm(),
        "try_form": extra.pop("try_form", None) or TryForm(),
        "max_phrases": MAX_PHRASES,
        **extra,
    }
    return render(request, "console/risk_phrases.html", context, status=status)


def _refused(request: HttpRequest, *, edit: bool) -> HttpResponse | None:
    role = _role(request)
    if role == Role.ADMIN or (not edit and role == Role.SUPERVISOR):
        return None
    return render(request, "console/forbidden.html", status=403)


@console_view
@require_http_methods(["GET", "POST"])
def risk_phrases(request: HttpRequest, organization: Organization) -> HttpResponse:
    """The list; a POST adds a phrase (admins)."""
    if refused := _refused(request, edit=request.method == "POST"):
        return refused
    if request.method == "GET":
        return _page(request, organization)
    form = AddForm(request.POST)
    if not form.is_valid():
        return _page(request, organization, 422, add_form=form)
    try:
        row = risk_phrase_add(
            organization_id=organization.pk,
            actor_id=request.user.pk,
            phrase=form.cleaned_data["phrase"],
            priority=form.cleaned_data["priority"],
        )
    except RiskPhraseError as exc:
        form.add_error(exc.field, sentence(exc) + ".")
        return _page(request, organization, 422, add_form=form)
    messages.success(request, f"Added “{row.phrase}” ({row.get_priority_display()}).")
    return redirect("console:risk_phrases")


@console_view
@require_POST
def risk_phrase_remove_view(request: HttpRequest, organization: Organization) -> HttpResponse:
    if refused := _refused(request, edit=True):
        return refused
    phrase = request.POST.get("phrase", "")[: MAX_PHRASE * 2]
    try:
        risk_phrase_remove(organization_id=organization.pk, actor_id=request.user.pk, phrase=phrase)
    except RiskPhraseError as exc:
        return _page(request, organization, 422, remove_error=(phrase, sentence(exc) + "."))
    messages.success(request, f"Removed “{phrase.strip()}”.")
    return redirect("console:risk_phrases")


@console_view
@require_POST
def risk_phrases_reset_view(request: HttpRequest, organization: Organization) -> HttpResponse:
    if refused := _refused(request, edit=True):
        return refused
    risk_phrases_reset(organization_id=organization.pk, actor_id=request.user.pk)
    messages.success(request, "The suggested list applies again.")
    return redirect("console:risk_phrases")


@console_view
@require_POST
def risk_phrases_try(request: HttpRequest, organization: Organization) -> HttpResponse:
    """Match a sample text against the list and show which phrase, if any. Nothing is kept."""
    if refused := _refused(request, edit=False):
        return refused
    form = TryForm(request.POST)
    if not form.is_valid():
        return _page(request, organization, 422, try_form=form)
    hit = risk_match(form.cleaned_data["sample"], organization_id=organization.pk)
    labels = dict(Priority.choices)
    return _page(
        request,
        organization,
        try_form=form,
        tried=True,
        hit=hit,
        hit_label=labels[hit.priority] if hit else "",
    )
