"""Who holds a conversation: assume, transfer, close, join, take over, notes and read state.

Every change is one conditional UPDATE, so two people acting at the same moment cannot
both win; the loser is told who has the conversation. Assignment changes are published
with the old and new holder so each console can move the conversation between its views."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from openline.contacts.models import Contact
from openline.core.models import Membership, User
from openline.core.realtime import publish_on_commit, publish_to_visitor_on_commit
from openline.core.services import audit_record
from openline.messaging import hooks
from openline.messaging.events import conversation_event
from openline.messaging.models import (
    Channel,
    Conversation,
    ConversationNote,
    ConversationParticipant,
    ConversationRead,
    ConversationStatus,
    Message,
    NoteKind,
)
from openline.messaging.selectors import not_held
from openline.messaging.services.outbound import message_send

MAX_NOTE_CHARS = 2000


class AssignmentError(Exception):
    """A refused assignment change; ``code`` is stable for the API, the text is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Access:
    """What a member may do with one conversation."""

    read: bool
    reply: bool
    monitoring: bool  # a supervisor reading a conversation someone else holds


def conversation_access(*, membership: Membership, conversation: Conversation) -> Access:
    """Supervisors and admins see everything and reply once they join or take over.
    Counselors see the queue, their own conversations, closed ones they held and closed ones
    nobody held (system texts, a chat left in the queue: never anyone's caseload, and the
    history a reply to them shows); they may reply to their own and to waiting ones
    (replying assumes it). messaging.selectors.readable_by is the same rule as a query."""
    if conversation.channel == Channel.ALERT:
        # Staff alert texts and alert-phone confirmation codes: nobody reads these in the
        # console (a code read there would let anyone confirm a stranger's phone); the
        # Alerts page lists what was sent, without text.
        return Access(read=False, reply=False, monitoring=False)
    user_id = membership.user_id
    mine = conversation.assigned_to_id == user_id
    waiting = conversation.status == ConversationStatus.WAITING
    closed = conversation.status == ConversationStatus.CLOSED
    if membership.can_manage:
        joined = mine or _is_participant(conversation, user_id)
        reply = not closed and (waiting or joined or conversation.assigned_to_id is None)
        return Access(read=True, reply=reply, monitoring=not reply and not closed)
    if mine:
        return Access(read=True, reply=not closed, monitoring=False)
    if waiting and conversation.assigned_to_id is None:
        return Access(read=True, reply=True, monitoring=False)
    if closed and conversation.assigned_to_id is None:
        return Access(read=True, reply=False, monitoring=False)
    return Access(read=False, reply=False, monitoring=False)


def _is_participant(conversation: Conversation, user_id: int) -> bool:
    return ConversationParticipant.objects.filter(
        conversation_id=conversation.pk, user_id=user_id
    ).exists()


def _holder_name(conversation_id: int) -> str:
    holder = (
        User.objects.filter(conversation__pk=conversation_id).only("display_name", "email").first()
    )
    return str(holder) if holder else "someone else"


def _refresh(conversation: Conversation) -> None:
    fresh = Conversation.objects.get(pk=conversation.pk)
    conversation.status = fresh.status
    conversation.assigned_to_id = fresh.assigned_to_id
    conversation.assigned_at = fresh.assigned_at
    conversation.closed_at = fresh.closed_at


def _publish(conversation: Conversation, kind: str, *, previous: int | None = None) -> None:
    event = conversation_event(conversation, kind)
    event["previous_assigned_to_id"] = previous
    publish_on_commit(organization_id=conversation.organization_id, event=event)


def _note(conversation: Conversation, author_id: int | None, kind: str, body: str) -> None:
    ConversationNote.objects.create(
        organization_id=conversation.organization_id,
        conversation_id=conversation.pk,
        author_id=author_id,
        kind=kind,
        body=body[:MAX_NOTE_CHARS],
        created_at=timezone.now(),
    )


