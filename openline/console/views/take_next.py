"""Take next: assume the first conversation in the Waiting view's order (priority, then the
longest wait) without picking a row, so the most at-risk person is answered first."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from openline.console.views.conversations import _pane_response, _sentence
from openline.core.models import Organization
from openline.core.web import console_view, is_htmx
from openline.messaging.services import assignment
from openline.messaging.services.assignment import AssignmentError
from openline.providers.selectors import number_choices

NOBODY = "Nobody is waiting right now."


def _number_id(request: HttpRequest, organization: Organization) -> int | None:
    """The inbox the queue is filtered to, if any (one of this organization's)."""
    raw = request.POST.get("number", "")
    if not raw.isdigit():
        return None
    known = number_choices(organization_id=organization.pk).filter(pk=int(raw)).exists()
    return int(raw) if known else None


@console_view
@require_POST
def conversation_take_next(request: HttpRequest, organization: Organization) -> HttpResponse:
    """htmx gets the taken conversation's pane (its id in X-Conversation-Id), or a short
    message: nobody waiting (200, no id) or a refusal such as the limit (409)."""
    membership = request.membership  # type: ignore[attr-defined]
    try:
        conversation = assignment.conversation_assume_next(
            membership=membership, number_id=_number_id(request, organization)
        )
    except AssignmentError as exc:
        if is_htmx(request):
            error = {"error": _sentence(exc)}
            return render(request, "console/_pane_error.html", error, status=409)
        messages.error(request, _sentence(exc))
        return redirect("console:home")
    if conversation is None:
        if is_htmx(request):
            return render(request, "console/_take_next_none.html", {"notice": NOBODY})
        messages.info(request, NOBODY)
        return redirect("console:home")
    response = _pane_response(request, conversation, notice="It's yours.")
    response["X-Conversation-Id"] = str(conversation.pk)
    return response
