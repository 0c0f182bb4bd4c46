"""Web chat: a visitor starts a chat from a widget, writes, resumes after a reload or a
dropped network, and ends it. Counselor replies go through messaging's one send service
(`message_send`), which hands chat messages to the visitor's socket instead of a carrier."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from openline.availability.responses import opening_phrase
from openline.availability.selectors import inbox_online, next_opening
from openline.chat.models import ChatSession, ChatWidget, QuestionStage, token_hash
from openline.contacts.models import Contact
from openline.core.models import Organization
from openline.core.realtime import publish_on_commit, publish_to_visitor_on_commit
from openline.messaging.events import conversation_event, publish_message_event, visitor_view
from openline.messaging.models import (
    Channel,
    Conversation,
    ConversationStatus,
    Direction,
    Message,
    MessageStatus,
)

MAX_CHAT_MESSAGE_CHARS = 2000
CLIENT_ID_CHARS = 64


class ChatError(ValueError):
    """A visitor action that is refused; ``code`` for programs, the text for people."""

    def __init__(self, code: str, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.retry_after = retry_after  # seconds, when trying again later can succeed


@dataclass(frozen=True)
class StartLimits:
    """How many chats may start a minute (from everyone, from one address) and wait at
    once (0: no cap) on one widget."""

    per_minute: int
    per_address_per_minute: int
    max_waiting: int


@dataclass(frozen=True)
class StartedChat:
    session: ChatSession
    token: str


def widget_for(public_id: str, origin: str | None) -> ChatWidget:
    """The active widget, if ``origin`` may embed it."""
    widget = (
        ChatWidget.objects.select_related("number")
        .filter(public_id=public_id, is_active=True)
        .first()
    )
    if widget is None:
        raise ChatError("unknown_widget", "There is no such chat.")
    if not widget.allows(origin):
        raise ChatError("origin_refused", "This chat may not be embedded on this website.")
    return widget


def widget_availability(widget: ChatWidget) -> tuple[bool, str | None]:
    """Whether the widget's inbox takes chats now (the online rule) and, if not, when it
    opens again in the organization's words ("Tuesday at 9:00 AM"; None if unknown)."""
    if inbox_online(widget.number_id):
        return True, None
    opens = next_opening(widget.number_id)
    if opens is None:
        return False, None
    zone = Organization.objects.values_list("timezone", flat=True).get(pk=widget.organization_id)
    return False, opening_phrase(opens, tz=zone)


BUSY_TEXT = "All our counselors are busy right now. Please try again in a few minutes."
BUSY_RETRY_SECONDS = 60


def _waiting_chats(widget: ChatWidget) -> int:
    # From the conversation side: the organization-and-status index finds the few waiting
    # ones, however many chats the widget has had.
    return Conversation.objects.filter(
        organization_id=widget.organization_id,
        status=ConversationStatus.WAITING,
        chat_session__widget_id=widget.pk,
    ).count()


def widget_busy(widget: ChatWidget) -> bool:
    """As many of its chats wait as the widget allows (never with no cap)."""
    return widget.max_waiting > 0 and _waiting_chats(widget) >= widget.max_waiting


def _take_a_place(widget: ChatWidget) -> None:
    """Refuse a new chat over the widget's cap. Call inside the start's transaction: the
    widget's row lock (SQLite: the write lock) makes concurrent starts count one by one."""
    if widget.max_waiting == 0:
        return
    ChatWidget.objects.select_for_update().filter(pk=widget.pk).values_list("pk").get()
    if widget_busy(widget):
        raise ChatError("busy", BUSY_TEXT, retry_after=BUSY_RETRY_SECONDS)