def _check_limit(membership: Membership, *, actor_id: int | None = None) -> None:
    """Refuse when ``membership`` already holds their limit of active conversations; the
    message speaks to the actor when that is someone else (a transfer). A deactivated
    member holds nothing. Call inside the transaction: the membership row lock serializes
    one person's claims, and their deactivation (which returns what they hold)."""
    locked = Membership.objects.select_for_update().filter(pk=membership.pk).first()
    if locked is None or not locked.is_active:
        if actor_id is not None and actor_id != membership.user_id:
            raise AssignmentError("inactive", f"{membership.user} is no longer on the team")
        raise AssignmentError("inactive", "you are no longer a member of this organization")
    held = Conversation.objects.filter(
        organization_id=membership.organization_id,
        assigned_to_id=membership.user_id,
        status=ConversationStatus.ACTIVE,
    ).count()
    limit = membership.conversation_limit
    if held < limit:
        return
    active = f"{held} active conversation{'s' if held != 1 else ''}"
    if actor_id is not None and actor_id != membership.user_id:
        raise AssignmentError(
            "limit",
            f"cannot transfer: {membership.user} already has {active} (their limit is"
            f" {limit}); choose someone else or the queue",
        )
    raise AssignmentError(
        "limit", f"you already have {active} (the limit is {limit}); close or transfer one first"
    )


@transaction.atomic
def conversation_assume(*, membership: Membership, conversation: Conversation) -> Conversation:
    """Claim a waiting conversation. Exactly one of several simultaneous claims wins; the
    others raise AssignmentError("taken") naming who has it."""
    if conversation.assigned_to_id == membership.user_id:
        return conversation
    _check_limit(membership)
    now = timezone.now()
    won = Conversation.objects.filter(
        pk=conversation.pk, status=ConversationStatus.WAITING, assigned_to__isnull=True
    ).update(status=ConversationStatus.ACTIVE, assigned_to_id=membership.user_id, assigned_at=now)
    _refresh(conversation)
    if not won:
        if conversation.status == ConversationStatus.CLOSED:
            raise AssignmentError("closed", "this conversation is closed")
        if conversation.assigned_to_id == membership.user_id:
            return conversation
        raise AssignmentError("taken", f"already taken: {_holder_name(conversation.pk)} has it")
    _note(conversation, membership.user_id, NoteKind.EVENT, "assumed the conversation")
    _publish(conversation, "conversation.assigned")
    return conversation


# How many waiting conversations Take next tries when others are claiming at the same time
# (each lost race moves on to the next one in the queue's order).
TAKE_NEXT_TRIES = 5


@transaction.atomic
def conversation_assume_next(
    *, membership: Membership, number_id: int | None = None
) -> Conversation | None:
    """Assume the first conversation in the Waiting view's order (highest priority, then
    the oldest; held ones are not in the queue yet), optionally in one inbox, within the
    member's limit like Assume (AssignmentError("limit")). None when nobody is waiting.

    On PostgreSQL the candidate row is locked with SKIP LOCKED, so people clicking at the
    same moment each get a different conversation instead of queueing behind one row; on
    SQLite writes are serialized anyway, and a claim lost to a plain Assume moves on."""
    _check_limit(membership)
    waiting = (
        Conversation.objects.filter(
            not_held(),
            organization_id=membership.organization_id,
            status=ConversationStatus.WAITING,
            assigned_to__isnull=True,
        )
        .exclude(channel=Channel.ALERT)
        .order_by("-priority", "created_at", "id")
    )
    if number_id is not None:
        waiting = waiting.filter(number_id=number_id)
    if connection.features.has_select_for_update_skip_locked:
        waiting = waiting.select_for_update(skip_locked=True)
    skipped: list[int] = []
    for _ in range(TAKE_NEXT_TRIES):
        conversation = waiting.exclude(pk__in=skipped).first()
        if conversation is None:
            return None
        try:
            return conversation_assume(membership=membership, conversation=conversation)
        except AssignmentError as exc:
            if exc.code not in ("taken", "closed"):
                raise
            skipped.append(conversation.pk)
    raise AssignmentError("busy", "others are taking conversations right now; try again")


