"""An inbox's auto-responses (admins and supervisors)."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from openline.availability import services
from openline.availability.forms import ResponsesForm
from openline.availability.models import InboxResponses
from openline.availability.responses import opening_phrase, response_text, responses_for
from openline.availability.selectors import next_opening
from openline.availability.services import ShiftError
from openline.availability.views.common import is_manager, parse_int, refused
from openline.core.models import Organization
from openline.core.web import console_view, sentence
from openline.providers.models import Number

FIELDS = (
    "offline_enabled",
    "offline_text",
    "offline_period_hours",
    "greeting_enabled",
    "greeting_text",
    "busy_enabled",
    "busy_text",
    "busy_threshold",
)


def chosen_inbox(request: HttpRequest, organization: Organization) -> Number | None:
    """The inbox asked for (404 if it is not this organization's), else the first."""
    inboxes = Number.objects.filter(organization=organization, is_active=True).order_by("pk")
    raw = request.POST.get("inbox") or request.GET.get("inbox")
    if raw:
        number = inboxes.filter(pk=parse_int(raw) or 0).first()
        if number is None:
            raise Http404("no such inbox")
        return number
    return inboxes.first()


@require_http_methods(["GET", "POST"])
@console_view
def inbox_responses(request: HttpRequest, organization: Organization) -> HttpResponse:
    if not is_manager(request):
        return render(request, "console/forbidden.html", status=403)
    number = chosen_inbox(request, organization)
    current = responses_for(number) if number else None
    initial = {name: getattr(current, name) for name in FIELDS} if current else {}
    form = ResponsesForm(request.POST or None, initial=initial)
    if request.method == "POST" and number is not None and form.is_valid():
        try:
            services.inbox_responses_set(
                organization_id=organization.pk,
                actor_id=request.user.pk,
                number_id=number.pk,
                **form.cleaned_data,
            )
        except ShiftError as exc:
            if exc.code != "invalid":
                return refused(request, exc)
            form.add_error(None, sentence(exc))
        else:
            messages.success(request, f"Auto-responses saved for {number.label}.")
            return redirect(reverse("availability:responses") + f"?inbox={number.pk}")
    context = {
        "inboxes": Number.objects.filter(organization=organization, is_active=True).order_by("pk"),
        "number": number,
        "form": form,
        "responses": current,
        "preview": _preview(organization, number, current) if number and current else "",
    }
    return render(
        request, "availability/responses.html", context, status=422 if form.errors else 200
    )


def _preview(organization: Organization, number: Number, current: InboxResponses) -> str:
    """The offline answer as it would read if a text came in now."""
    phrase = opening_phrase(next_opening(number.pk), tz=organization.timezone)
    return response_text(
        current.offline_text, organization_name=organization.name, next_open=phrase
    )
