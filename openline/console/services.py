"""The console's own state: saved replies and each member's notification switches.
Consent reviews are messaging's ``conversation_review_consent`` (decisions: contacts)."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from openline.console.models import SavedReply
from openline.core.models import Membership
from openline.core.services import audit_record


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
