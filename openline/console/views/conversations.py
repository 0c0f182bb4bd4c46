"""A conversation: its page and workspace pane, the live thread fragment, replies, notes,
assignment actions, consent review, export and the segment counter."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from openline.campaigns.appointment_selectors import local_label, upcoming_appointments
from openline.campaigns.selectors import broadcast_names
from openline.chat.selectors import chat_session_of
from openline.console.forms import (
    CloseForm,
    ConsentReviewForm,
    NoteForm,
    ReplyForm,
    SegmentsForm,
    TransferForm,
)
from openline.console.selectors import saved_replies_for
from openline.console.templatetags.console_tags import who
from openline.console.views.common import HISTORY_LIMIT, MAX_COUNTED_CHARS
from openline.contacts.selectors import consent_history, consent_state
from openline.contacts.services.consent import ConsentError, Refusal
from openline.core.models import Membership, Organization
from openline.core.services import audit_transcript_read
from openline.core.web import console_view, is_htmx, sentence
from openline.messaging import selectors
from openline.messaging.models import Conversation, ConversationStatus, Message, MessageKind
from openline.messaging.segments import count_segments
from openline.messaging.services import assignment
from openline.messaging.services.assignment import Access, AssignmentError
from openline.messaging.services.conversation_consent import conversation_review_consent
from openline.messaging.services.outbound import SendRefused, reply_refusal
from openline.messaging.web import with_conversation

P = ParamSpec("P")


def _state_key(conversation: Conversation, refusal: Refusal | None) -> str:
    """What, besides the messages, changes the thread's surroundings."""
    code = refusal.code if refusal else "ok"
    return f"{code}.{int(conversation.needs_consent_review)}"


def _timeline(conversation: Conversation) -> list[Any]:
    """Messages and internal notes in time order."""
    thread = selectors.thread_messages(conversation=conversation)
    notes = selectors.conversation_notes(conversation=conversation)
    if len(thread) >= selectors.THREAD_LIMIT:
        notes = [n for n in notes if n.created_at >= thread[0].created_at]
    _name_broadcasts(thread)
    return sorted([*thread, *notes], key=lambda item: (item.created_at, item.pk))


def _name_broadcasts(messages: list[Message]) -> None:
    """Mark the broadcast texts among ``messages`` with their broadcast's name, so a reply
    shows which broadcast it answers."""
    bulk = [m.pk for m in messages if m.kind == MessageKind.BULK]
    names = broadcast_names(message_ids=bulk)
    for message in messages:
        message.broadcast_name = names.get(message.pk, "")  # type: ignore[attr-defined]


def _membership(request: HttpRequest) -> Membership:
    return request.membership  # type: ignore[attr-defined,no-any-return]


def _conversation_context(
    request: HttpRequest,
    conversation: Conversation,
    access: Access,
    *,
    how: str | None,
    with_history: bool = False,
    draft: str = "",
    reply_error: str = "",
    pane_error: str = "",
    pane_notice: str = "",
) -> dict[str, Any]:
    contact = conversation.contact
    refusal = reply_refusal(conversation)
    org_id = conversation.organization_id
    state = consent_state(
        organization_id=org_id, phone=contact.phone, simulated=conversation.number.simulated
    )
    history = consent_history(organization_id=org_id, phone=contact.phone)
    membership = _membership(request)
    earlier = (
        selectors.earlier_history(conversation=conversation, membership=membership)
        if with_history
        else None
    )
    if earlier:
        _name_broadcasts(earlier.messages)
    if how is not None:
        _audit_read(request, conversation, access, how, earlier)
    # The version is read before the messages: a change that lands in between then makes
    # the page's version older than the server's, so the next refresh fetches it. (Read
    # after, the page could show the old status under the new version and never update.)
    version = selectors.thread_version(conversation=conversation)
    return {
        "conversation": conversation,
        "contact": contact,
        "chat_session": chat_session_of(conversation),
        "access": access,
        "mine": conversation.assigned_to_id == request.user.pk,
        "timeline": _timeline(conversation),
        "earlier": earlier.messages if earlier else [],
        "earlier_hidden": earlier.hidden if earlier else 0,
        "thread_version": version,
        "thread_limit": selectors.THREAD_LIMIT,
        "state_key": _state_key(conversation, refusal),
        "refusal": refusal,
        "consent": state.as_dict(),
        "consent_changed_at": state.last_change.created_at if state.last_change else None,
        "consent_pending_text": state.pending_request.text if state.pending_request else "",
        "consent_history": history[:HISTORY_LIMIT],
        "past_conversations": selectors.contact_conversations(
            organization_id=org_id, contact_id=contact.pk, membership=membership
        ).exclude(pk=conversation.pk)[:10],
        "members": selectors.transfer_targets(
            organization_id=org_id, exclude_user_id=conversation.assigned_to_id
        ),
        "can_manage": membership.can_manage,
        "saved_replies": saved_replies_for(membership=membership, user=request.user),
        "draft": draft,
        "length": len(draft),
        "reply_error": reply_error,
        "pane_error": pane_error,
        "pane_notice": pane_notice,
        "segments": count_segments(draft),
        "max_body": settings.OPENLINE_MAX_BODY_CHARS,
        "appointments": _appointments(conversation),
    }