@transaction.atomic
def conversation_transfer(
    *,
    membership: Membership,
    conversation: Conversation,
    to: Membership | None,
    note: str = "",
) -> Conversation:
    """Hand an open conversation to another member, or back to the queue (``to=None``),
    with a private note. The person texting receives nothing."""
    _refresh(conversation)
    if conversation.status == ConversationStatus.CLOSED:
        raise AssignmentError("closed", "this conversation is closed")
    holder = conversation.assigned_to_id
    if holder != membership.user_id and not membership.can_manage:
        raise AssignmentError("not_yours", "only the person who has it or a supervisor can")
    if to is not None:
        if to.organization_id != conversation.organization_id:
            raise AssignmentError("unknown_user", "no such member")
        if to.user_id == holder:
            raise AssignmentError("same", f"{to.user} already has it")
        _check_limit(to, actor_id=membership.user_id)
        status, assignee = ConversationStatus.ACTIVE, to.user_id
    else:
        status, assignee = ConversationStatus.WAITING, None
    moved = Conversation.objects.filter(
        pk=conversation.pk, assigned_to_id=holder, status=conversation.status
    ).update(status=status, assigned_to_id=assignee, assigned_at=timezone.now())
    if not moved:
        raise AssignmentError("changed", "someone changed this conversation meanwhile; try again")
    _refresh(conversation)
    target = str(to.user) if to is not None else "the queue"
    _note(conversation, membership.user_id, NoteKind.TRANSFER, f"→ {target}\n{note}".strip())
    _publish(conversation, "conversation.assigned", previous=holder)
    return conversation


@transaction.atomic
def conversations_return_to_queue(*, organization_id: int, user_id: int, note: str) -> list[int]:
    """Put every active conversation ``user_id`` holds in this organization back in the
    queue (waiting, nobody's), each with an event note, published to the consoles. For a
    member leaving the team (call after their deactivation: they can claim nothing more).
    Returns the conversations' ids."""
    held = list(
        Conversation.objects.select_for_update()
        .filter(
            organization_id=organization_id,
            assigned_to_id=user_id,
            status=ConversationStatus.ACTIVE,
        )
        .order_by("pk")
    )
    now = timezone.now()
    for conversation in held:
        Conversation.objects.filter(pk=conversation.pk).update(
            status=ConversationStatus.WAITING, assigned_to_id=None, assigned_at=now
        )
        _refresh(conversation)
        _note(conversation, None, NoteKind.EVENT, note)
        _publish(conversation, "conversation.assigned", previous=user_id)
    return [conversation.pk for conversation in held]


@transaction.atomic
def conversation_close(
    *, membership: Membership, conversation: Conversation, wrap_up: str = ""
) -> Conversation:
    """Close with an optional wrap-up note: the holder, or a supervisor or admin (a
    counselor cannot close a waiting conversation, nor anyone else's). A later text from
    the person opens a new waiting conversation (inbound processing), with this one in its
    history."""
    _refresh(conversation)
    holder = conversation.assigned_to_id
    if conversation.status == ConversationStatus.CLOSED:
        raise AssignmentError("closed", "this conversation is already closed")
    if holder != membership.user_id and not membership.can_manage:
        raise AssignmentError("not_yours", _close_refusal(conversation))
    blockers = hooks.close_blockers(conversation)
    if blockers:
        raise AssignmentError("incomplete", "Before closing: " + " ".join(blockers))
    now = timezone.now()
    # Conditional on the holder too: handed to someone else meanwhile, it is not ours to close.
    closed = Conversation.objects.filter(
        pk=conversation.pk, status=conversation.status, assigned_to_id=holder
    ).update(status=ConversationStatus.CLOSED, closed_at=now)
    if not closed:
        raise AssignmentError("changed", "someone changed this conversation meanwhile; try again")
    _refresh(conversation)
    _note(conversation, membership.user_id, NoteKind.WRAP_UP, wrap_up.strip())
    _publish(conversation, "conversation.closed", previous=holder)
    _closed_on_commit(conversation.pk)
    if conversation.channel == Channel.CHAT:  # the visitor's widget moves on to the survey
        publish_to_visitor_on_commit(
            conversation_id=conversation.pk, event={"type": "ended", "by": "counselor"}
        )
    return conversation