def chat_start(
    *, widget: ChatWidget, origin: str, name: str = "", answers: object = None
) -> StartedChat:
    """Open a waiting conversation for a new visitor, with their pre-chat answers (checked
    here; raises questions.AnswerError) setting its priority and the reason counselors see
    ("Chat triage: <prompt>: <answer>", at creation: one way, one event). Refused while the
    inbox is offline, and while the widget has as many chats waiting as it allows ("busy")."""
    from openline.chat.questions import (
        answers_clean,
        priority_of,
        priority_reason_of,
        questions_for,
    )
    from openline.messaging.services.priority import MAX_REASON

    if not inbox_online(widget.number_id):
        raise ChatError("offline", widget.offline_text or "Chat is closed right now.")
    name = " ".join(name.split())[:100]
    prechat = answers_clean(questions_for(widget, QuestionStage.PRE), answers)
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        _take_a_place(widget)
        contact = Contact.objects.create(
            organization_id=widget.organization_id, phone="", name=name
        )
        conversation = Conversation.objects.create(
            organization_id=widget.organization_id,
            number_id=widget.number_id,
            contact=contact,
            channel=Channel.CHAT,
            status=ConversationStatus.WAITING,
            priority=priority_of(prechat),
            priority_reason=priority_reason_of(prechat)[:MAX_REASON],
            last_message_at=now,
        )
        session = ChatSession.objects.create(
            widget=widget,
            conversation=conversation,
            token_hash=token_hash(token),
            origin=origin,
            prechat=prechat,
        )
        publish_on_commit(
            organization_id=widget.organization_id,
            event=conversation_event(conversation, "conversation.created"),
        )
    return StartedChat(session=session, token=token)


def session_for(token: str, widget: ChatWidget) -> ChatSession:
    session = (
        ChatSession.objects.select_related("conversation")
        .filter(token_hash=token_hash(token or ""), widget=widget)
        .first()
    )
    if session is None:
        raise ChatError("unknown_session", "This chat has ended or does not exist.")
    return session


def visitor_message(*, session: ChatSession, body: str, client_id: str) -> tuple[Message, bool]:
    """Store what the visitor wrote. ``client_id`` makes a resend after a dropped connection
    a no-op: the same message comes back with ``False``."""
    if not isinstance(body, str) or not body.strip():
        raise ChatError("empty", "The message is empty.")
    if len(body) > MAX_CHAT_MESSAGE_CHARS:
        raise ChatError("too_long", f"Messages are limited to {MAX_CHAT_MESSAGE_CHARS} characters.")
    if "\x00" in body:
        raise ChatError("invalid", "The message contains a character that cannot be stored.")
    if not isinstance(client_id, str) or not 8 <= len(client_id) <= CLIENT_ID_CHARS:
        raise ChatError("invalid", "Each message needs an id of 8 to 64 characters.")
    key = f"chat:{session.pk}:{client_id}"
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(pk=session.conversation_id)
        existing = Message.objects.filter(
            conversation=conversation, provider_message_id=key
        ).first()
        if existing is not None:
            return existing, False
        if session.ended_at is not None or conversation.status == ConversationStatus.CLOSED:
            raise ChatError("ended", "This chat has ended.")
        now = timezone.now()
        try:
            with transaction.atomic():
                message = Message.objects.create(
                    organization_id=conversation.organization_id,
                    conversation=conversation,
                    direction=Direction.INBOUND,
                    body=body,
                    segments=0,
                    encoding="",
                    status=MessageStatus.RECEIVED,
                    provider_message_id=key,
                    created_at=now,
                )
        except IntegrityError:  # the same resend, twice at once
            return Message.objects.get(conversation=conversation, provider_message_id=key), False
        Conversation.objects.filter(pk=conversation.pk).update(last_message_at=now)
        ChatSession.objects.filter(pk=session.pk).update(last_seen_at=now)
        _raise_for_risk(conversation, body)
        publish_message_event(message, "message.created")
        publish_to_visitor_on_commit(conversation_id=conversation.pk, event=visitor_view(message))
    return message, True


def _raise_for_risk(conversation: Conversation, body: str) -> None:
    """A risk phrase in the visitor's message raises the conversation's priority with the
    phrase as the reason, as an inbound text's does (inside the message's transaction)."""
    from openline.messaging.risk import risk_match
    from openline.messaging.services.priority import conversation_raise_priority

    hit = risk_match(body, organization_id=conversation.organization_id)
    if hit is not None:
        conversation_raise_priority(
            conversation=conversation, priority=hit.priority, reason=hit.reason
        )


def history(session: ChatSession, after_id: int = 0) -> list[dict[str, object]]:
    """Everything visible to the visitor after ``after_id`` (a reconnect catches up)."""
    messages = Message.objects.filter(conversation_id=session.conversation_id, pk__gt=after_id)
    return [visitor_view(m) for m in messages.order_by("pk")[:500]]


def chat_end(*, session: ChatSession) -> None:
    """The visitor ends the chat: the conversation closes, and the console is told."""
    if _end_session(session.pk, session.conversation_id):
        publish_to_visitor_on_commit(
            conversation_id=session.conversation_id, event={"type": "ended", "by": "visitor"}
        )