def _appointments(conversation: Conversation) -> list[Any]:
    """The person's coming appointments, shown beside what they text (a question about a
    visit, "running late"), each with its start where it takes place."""
    if not conversation.contact.phone:
        return []
    found = upcoming_appointments(
        organization_id=conversation.organization_id,
        contact_id=conversation.contact_id,
        now=timezone.now(),
    )
    for appointment in found:
        appointment.local_start = local_label(appointment)  # type: ignore[attr-defined]
    return found


def _audit_read(
    request: HttpRequest,
    conversation: Conversation,
    access: Access,
    how: str,
    earlier: selectors.EarlierHistory | None,
) -> None:
    """Every response that carries a transcript (and the earlier ones shown with it) passes
    here: one audit event per person, conversation and view session, so live refreshes cost
    nothing once the first read is recorded."""
    audit_transcript_read(
        session=request.session,
        organization_id=conversation.organization_id,
        actor_id=request.user.pk,
        conversation_ids=[conversation.pk],
        how=how,
        monitoring=access.monitoring,
    )
    if earlier is not None and earlier.conversation_ids:
        audit_transcript_read(
            session=request.session,
            organization_id=conversation.organization_id,
            actor_id=request.user.pk,
            conversation_ids=earlier.conversation_ids,
            how="history",
        )


@console_view
@require_GET
@with_conversation
def conversation_detail(
    request: HttpRequest, organization: Organization, conversation: Conversation, access: Access
) -> HttpResponse:
    assignment.conversation_mark_read(user_id=request.user.pk, conversation=conversation)
    context = _conversation_context(request, conversation, access, how="page", with_history=True)
    return render(request, "console/conversation.html", context)


@console_view
@require_GET
@with_conversation
def conversation_pane(
    request: HttpRequest, organization: Organization, conversation: Conversation, access: Access
) -> HttpResponse:
    """The workspace tab. ``?refresh=1`` is a live update: it does not mark the
    conversation read unless the tab is in front (``read=1``); like every transcript
    response it is audited once per view session."""
    changed = False
    if request.GET.get("refresh") != "1" or request.GET.get("read") == "1":
        changed = assignment.conversation_mark_read(
            user_id=request.user.pk, conversation=conversation
        )
    context = _conversation_context(request, conversation, access, how="pane", with_history=True)
    response = render(request, "console/_pane.html", context)
    return _read_changed(response, changed)


def _read_changed(response: HttpResponse, changed: bool) -> HttpResponse:
    """Tell the workspace to redraw the list's unread dot."""
    if changed:
        response["HX-Trigger"] = "ol:queue-changed"
    return response