def _closed_on_commit(conversation_id: int) -> None:
    transaction.on_commit(lambda: hooks.conversations_closed([conversation_id]))


def _close_refusal(conversation: Conversation) -> str:
    if conversation.assigned_to_id is None:
        return "only a supervisor can close a conversation nobody has; assume it first"
    return f"{_holder_name(conversation.pk)} has it; only they or a supervisor can close it"


def conversation_close_by_visitor(*, conversation_id: int, note: str) -> None:
    """A web-chat visitor ended the chat, or left it waiting (call inside a transaction)."""
    conversation_close_unattended(conversation_id=conversation_id, note=note)


def conversation_close_unattended(
    *, conversation_id: int, note: str, handled: bool = False
) -> None:
    """Close with an event note when nobody needs to act (a visitor left; a clear answer to
    a reminder or survey was handled: ``handled``, which reports count apart from the
    conversations nobody answered). Call inside a transaction."""
    conversation = Conversation.objects.select_for_update().get(pk=conversation_id)
    if conversation.status == ConversationStatus.CLOSED:
        return
    holder = conversation.assigned_to_id
    conversation.status, conversation.closed_at = ConversationStatus.CLOSED, timezone.now()
    conversation.handled_automatically = handled
    conversation.save(update_fields=["status", "closed_at", "handled_automatically"])
    _note(conversation, None, NoteKind.EVENT, note)
    _publish(conversation, "conversation.closed", previous=holder)
    _closed_on_commit(conversation.pk)


def _require_supervisor(membership: Membership) -> None:
    if not membership.can_manage:
        raise AssignmentError("forbidden", "only supervisors and admins can do that")


@transaction.atomic
def conversation_join(*, membership: Membership, conversation: Conversation) -> Conversation:
    """A supervisor joins someone's conversation: they may reply alongside the holder."""
    _require_supervisor(membership)
    _refresh(conversation)
    if conversation.status == ConversationStatus.CLOSED:
        raise AssignmentError("closed", "this conversation is closed")
    _, created = ConversationParticipant.objects.get_or_create(
        conversation_id=conversation.pk,
        user_id=membership.user_id,
        defaults={"organization_id": conversation.organization_id, "joined_at": timezone.now()},
    )
    if created:
        _note(conversation, membership.user_id, NoteKind.EVENT, "joined the conversation")
        _audit(conversation, membership, "conversation.join")
        _publish(conversation, "conversation.updated")
    return conversation


def _audit(
    conversation: Conversation, membership: Membership, action: str, detail: str = ""
) -> None:
    audit_record(
        organization_id=conversation.organization_id,
        actor_id=membership.user_id,
        action=action,
        object_type="conversation",
        object_id=conversation.pk,
        detail=detail,
    )


@transaction.atomic
def conversation_take_over(*, membership: Membership, conversation: Conversation) -> Conversation:
    """A supervisor takes the conversation over from its holder. No limit applies: a
    supervisor stepping in must never be refused."""
    _require_supervisor(membership)
    _refresh(conversation)
    holder = conversation.assigned_to_id
    if conversation.status == ConversationStatus.CLOSED:
        raise AssignmentError("closed", "this conversation is closed")
    if holder == membership.user_id:
        return conversation
    previous = f"from {_holder_name(conversation.pk)}" if holder else "from the queue"
    Conversation.objects.filter(pk=conversation.pk).update(
        status=ConversationStatus.ACTIVE,
        assigned_to_id=membership.user_id,
        assigned_at=timezone.now(),
    )
    _refresh(conversation)
    _note(conversation, membership.user_id, NoteKind.EVENT, "took over the conversation")
    _audit(conversation, membership, "conversation.take_over", previous)
    _publish(conversation, "conversation.assigned", previous=holder)
    return conversation


