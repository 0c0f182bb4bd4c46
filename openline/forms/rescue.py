"""The imminent-risk checklist: when a person in a conversation is at imminent risk, the
counselor starts a checklist of rescue steps, ticks each as it is done (who and when are
recorded) and ends it. Starting it tells the supervisors at once: a console event their
consoles show as a notification, and a text to those on shift (alerts.rescue).

Only someone who can reply in the open conversation acts on it: its holder, or a
supervisor or admin who joined or took it over. Everyone who can read the conversation
sees the checklist. The steps are the same for every organization (DEFAULT_STEPS); a
per-organization list is not built. A member cannot close a conversation whose checklist is
under way (end it first); one closed otherwise ends its checklist with it."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from openline.core.models import Membership
from openline.core.realtime import publish_on_commit
from openline.core.services import audit_record
from openline.forms.models import RiskChecklist, RiskStep
from openline.messaging.models import Conversation, ConversationStatus
from openline.messaging.services.assignment import conversation_access

logger = logging.getLogger(__name__)

# (key, label) in the order they are usually done. Keys stay put; labels may be reworded.
DEFAULT_STEPS: list[tuple[str, str]] = [
    ("location", "Asked where they are and wrote down the location"),
    ("emergency", "Called emergency services (911) or 988 mobile crisis"),
    ("supervisor", "Told the supervisor on shift"),
    ("contact", "Stayed in contact until their safety was confirmed"),
    ("follow_up", "Arranged a follow-up"),
]
EVENT = "conversation.rescue"
MAX_NOTE = 500


class RescueError(Exception):
    """Why a checklist action was refused, as a sentence for the pane."""


def can_act(*, membership: Membership, conversation: Conversation) -> bool:
    """Whether this member may start, tick or end the checklist: the conversation is open
    (someone holds it) and they can reply in it."""
    if conversation.status != ConversationStatus.ACTIVE:
        return False
    return conversation_access(membership=membership, conversation=conversation).reply


def _check(membership: Membership, conversation: Conversation) -> None:
    if conversation.organization_id != membership.organization_id:
        raise RescueError("This conversation is not in your organization.")
    if conversation.status == ConversationStatus.CLOSED:
        raise RescueError("This conversation is closed.")
    if conversation.status == ConversationStatus.WAITING:
        raise RescueError("Assume the conversation first.")
    if not can_act(membership=membership, conversation=conversation):
        raise RescueError(
            "Only the counselor with this conversation, or a supervisor who joined it, can do this."
        )


def open_checklist(conversation_id: int) -> RiskChecklist | None:
    return RiskChecklist.objects.filter(
        conversation_id=conversation_id, ended_at__isnull=True
    ).first()


def risk_checklist_start(*, membership: Membership, conversation: Conversation) -> RiskChecklist:
    """Start the checklist (or return the open one: starting twice alerts nobody twice).
    After commit the organization's consoles hear of it and the supervisors on shift are
    texted (alerts.rescue)."""
    try:
        with transaction.atomic():
            locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
            _check(membership, locked)
            existing = open_checklist(locked.pk)
            if existing is not None:
                return existing
            return _create(membership, locked)
    except IntegrityError:  # someone else started it a moment ago
        existing = open_checklist(conversation.pk)
        if existing is None:
            raise
        return existing


def _create(membership: Membership, conversation: Conversation) -> RiskChecklist:
    checklist = RiskChecklist.objects.create(
        organization_id=conversation.organization_id,
        conversation=conversation,
        started_by_id=membership.user_id,
        started_at=timezone.now(),
    )
    RiskStep.objects.bulk_create(
        RiskStep(
            organization_id=conversation.organization_id,
            checklist=checklist,
            key=key,
            label=label,
            position=position,
        )
        for position, (key, label) in enumerate(DEFAULT_STEPS)
    )
    _audit(membership, "risk_checklist.start", checklist.pk, conversation.pk)
    _publish(conversation, checklist, "start", membership.user_id)
    conversation_id, user_id = conversation.pk, membership.user_id
    transaction.on_commit(lambda: _alert(conversation_id, user_id))
    return checklist


def _alert(conversation_id: int, user_id: int) -> None:
    """The supervisors' texts. A failure is logged: the checklist stands, and the console
    notification has gone out already."""
    from openline.alerts.rescue import rescue_alerts_send

    try:
        rescue_alerts_send(conversation_id=conversation_id, started_by_id=user_id)
    except Exception:
        logger.exception("rescue alert for conversation %d failed", conversation_id)


def risk_step_mark(
    *, membership: Membership, step: RiskStep, done: bool, note: str = ""
) -> RiskStep:
    """Tick (who and when are recorded, with an optional note) or untick one step of an
    open checklist. Ticking a step already done keeps who and when, and saves the note."""
    note = note.strip()
    if len(note) > MAX_NOTE:
        raise RescueError(f"Keep the note under {MAX_NOTE} characters.")
    with transaction.atomic():
        locked = RiskStep.objects.select_for_update().select_related("checklist").get(pk=step.pk)
        checklist = locked.checklist
        conversation = Conversation.objects.get(pk=checklist.conversation_id)
        _check(membership, conversation)
        if checklist.ended_at is not None:
            raise RescueError("This checklist has ended.")
        if done and locked.done_at is not None:  # a note added to a step already done
            locked.note = note
        elif done:
            locked.done_by_id, locked.done_at, locked.note = (
                membership.user_id,
                timezone.now(),
                note,
            )
        else:
            locked.done_by_id, locked.done_at, locked.note = None, None, ""
        locked.save(update_fields=["done_by", "done_at", "note"])
        action = "risk_step.done" if done else "risk_step.undone"
        _audit(membership, action, locked.pk, conversation.pk, detail=locked.key)
        _publish(conversation, checklist, "step", membership.user_id)
    return locked


def risk_checklist_end(*, membership: Membership, checklist: RiskChecklist) -> RiskChecklist:
    """End the open checklist: it stays in the conversation's history, read-only."""
    with transaction.atomic():
        locked = RiskChecklist.objects.select_for_update().get(pk=checklist.pk)
        conversation = Conversation.objects.get(pk=locked.conversation_id)
        _check(membership, conversation)
        if locked.ended_at is not None:
            raise RescueError("This checklist has ended already.")
        locked.ended_by_id, locked.ended_at = membership.user_id, timezone.now()
        locked.save(update_fields=["ended_by", "ended_at"])
        _audit(membership, "risk_checklist.end", locked.pk, conversation.pk)
        _publish(conversation, locked, "end", membership.user_id)
    return locked


