"""The conversation page, its polled thread fragment, replies, consent review and the
segment counter."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from openline.console.forms import ConsentReviewForm, ReplyForm, SegmentsForm
from openline.console.services import conversation_review_consent
from openline.console.views.common import HISTORY_LIMIT, MAX_COUNTED_CHARS, console_view, is_htmx
from openline.contacts.selectors import consent_history, consent_state
from openline.core.models import Organization
from openline.core.services import audit_record
from openline.messaging import selectors
from openline.messaging.models import Conversation
from openline.messaging.segments import count_segments
from openline.messaging.services.outbound import Refusal, SendRefused, message_send, send_refusal


def _conversation_or_404(organization: Organization, conversation_id: int) -> Conversation:
    conversations = selectors.conversation_queryset(organization_id=organization.pk)
    return get_object_or_404(conversations, pk=conversation_id)


def _state_key(conversation: Conversation, refusal: Refusal | None) -> str:
    """What, besides the messages, changes the page: the poll re-renders those parts."""
    code = refusal.code if refusal else "ok"
    return f"{code}.{int(conversation.needs_consent_review)}"


def _conversation_context(
    conversation: Conversation, *, draft: str = "", reply_error: str = ""
) -> dict[str, Any]:
    contact = conversation.contact
    refusal = send_refusal(contact=contact)
    state = consent_state(organization_id=conversation.organization_id, phone=contact.phone)
    history = consent_history(organization_id=conversation.organization_id, phone=contact.phone)
    return {
        "conversation": conversation,
        "contact": contact,
        "thread": selectors.thread_messages(conversation=conversation),
        "thread_version": selectors.thread_version(conversation=conversation),
        "thread_limit": selectors.THREAD_LIMIT,
        "state_key": _state_key(conversation, refusal),
        "refusal": refusal,
        "consent": state.as_dict(),
        "consent_changed_at": state.last_change.created_at if state.last_change else None,
        "consent_pending_text": state.pending_request.text if state.pending_request else "",
        "consent_history": history[:HISTORY_LIMIT],
        "draft": draft,
        "length": len(draft),
        "reply_error": reply_error,
        "segments": count_segments(draft),
        "max_body": settings.OPENLINE_MAX_BODY_CHARS,
    }


@console_view
@require_GET
def conversation_detail(
    request: HttpRequest, organization: Organization, conversation_id: int
) -> HttpResponse:
    conversation = _conversation_or_404(organization, conversation_id)
    # Opening a conversation reads a transcript; the 2-second poll does not re-record it.
    audit_record(
        organization_id=organization.pk,
        actor_id=request.user.pk,
        action="conversation.view",
        object_type="conversation",
        object_id=conversation.pk,
    )
    return render(request, "console/conversation.html", _conversation_context(conversation))


@console_view
@require_GET
def conversation_thread(
    request: HttpRequest, organization: Organization, conversation_id: int
) -> HttpResponse:
    """The polled fragment. 204 (htmx leaves the page alone) when nothing changed; when
    consent or the review flag changed, the banner, consent panel and reply box are
    swapped out of band too (the typed draft is kept by hx-preserve)."""
    conversation = _conversation_or_404(organization, conversation_id)
    version = selectors.thread_version(conversation=conversation)
    state_key = _state_key(conversation, send_refusal(contact=conversation.contact))
    seen_state = request.GET.get("s")
    if request.GET.get("v") == version and seen_state == state_key:
        return HttpResponse(status=204)
    context = _conversation_context(conversation)
    context["oob"] = seen_state is not None and seen_state != state_key
    return render(request, "console/_thread_poll.html", context)


@console_view
@require_POST
def conversation_reply(
    request: HttpRequest, organization: Organization, conversation_id: int
) -> HttpResponse:
    conversation = _conversation_or_404(organization, conversation_id)
    form = ReplyForm(request.POST)
    body = form.cleaned_data["body"] if form.is_valid() else ""
    try:
        message_send(
            organization_id=organization.pk,
            conversation=conversation,
            body=body,
            sender_id=request.user.pk,
        )
    except SendRefused as exc:
        context = _conversation_context(conversation, draft=body, reply_error=str(exc))
        template = "console/_reply_box.html" if is_htmx(request) else "console/conversation.html"
        return render(request, template, context, status=422)
    if is_htmx(request):
        return render(request, "console/_reply_sent.html", _conversation_context(conversation))
    return redirect("console:conversation", conversation_id=conversation.pk)


@console_view
@require_POST
def conversation_consent_review(
    request: HttpRequest, organization: Organization, conversation_id: int
) -> HttpResponse:
    conversation = _conversation_or_404(organization, conversation_id)
    form = ConsentReviewForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest("Choose “Record opt-out” or “Not an opt-out”.")
    decision = form.cleaned_data["decision"]
    if conversation_review_consent(
        conversation=conversation, actor_id=request.user.pk, decision=decision
    ):
        done = "Opt-out recorded." if decision == "opt_out" else "Marked as not an opt-out."
        messages.success(request, done)
    else:
        messages.info(request, "Someone already reviewed this request.")
    return redirect("console:conversation", conversation_id=conversation.pk)


@console_view
@require_http_methods(["GET", "POST"])
def segments(request: HttpRequest, organization: Organization) -> HttpResponse:
    """The live counter. The console posts the draft (a GET would put what a counselor is
    typing into access logs); GET ?body= is kept for scripts and the API's callers."""
    form = SegmentsForm(request.POST if request.method == "POST" else request.GET)
    body = form.cleaned_data["body"] if form.is_valid() else ""
    context = {
        "segments": count_segments(body[:MAX_COUNTED_CHARS]),
        "length": len(body),
        "max_body": settings.OPENLINE_MAX_BODY_CHARS,
    }
    return render(request, "console/_segments.html", context)
