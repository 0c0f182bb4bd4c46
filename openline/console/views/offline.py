"""The offline messages report (admins and supervisors): texts that arrived while an inbox
was offline, a heat map of them by hour of the week, and following up the conversations
they opened (assume, or assign to someone) through messaging's assignment services.

It lives in the console, not with the shifts it sits beside (/shifts/offline-messages):
it reads and assigns conversations, and availability sits below messaging."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from openline.availability.views.common import is_manager, parse_int
from openline.console.reports import offline_followups, offline_heatmap, offline_texts
from openline.core.models import Membership, Organization
from openline.core.web import console_view, paginate, sentence
from openline.messaging.models import Conversation
from openline.messaging.services.assignment import (
    AssignmentError,
    conversation_assume,
    conversation_transfer,
)
from openline.providers.models import Number

RANGES = [(7, "Last 7 days"), (28, "Last 4 weeks"), (90, "Last 90 days")]
DEFAULT_DAYS = 28


def _forbidden(request: HttpRequest) -> HttpResponse:
    return render(request, "console/forbidden.html", status=403)


@require_GET
@console_view
def offline_report(request: HttpRequest, organization: Organization) -> HttpResponse:
    if not is_manager(request):
        return _forbidden(request)
    days = parse_int(request.GET.get("days"))
    days = days if days in dict(RANGES) else DEFAULT_DAYS
    inboxes = list(Number.objects.filter(organization=organization).order_by("-is_active", "pk"))
    number_id = parse_int(request.GET.get("inbox"))
    inbox = next((n for n in inboxes if n.pk == number_id), None)
    if number_id is not None and inbox is None:
        raise Http404("no such inbox")
    until = timezone.now()
    scope = {"organization_id": organization.pk, "number_id": inbox.pk if inbox else None}
    since = until - timedelta(days=days)
    texts = offline_texts(since=since, until=until, **scope).select_related("conversation__contact")
    labels = {n.pk: n.label for n in inboxes}
    page = paginate(request, texts.order_by("-created_at", "-pk"))
    for text in page.object_list:
        text.inbox_label = labels.get(text.conversation.number_id, "")
    context = {
        "inboxes": inboxes,
        "inbox": inbox,
        "ranges": RANGES,
        "days": days,
        "heatmap": offline_heatmap(since=since, until=until, tz=organization.timezone, **scope),
        "hours": range(24),
        "page": page,
        "followups": list(offline_followups(**scope)[:100]),
        "members": Membership.objects.filter(organization=organization, is_active=True)
        .select_related("user")
        .order_by("user__display_name", "user__email"),
    }
    return render(request, "console/offline_report.html", context)


def _conversation(organization: Organization, conversation_id: int) -> Conversation:
    conversation = (
        Conversation.objects.filter(pk=conversation_id, organization=organization)
        .select_related("contact")
        .first()
    )
    if conversation is None:
        raise Http404("no such conversation")
    return conversation


def _back(request: HttpRequest) -> HttpResponse:
    query = request.POST.get("query", "")
    return redirect(reverse("console:offline_report") + (f"?{query}" if query else ""))


@require_POST
@console_view
def offline_follow_up(
    request: HttpRequest, organization: Organization, conversation_id: int
) -> HttpResponse:
    """Assume a conversation opened offline, or give it to a member (``user``)."""
    if not is_manager(request):
        return _forbidden(request)
    conversation = _conversation(organization, conversation_id)
    membership: Membership = request.membership  # type: ignore[attr-defined]
    user_id = parse_int(request.POST.get("user"))
    try:
        if user_id is None or user_id == request.user.pk:
            conversation_assume(membership=membership, conversation=conversation)
            messages.success(request, f"You have {conversation.contact.label} now.")
        else:
            to = Membership.objects.filter(
                organization=organization, user_id=user_id, is_active=True
            ).first()
            if to is None:
                raise Http404("no such member")
            conversation_transfer(membership=membership, conversation=conversation, to=to)
            messages.success(request, f"{to.user} has {conversation.contact.label} now.")
    except AssignmentError as exc:
        messages.error(request, sentence(exc))
    return _back(request)