@transaction.atomic
def conversation_note_add(
    *, membership: Membership, conversation: Conversation, body: str
) -> ConversationNote:
    """An internal note: visible to staff, never sent."""
    body = body.strip()
    if not body:
        raise AssignmentError("empty", "write a note first")
    if len(body) > MAX_NOTE_CHARS:
        raise AssignmentError("too_long", f"notes are limited to {MAX_NOTE_CHARS} characters")
    note = ConversationNote.objects.create(
        organization_id=conversation.organization_id,
        conversation_id=conversation.pk,
        author_id=membership.user_id,
        kind=NoteKind.NOTE,
        body=body,
        created_at=timezone.now(),
    )
    _publish(conversation, "conversation.note")
    return note


def conversation_mark_read(*, user_id: int, conversation: Conversation) -> bool:
    """Returns whether it was unread for this user (so the list needs its dot changed)."""
    state = ConversationRead.objects.filter(user_id=user_id, conversation_id=conversation.pk)
    read = state.values_list("read_at", "marked_unread").first()
    if read is not None and not read[1] and read[0] >= conversation.last_message_at:
        return False
    ConversationRead.objects.update_or_create(
        user_id=user_id,
        conversation_id=conversation.pk,
        defaults={
            "organization_id": conversation.organization_id,
            "read_at": timezone.now(),
            "marked_unread": False,
        },
    )
    return True


def conversation_mark_unread(*, user_id: int, conversation: Conversation) -> None:
    ConversationRead.objects.update_or_create(
        user_id=user_id,
        conversation_id=conversation.pk,
        defaults={"organization_id": conversation.organization_id, "marked_unread": True},
        create_defaults={
            "organization_id": conversation.organization_id,
            "marked_unread": True,
            "read_at": timezone.now(),
        },
    )


@transaction.atomic
def conversation_reply(*, membership: Membership, conversation: Conversation, body: str) -> Message:
    """A staff reply: only someone who may reply does; replying to a waiting conversation
    assumes it first (so two counselors never answer the same person by accident). The
    consent and length checks are message_send's."""
    _refresh(conversation)
    access = conversation_access(membership=membership, conversation=conversation)
    if not access.reply:
        if conversation.status == ConversationStatus.CLOSED:
            raise AssignmentError("closed", "this conversation is closed")
        raise AssignmentError(
            "not_yours",
            f"{_holder_name(conversation.pk)} has this conversation; join or take over to reply",
        )
    if conversation.status == ConversationStatus.WAITING:
        conversation_assume(membership=membership, conversation=conversation)
    message = message_send(
        organization_id=membership.organization_id,
        conversation=conversation,
        body=body,
        sender_id=membership.user_id,
    )
    conversation_mark_read(user_id=membership.user_id, conversation=conversation)
    return message


@transaction.atomic
def conversation_start(
    *, membership: Membership, contact: Contact, number_id: int, body: str
) -> Message:
    """Write first to a person from the contact directory. If they already have an open
    conversation on that inbox it is a reply there (with the same rules: nobody writes into
    someone else's conversation, and a waiting one is assumed, within the limit); otherwise
    a new conversation, held by the writer, counts against their limit like an assume."""
    open_one = (
        Conversation.objects.filter(contact_id=contact.pk, number_id=number_id)
        .exclude(status=ConversationStatus.CLOSED)
        .first()
    )
    if open_one is not None:
        return conversation_reply(membership=membership, conversation=open_one, body=body)
    _check_limit(membership)
    return message_send(
        organization_id=membership.organization_id,
        to=contact.phone,
        number_id=number_id,
        body=body,
        sender_id=membership.user_id,
    )
