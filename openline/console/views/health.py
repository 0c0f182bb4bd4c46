"""System health (admins only): inbound texts whose processing failed and was parked,
with "Retry now". It shows times, inboxes, attempts and a phone's last digits, never what
anyone wrote; the server log has each failure under the event's number."""

from __future__ import annotations

import re

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from openline.core.models import Organization, Role
from openline.core.web import console_view
from openline.messaging.selectors import inbound_parked_list, inbound_parked_summary
from openline.messaging.services.inbound import MAX_ATTEMPTS
from openline.messaging.services.parked import inbound_parked_retry

# Event ids are database ids: digits, and short enough to be one.
_EVENT_ID = re.compile(r"[0-9]{1,18}")


@require_http_methods(["GET", "POST"])
@console_view
def system_health(request: HttpRequest, organization: Organization) -> HttpResponse:
    if request.membership.role != Role.ADMIN:  # type: ignore[attr-defined]
        return render(request, "console/forbidden.html", status=403)
    if request.method == "POST":
        return _retry(request, organization)
    return _page(request, organization)


def _page(
    request: HttpRequest, organization: Organization, *, error: str = "", status: int = 200
) -> HttpResponse:
    context = {
        "summary": inbound_parked_summary(organization_id=organization.pk),
        "events": inbound_parked_list(organization_id=organization.pk),
        "max_attempts": MAX_ATTEMPTS,
        "error": error,
    }
    return render(request, "console/health.html", context, status=status)


def _retry(request: HttpRequest, organization: Organization) -> HttpResponse:
    """Retry one parked event (``event``) or, without it, all of the organization's."""
    raw = request.POST.get("event", "").strip()
    if raw and not _EVENT_ID.fullmatch(raw):
        return _page(request, organization, error="That is not an event number.", status=400)
    retried = inbound_parked_retry(
        organization_id=organization.pk,
        event_id=int(raw) if raw else None,
        actor_id=request.user.pk,
        audited=True,
    )
    if retried:
        count = len(retried)
        messages.success(
            request,
            f"Retrying {count} text{'s' if count != 1 else ''} now. If processing still "
            f"fails, {'they' if count != 1 else 'it'} will be back here after "
            f"{MAX_ATTEMPTS} more attempts.",
        )
    elif raw:
        messages.info(request, "Nothing to retry: that text was already retried or processed.")
    else:
        messages.info(request, "Nothing to retry: no texts are parked.")
    return redirect("console:system_health")