def _end_session(
    session_id: int,
    conversation_id: int,
    *,
    abandoned: bool = False,
    note: str = "The visitor ended the chat.",
) -> bool:
    """End a session once (False if it already was) and close its conversation."""
    from openline.messaging.services.assignment import conversation_close_by_visitor

    with transaction.atomic():
        updated = ChatSession.objects.filter(pk=session_id, ended_at__isnull=True).update(
            ended_at=timezone.now(), abandoned=abandoned
        )
        if updated:
            conversation_close_by_visitor(conversation_id=conversation_id, note=note)
    return bool(updated)


def mark_received(*, session: ChatSession, ids: object) -> None:
    """The widget showed the counselor's messages ``ids``: they are delivered (the ticks)."""
    from openline.messaging.services.outbound import message_set_status

    if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
        raise ChatError("invalid", "ids must be a list of message ids.")
    received = Message.objects.filter(
        conversation_id=session.conversation_id,
        direction=Direction.OUTBOUND,
        status=MessageStatus.SENT,
        pk__in=ids[:100],
    ).select_related("conversation")
    with transaction.atomic():
        for message in received:
            message_set_status(message=message, status=MessageStatus.DELIVERED)


# --- administration ---------------------------------------------------------------------


def normalize_origin(raw: str) -> str:
    """ "https://www.example.org/some/page" -> "https://www.example.org" (scheme, host, port)."""
    from urllib.parse import urlsplit

    from django.core.exceptions import ValidationError

    text = raw.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(f"“{text[:60]}” is not a website address like https://example.org")
    try:
        port = parts.port
    except ValueError:
        raise ValidationError(f"“{text[:60]}” has an invalid port") from None
    origin = f"{parts.scheme}://{parts.hostname}"
    return f"{origin}:{port}" if port else origin


def origins_clean(raw: list[str]) -> list[str]:
    """The websites a widget may be embedded on, normalized, at least one."""
    from django.core.exceptions import ValidationError

    origins = sorted({normalize_origin(o) for o in raw if o.strip()})
    if not origins:
        raise ValidationError("list at least one website that may embed the chat")
    return origins


def widget_create(
    *,
    organization_id: int,
    actor_id: int | None,
    number_id: int,
    display_name: str,
    allowed_origins: list[str],
    greeting: str = "",
    offline_text: str = "",
    color: str = "#1f5fbf",
    max_waiting: int = 25,
) -> ChatWidget:
    from django.core.exceptions import ValidationError

    from openline.core.services import audit_record
    from openline.providers.models import Number

    if not Number.objects.filter(pk=number_id, organization_id=organization_id).exists():
        raise ValidationError("choose one of your inboxes")
    origins = origins_clean(allowed_origins)
    widget = ChatWidget(
        organization_id=organization_id,
        number_id=number_id,
        display_name=display_name.strip(),
        allowed_origins=origins,
        greeting=greeting.strip(),
        offline_text=offline_text.strip(),
        color=color.strip(),
        max_waiting=max_waiting,
    )
    widget.full_clean()
    with transaction.atomic():
        widget.save()
        audit_record(
            organization_id=organization_id,
            actor_id=actor_id,
            action="chat_widget.create",
            object_type="chat_widget",
            object_id=widget.pk,
        )
    return widget


def widget_update(
    *,
    widget: ChatWidget,
    actor_id: int | None,
    display_name: str,
    allowed_origins: list[str],
    greeting: str = "",
    offline_text: str = "",
    color: str = "#1f5fbf",
    quick_exit_url: str = "https://www.google.com/",
    is_active: bool = True,
    busy_text: str = "",
    limits: StartLimits | None = None,
) -> ChatWidget:
    """Change what a widget shows, where it may be embedded and, given ``limits``, how many
    chats may start and wait (its id and inbox stay)."""

    from openline.core.services import audit_record

    widget.allowed_origins = origins_clean(allowed_origins)
    widget.display_name = display_name.strip()
    widget.greeting = greeting.strip()
    widget.offline_text = offline_text.strip()
    widget.color = color.strip()
    widget.quick_exit_url = quick_exit_url.strip()
    widget.busy_text = busy_text.strip()
    widget.is_active = is_active
    if limits is not None:
        widget.starts_per_minute = limits.per_minute
        widget.starts_per_address_per_minute = limits.per_address_per_minute
        widget.max_waiting = limits.max_waiting
    widget.full_clean()
    with transaction.atomic():
        widget.save()
        audit_record(
            organization_id=widget.organization_id,
            actor_id=actor_id,
            action="chat_widget.update",
            object_type="chat_widget",
            object_id=widget.pk,
        )
    return widget


