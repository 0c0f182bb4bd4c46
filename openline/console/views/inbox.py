"""The workspace (queue + open conversations) and its live list fragment."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from openline.availability.selectors import inboxes_online
from openline.console.forms import QueueForm
from openline.core.models import Organization
from openline.core.web import console_view, is_htmx, paginate
from openline.messaging import selectors
from openline.providers.selectors import number_choices


def _queue_context(request: HttpRequest, organization: Organization) -> dict[str, Any]:
    membership = request.membership  # type: ignore[attr-defined]
    numbers = list(number_choices(organization_id=organization.pk))
    form = QueueForm(request.GET, numbers=numbers, can_manage=membership.can_manage)
    filters = form.filters()
    conversations = selectors.queue_conversations(membership=membership, filters=filters)
    page = paginate(request, conversations)
    _prepare_rows(page.object_list, {n.pk: n.label for n in numbers})
    views = [("waiting", "Waiting"), ("mine", "Mine")]
    if membership.can_manage:
        views.append(("all", "All"))
    views.append(("closed", "Closed"))
    return {
        "numbers": numbers,
        "form": form,
        "filters": filters,
        "views": views,
        "counts": selectors.queue_counts(membership=membership),
        "page": page,
        "conversation_base": reverse("console:conversation", args=[0])[: -len("0/")],
        "query_string": form.query_string(),
    }


def _prepare_rows(rows: Any, inbox_labels: dict[int, str]) -> None:
    """Per-row values worked out once in Python: a 50-row list must not run three date
    formats and several URL reversals per row in the template."""
    today = timezone.localdate()
    for row in rows:
        local = timezone.localtime(row.last_message_at)
        row.when_iso = local.isoformat()
        if local.date() == today:
            row.when_label = local.strftime("%-I:%M %p")
        elif local.year == today.year:
            row.when_label = local.strftime("%b %-d")
        else:
            row.when_label = local.strftime("%b %-d, %Y")
        row.inbox_label = inbox_labels.get(row.number_id, "")


@console_view
@require_GET
def home(request: HttpRequest, organization: Organization) -> HttpResponse:
    """The workspace: the queue on the left, open conversations as tabs on the right, and
    whether each inbox is online (kept current by live events)."""
    context = _queue_context(request, organization)
    active = [n for n in context["numbers"] if n.is_active]
    online = inboxes_online([n.pk for n in active])
    context["inbox_states"] = [(n, online[n.pk]) for n in active]
    return render(request, "console/workspace.html", context)


@console_view
@require_GET
def queue(request: HttpRequest, organization: Organization) -> HttpResponse:
    """The list fragment the workspace reloads on live events and filter changes."""
    if not is_htmx(request) and request.GET.get("fragment") != "1":
        return redirect(reverse("console:home") + "?" + request.GET.urlencode())
    return render(request, "console/_queue.html", _queue_context(request, organization))


@console_view
@require_GET
def inbox(request: HttpRequest, organization: Organization, number_id: int) -> HttpResponse:
    """Old per-number inbox addresses land on the workspace filtered to that number."""
    if not number_choices(organization_id=organization.pk).filter(pk=number_id).exists():
        raise Http404("No such inbox")
    return redirect(reverse("console:home") + f"?view=all&number={number_id}")
