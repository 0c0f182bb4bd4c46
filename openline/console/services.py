"""State changes the console makes that have no better home yet."""

from __future__ import annotations

from typing import Literal

from django.core.exceptions import ValidationError
from django.db import transaction

from openline.console.models import SavedReply
from openline.contacts.models import ConsentSource
from openline.contacts.selectors import consent_state
from openline.contacts.services import (
    consent_dismiss_check,
    consent_dismiss_request,
    consent_record_opt_out,
)
from openline.core.models import Membership
from openline.core.realtime import publish_on_commit
from openline.core.services import audit_record
from openline.messaging.models import Conversation
from openline.messaging.services.outbound import conversation_event

ReviewDecision = Literal["opt_out", "not_opt_out"]


@transaction.atomic
def conversation_review_consent(
    *, conversation: Conversation, actor_id: int, decision: ReviewDecision, reason: str = ""
) -> bool:
    """Settle the free-text opt-out request flagged on ``conversation``: record the opt-out
    (anyone who may open the conversation) or dismiss the request (a supervisor or admin,
    with a written reason), and clear the flag on every conversation with this person
    (consent is per phone number). Returns False, recording nothing, when the flag was
    already cleared, so a double submit never writes a second ledger event. Raises
    ConsentError, changing nothing, when a dismissal is not allowed."""
    org_id = conversation.organization_id
    if decision == "not_opt_out":
        reason = consent_dismiss_check(organization_id=org_id, actor_id=actor_id, reason=reason)
    flagged = Conversation.objects.filter(pk=conversation.pk, needs_consent_review=True)
    if not flagged.update(needs_consent_review=False):
        return False
    Conversation.objects.filter(
        organization_id=org_id,
        contact_id=conversation.contact_id,
        needs_consent_review=True,
    ).update(needs_consent_review=False)
    phone = conversation.contact.phone
    if decision == "opt_out":
        pending = consent_state(organization_id=org_id, phone=phone).pending_request
        # The person's own words, confirmed: an opt-out only they can undo.
        event = consent_record_opt_out(
            organization_id=org_id,
            phone=phone,
            source=ConsentSource.MESSAGE,
            text=pending.text if pending else "",
            evidence="opt-out request confirmed by staff in the console",
            actor_id=actor_id,
            number_id=conversation.number_id,
        )
        audit_record(
            organization_id=org_id,
            actor_id=actor_id,
            action="consent.request_confirmed",
            object_type="consent_event",
            object_id=event.pk,
        )
    else:
        consent_dismiss_request(
            organization_id=org_id,
            phone=phone,
            actor_id=actor_id,
            reason=reason,
            number_id=conversation.number_id,
        )
    conversation.needs_consent_review = False
    publish_on_commit(
        organization_id=org_id, event=conversation_event(conversation, "conversation.updated")
    )
    return True


def saved_reply_save(
    *,
    organization_id: int,
    actor_id: int,
    reply: SavedReply | None,
    name: str,
    shortcut: str,
    body: str,
) -> SavedReply:
    """Create or change a saved reply; a shortcut is unique within the organization."""
    if reply is None:
        reply = SavedReply(organization_id=organization_id)
    elif reply.organization_id != organization_id:
        raise ValidationError("no such saved reply")
    clash = SavedReply.objects.filter(organization_id=organization_id, shortcut=shortcut)
    if reply.pk:
        clash = clash.exclude(pk=reply.pk)
    if clash.exists():
        raise ValidationError(f"another saved reply already uses /{shortcut}")
    reply.name, reply.shortcut, reply.body = name, shortcut, body
    reply.save()
    audit_record(
        organization_id=organization_id,
        actor_id=actor_id,
        action="saved_reply.save",
        object_type="saved_reply",
        object_id=reply.pk,
    )
    return reply


def saved_reply_delete(*, reply: SavedReply, actor_id: int) -> None:
    audit_record(
        organization_id=reply.organization_id,
        actor_id=actor_id,
        action="saved_reply.delete",
        object_type="saved_reply",
        object_id=reply.pk,
    )
    reply.delete()


def membership_set_preferences(*, membership: Membership, **preferences: bool) -> Membership:
    """The member's own notification switches."""
    allowed = {"notify_new_conversation", "notify_new_message", "notify_desktop", "notify_sound"}
    for name, value in preferences.items():
        if name not in allowed:
            raise ValueError(f"unknown preference {name}")
        setattr(membership, name, bool(value))
    membership.save(update_fields=list(preferences))
    return membership