# --- waiting: position, estimate, abandonment ----------------------------------------------

ESTIMATE_WINDOW_HOURS = 2
ESTIMATE_MIN_SAMPLES = 3


def queue_place(conversation_id: int) -> dict[str, object]:
    return queue_places([conversation_id])[conversation_id]


def queue_places(conversation_ids: Iterable[int]) -> dict[int, dict[str, object]]:
    """Where waiting chats stand: each one's place in its inbox's line (texts and chats,
    as counselors see the queue: higher priority first, then oldest) and an estimated
    wait. A few queries per inbox however many chats are asked about.

    The estimate is the median time-to-assume in that inbox over the last two hours, times
    the place, divided by how many different people assumed conversations there in that
    time (the best sign of who is on duty until shifts exist). With fewer than three
    recent samples it is None: "unknown" rather than an invented number."""
    wanted = set(conversation_ids)
    places: dict[int, dict[str, object]] = {pk: _NOT_WAITING for pk in wanted}
    rows = Conversation.objects.filter(pk__in=wanted, status=ConversationStatus.WAITING)
    for number_id in set(rows.values_list("number_id", flat=True)):
        line = (
            Conversation.objects.filter(number_id=number_id, status=ConversationStatus.WAITING)
            .order_by("-priority", "created_at", "id")
            .values_list("pk", flat=True)
        )
        per_place = _seconds_per_place(number_id)
        for position, pk in enumerate(line, start=1):
            if pk in wanted:
                estimate = None if per_place is None else round(per_place * position)
                places[pk] = {
                    "type": "queue",
                    "waiting": True,
                    "position": position,
                    "estimate_seconds": estimate,
                }
    return places


_NOT_WAITING: dict[str, object] = {
    "type": "queue",
    "waiting": False,
    "position": 0,
    "estimate_seconds": None,
}


def _seconds_per_place(number_id: int) -> float | None:
    import statistics
    from datetime import timedelta

    since = timezone.now() - timedelta(hours=ESTIMATE_WINDOW_HOURS)
    recent = list(
        Conversation.objects.filter(
            number_id=number_id, assigned_at__gte=since, assigned_to__isnull=False
        )
        .order_by("-assigned_at")
        .values_list("created_at", "assigned_at", "assigned_to_id")[:50]
    )
    if len(recent) < ESTIMATE_MIN_SAMPLES:
        return None
    median = statistics.median((a - c).total_seconds() for c, a, _ in recent)
    return max(0.0, median) / len({who for _, _, who in recent})


def sessions_touch(session_ids: Iterable[int]) -> None:
    """The visitors of these sessions are still here (the abandonment check reads it)."""
    ChatSession.objects.filter(pk__in=list(session_ids)).update(last_seen_at=timezone.now())


def chats_close_abandoned() -> int:
    """Close waiting chats whose visitor has been gone OPENLINE_CHAT_ABANDON_MINUTES; they
    leave the queue and are counted, not answered."""
    from datetime import timedelta

    from django.conf import settings

    cutoff = timezone.now() - timedelta(minutes=settings.OPENLINE_CHAT_ABANDON_MINUTES)
    stale = ChatSession.objects.filter(
        ended_at__isnull=True,
        last_seen_at__lt=cutoff,
        conversation__status=ConversationStatus.WAITING,
    ).values_list("pk", "conversation_id")
    return sum(
        _end_session(
            session_id,
            conversation_id,
            abandoned=True,
            note="The visitor left before anyone answered.",
        )
        for session_id, conversation_id in list(stale)
    )


def counselor_typing(conversation: Conversation) -> bool:
    """Tell the visitor someone is writing to them (no content). False if not a live chat."""
    if conversation.channel != Channel.CHAT or conversation.status == ConversationStatus.CLOSED:
        return False
    if not ChatSession.objects.filter(
        conversation_id=conversation.pk, ended_at__isnull=True
    ).exists():
        return False
    with transaction.atomic():
        publish_to_visitor_on_commit(conversation_id=conversation.pk, event={"type": "typing"})
    return True