def rescue_blocks_close(conversation: Conversation) -> list[str]:
    """A checklist under way is ended on purpose before its conversation closes (a close
    check, registered with messaging.hooks): closing mid-rescue is a mistake to catch."""
    if open_checklist(conversation.pk) is None:
        return []
    return ["End the imminent-risk checklist (what was done stays in the history)."]


def on_closed(conversation_ids: list[int]) -> None:
    """A conversation closed without a member's close (the chat visitor left, an automatic
    close): its checklist under way ends with it, by nobody, so it does not stay open on a
    conversation nobody can act on. Audited; consoles with it open redraw."""
    now = timezone.now()
    for checklist in RiskChecklist.objects.filter(
        conversation_id__in=conversation_ids, ended_at__isnull=True
    ).select_related("conversation"):
        with transaction.atomic():
            if not RiskChecklist.objects.filter(pk=checklist.pk, ended_at__isnull=True).update(
                ended_at=now
            ):
                continue  # ended meanwhile
            conversation = checklist.conversation
            audit_record(
                organization_id=conversation.organization_id,
                actor_id=None,
                action="risk_checklist.end",
                object_type="conversation",
                object_id=conversation.pk,
                detail=f"when the conversation closed #{checklist.pk}",
            )
            _publish(conversation, checklist, "end", None)


def _audit(
    membership: Membership, action: str, object_id: int, conversation_id: int, detail: str = ""
) -> None:
    audit_record(
        organization_id=membership.organization_id,
        actor_id=membership.user_id,
        action=action,
        object_type="conversation",
        object_id=conversation_id,
        detail=f"{detail} #{object_id}".strip(),
    )


def _publish(
    conversation: Conversation, checklist: RiskChecklist, action: str, user_id: int | None
) -> None:
    """Ids only: consoles with the conversation open redraw it; on "start", supervisors'
    consoles show a notification."""
    publish_on_commit(
        organization_id=conversation.organization_id,
        event={
            "type": EVENT,
            "action": action,
            "conversation_id": conversation.pk,
            "checklist_id": checklist.pk,
            "user_id": user_id,
            "status": conversation.status,
            "assigned_to_id": conversation.assigned_to_id,
        },
    )


# --- reads ---------------------------------------------------------------------------------


def step_get(*, organization_id: int, conversation_id: int, step_id: int) -> RiskStep | None:
    return RiskStep.objects.filter(
        pk=step_id, organization_id=organization_id, checklist__conversation_id=conversation_id
    ).first()


def checklist_get(
    *, organization_id: int, conversation_id: int, checklist_id: int
) -> RiskChecklist | None:
    return RiskChecklist.objects.filter(
        pk=checklist_id, organization_id=organization_id, conversation_id=conversation_id
    ).first()
