"""Home and the per-number inboxes."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from openline.console.views.common import console_view, paginate
from openline.core.models import Organization
from openline.messaging import selectors
from openline.messaging.models import ConversationStatus
from openline.providers.selectors import number_first, number_list


@console_view
@require_GET
def home(request: HttpRequest, organization: Organization) -> HttpResponse:
    number = number_first(organization_id=organization.pk)
    if number is None:
        return render(request, "console/inbox.html", {"numbers": [], "number": None})
    return redirect("console:inbox", number_id=number.pk)


@console_view
@require_GET
def inbox(request: HttpRequest, organization: Organization, number_id: int) -> HttpResponse:
    numbers = list(number_list(organization_id=organization.pk))
    number = next((n for n in numbers if n.pk == number_id), None)
    if number is None:
        raise Http404("No such inbox")
    status = request.GET.get("status", "")
    status = status if status in ConversationStatus.values else ""
    conversations = selectors.inbox_conversations(
        organization_id=organization.pk, number_id=number.pk, status=status
    )
    context = {
        "numbers": numbers,
        "number": number,
        "status": status,
        "statuses": ConversationStatus.choices,
        "page": paginate(request, conversations),
    }
    return render(request, "console/inbox.html", context)
