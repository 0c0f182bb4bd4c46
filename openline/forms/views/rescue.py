"""The imminent-risk checklist in a conversation's pane: the section (GET), start, tick or
untick a step, end. htmx posts get the section back (422 with the reason when refused);
a plain form post is sent back to the conversation's page."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from openline.core.models import Membership, Organization
from openline.core.web import console_view, is_htmx
from openline.forms import rescue
from openline.messaging.models import Channel, Conversation
from openline.messaging.services.assignment import Access, conversation_access

TEMPLATE = "forms/pane/_rescue.html"


def _membership(request: HttpRequest) -> Membership:
    return request.membership  # type: ignore[attr-defined,no-any-return]


def _conversation(
    request: HttpRequest, organization: Organization, conversation_id: int
) -> tuple[Conversation, Access]:
    """The organization's conversation (404 otherwise) and what this member may do with
    it; 404 too for one they may not read (its checklist is part of it)."""
    conversation = get_object_or_404(
        Conversation.objects.select_related("number").exclude(channel=Channel.ALERT),
        pk=conversation_id,
        organization=organization,
    )
    access = conversation_access(membership=_membership(request), conversation=conversation)
    if not access.read:
        raise Http404("not in your views")
    return conversation, access


def _section(
    request: HttpRequest,
    conversation: Conversation,
    access: Access,
    *,
    status: int = 200,
    **extra: Any,
) -> HttpResponse:
    if not is_htmx(request) and request.method == "POST":
        if extra.get("rescue_error"):
            messages.error(request, extra["rescue_error"])
        return redirect("console:conversation", conversation.pk)
    context = {"conversation": conversation, "access": access, **extra}
    return render(request, TEMPLATE, context, status=status)


@console_view
@require_GET
def rescue_section(
    request: HttpRequest, organization: Organization, conversation_id: int
) -> HttpResponse:
    conversation, access = _conversation(request, organization, conversation_id)
    return _section(request, conversation, access)


@console_view
@require_POST
def rescue_start(
    request: HttpRequest, organization: Organization, conversation_id: int
) -> HttpResponse:
    conversation, access = _conversation(request, organization, conversation_id)
    try:
        rescue.risk_checklist_start(membership=_membership(request), conversation=conversation)
    except rescue.RescueError as exc:
        return _section(request, conversation, access, status=422, rescue_error=str(exc))
    return _section(request, conversation, access)


@console_view
@require_POST
def rescue_step(
    request: HttpRequest, organization: Organization, conversation_id: int, step_id: int
) -> HttpResponse:
    conversation, access = _conversation(request, organization, conversation_id)
    step = rescue.step_get(
        organization_id=organization.pk, conversation_id=conversation.pk, step_id=step_id
    )
    if step is None:
        raise Http404("no such step")
    done = request.POST.get("done") == "1"
    try:
        rescue.risk_step_mark(
            membership=_membership(request),
            step=step,
            done=done,
            note=request.POST.get("note", ""),
        )
    except rescue.RescueError as exc:
        return _section(
            request,
            conversation,
            access,
            status=422,
            rescue_error=str(exc),
            error_step_id=step.pk,
            typed_note=request.POST.get("note", "")[: rescue.MAX_NOTE * 2],
        )
    return _section(request, conversation, access)


@console_view
@require_POST
def rescue_end(
    request: HttpRequest, organization: Organization, conversation_id: int
) -> HttpResponse:
    conversation, access = _conversation(request, organization, conversation_id)
    checklist_id = request.POST.get("checklist", "")
    checklist = (
        rescue.checklist_get(
            organization_id=organization.pk,
            conversation_id=conversation.pk,
            checklist_id=int(checklist_id),
        )
        if checklist_id.isdigit()
        else None
    )
    if checklist is None:
        return _section(
            request,
            conversation,
            access,
            status=422,
            rescue_error="That checklist is not in this conversation. Reload the pane.",
        )
    try:
        rescue.risk_checklist_end(membership=_membership(request), checklist=checklist)
    except rescue.RescueError as exc:
        return _section(request, conversation, access, status=422, rescue_error=str(exc))
    return _section(request, conversation, access)