@console_view
@require_GET
@with_conversation
def conversation_thread(
    request: HttpRequest, organization: Organization, conversation: Conversation, access: Access
) -> HttpResponse:
    """The live thread. 204 (htmx leaves the page alone) when nothing changed; when consent
    or the review flag changed, the banner, consent panel and reply box are swapped out of
    band too (the typed draft is kept by hx-preserve)."""
    version = selectors.thread_version(conversation=conversation)
    state_key = _state_key(conversation, reply_refusal(conversation))
    seen_state = request.GET.get("s")
    changed = False
    if request.GET.get("read") == "1":
        changed = assignment.conversation_mark_read(
            user_id=request.user.pk, conversation=conversation
        )
    if request.GET.get("v") == version and seen_state == state_key:
        return _read_changed(HttpResponse(status=204), changed)
    context = _conversation_context(request, conversation, access, how="thread")
    context["oob"] = seen_state is not None and seen_state != state_key
    return _read_changed(render(request, "console/_thread_poll.html", context), changed)


def _pane_response(
    request: HttpRequest,
    conversation: Conversation,
    *,
    notice: str = "",
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    """htmx gets the pane back (with the outcome); a plain form post is redirected."""
    access = assignment.conversation_access(
        membership=_membership(request), conversation=conversation
    )
    if is_htmx(request):
        if not access.read and error:
            # Refused, and not theirs to see (someone else won it): just the reason.
            return render(request, "console/_pane_error.html", {"error": error}, status=status)
        if not access.read:
            # The action handed the conversation away: the tab closes itself.
            return HttpResponse(status=200, headers={"HX-Trigger": "ol:pane-gone"})
        context = _conversation_context(
            request,
            conversation,
            access,
            how="action",
            with_history=True,
            pane_notice=notice,
            pane_error=error,
        )
        return render(request, "console/_pane.html", context, status=status)
    if error:
        messages.error(request, error)
    elif notice:
        messages.success(request, notice)
    if not access.read:
        return redirect("console:home")
    return redirect("console:conversation", conversation_id=conversation.pk)


def _sentence(exc: Exception) -> str:
    """A refusal shown on its own (not beside a field) reads as a full sentence."""
    text = sentence(exc)
    return text if text.endswith(".") else text + "."


def _action(
    run: Callable[[HttpRequest, Conversation], str],
) -> Callable[[HttpRequest, int], HttpResponse]:
    """A POST that changes assignment: the outcome, or the refusal with 409."""

    @console_view
    @require_POST
    @with_conversation
    @wraps(run)
    def view(
        request: HttpRequest,
        organization: Organization,
        conversation: Conversation,
        access: Access,
    ) -> HttpResponse:
        try:
            notice = run(request, conversation)
        except (AssignmentError, ValueError) as exc:
            return _pane_response(request, conversation, error=_sentence(exc), status=409)
        return _pane_response(request, conversation, notice=notice)

    return view  # type: ignore[return-value]


@_action
def conversation_assume(request: HttpRequest, conversation: Conversation) -> str:
    assignment.conversation_assume(membership=_membership(request), conversation=conversation)
    return "It's yours."


@_action
def conversation_transfer(request: HttpRequest, conversation: Conversation) -> str:
    form = TransferForm(request.POST, organization_id=conversation.organization_id)
    if not form.is_valid():
        raise ValueError("choose who to transfer to")
    target = form.cleaned_data["to"]
    assignment.conversation_transfer(
        membership=_membership(request),
        conversation=conversation,
        to=target,
        note=form.cleaned_data["note"],
    )
    return f"Transferred to {target.user if target else 'the queue'}."


@_action
def conversation_close(request: HttpRequest, conversation: Conversation) -> str:
    form = CloseForm(request.POST)
    wrap_up = form.cleaned_data["wrap_up"] if form.is_valid() else ""
    assignment.conversation_close(
        membership=_membership(request), conversation=conversation, wrap_up=wrap_up
    )
    return "Closed. If they text again, a new conversation waits in the queue."


@_action
def conversation_join(request: HttpRequest, conversation: Conversation) -> str:
    assignment.conversation_join(membership=_membership(request), conversation=conversation)
    return "You joined; you can reply alongside them."


@_action
def conversation_take_over(request: HttpRequest, conversation: Conversation) -> str:
    assignment.conversation_take_over(membership=_membership(request), conversation=conversation)
    return "You took over this conversation."


@_action
def conversation_note(request: HttpRequest, conversation: Conversation) -> str:
    form = NoteForm(request.POST)
    body = form.cleaned_data["body"] if form.is_valid() else ""
    assignment.conversation_note_add(
        membership=_membership(request), conversation=conversation, body=body
    )
    return "Note added (staff only)."


@console_view
@require_POST
@with_conversation
def conversation_typing(
    request: HttpRequest, organization: Organization, conversation: Conversation, access: Access
) -> HttpResponse:
    """The reply box is being typed in: a web-chat visitor sees "typing…" (texts: nothing)."""
    from openline.chat.services import counselor_typing

    if not access.reply:
        return HttpResponse("you cannot reply in this conversation", status=403)
    counselor_typing(conversation)
    return HttpResponse(status=204)


@console_view
@require_POST
@with_conversation
def conversation_unread(
    request: HttpRequest, organization: Organization, conversation: Conversation, access: Access
) -> HttpResponse:
    assignment.conversation_mark_unread(user_id=request.user.pk, conversation=conversation)
    if is_htmx(request):
        return HttpResponse(status=204, headers={"HX-Trigger": "ol:queue-changed"})
    messages.success(request, "Marked unread.")
    return redirect("console:home")


@console_view
@require_POST
@with_conversation
def conversation_reply(
    request: HttpRequest, organization: Organization, conversation: Conversation, access: Access
) -> HttpResponse:
    form = ReplyForm(request.POST)
    body = form.cleaned_data["body"] if form.is_valid() else ""
    try:
        assignment.conversation_reply(
            membership=_membership(request), conversation=conversation, body=body
        )
    except (SendRefused, AssignmentError) as exc:
        access = assignment.conversation_access(
            membership=_membership(request), conversation=conversation
        )
        # htmx gets the reply box alone (no transcript); a plain post, the whole page.
        page = not is_htmx(request)
        context = _conversation_context(
            request,
            conversation,
            access,
            how="page" if page else None,
            with_history=page,
            draft=body,
            reply_error=str(exc),
        )
        template = "console/conversation.html" if page else "console/_reply_box.html"
        return render(request, template, context, status=422)
    if is_htmx(request):
        access = assignment.conversation_access(
            membership=_membership(request), conversation=conversation
        )
        context = _conversation_context(request, conversation, access, how="action")
        return render(request, "console/_reply_sent.html", context)
    return redirect("console:conversation", conversation_id=conversation.pk)


@console_view
@require_POST
@with_conversation
def conversation_consent_review(
    request: HttpRequest, organization: Organization, conversation: Conversation, access: Access
) -> HttpResponse:
    form = ConsentReviewForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest("Choose “Record opt-out” or “Not an opt-out”.")
    decision = form.cleaned_data["decision"]
    try:
        reviewed = conversation_review_consent(
            conversation=conversation,
            actor_id=request.user.pk,
            decision=decision,
            reason=form.cleaned_data["reason"],
        )
    except ConsentError as exc:
        status = 403 if exc.code == "forbidden" else 422
        return _pane_response(request, conversation, error=_sentence(exc), status=status)
    if reviewed:
        done = "Opt-out recorded." if decision == "opt_out" else "Marked as not an opt-out."
    else:
        done = "Someone already reviewed this request."
    return _pane_response(request, conversation, notice=done)


@console_view
@require_GET
@with_conversation
def conversation_notice(
    request: HttpRequest, organization: Organization, conversation: Conversation, access: Access
) -> HttpResponse:
    """What a notification may say: who and which inbox, never what they wrote."""
    contact = conversation.contact
    return JsonResponse(
        {
            "conversation_id": conversation.pk,
            "label": who(contact),
            "inbox": conversation.number.label,
            "waiting": conversation.status == ConversationStatus.WAITING,
        }
    )


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
