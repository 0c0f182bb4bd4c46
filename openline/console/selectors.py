"""Console reads, scoped to an organization."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from openline.console.models import SavedReply
from openline.core.models import Membership, User


@dataclass(frozen=True, slots=True)
class FilledReply:
    name: str
    shortcut: str
    body: str


def saved_reply_list(*, organization_id: int) -> QuerySet[SavedReply]:
    return SavedReply.objects.filter(organization_id=organization_id).order_by("name", "id")


def saved_reply_get(*, organization_id: int, reply_id: int) -> SavedReply:
    return SavedReply.objects.get(organization_id=organization_id, pk=reply_id)


def saved_replies_for(*, membership: Membership, user: User) -> list[FilledReply]:
    """Saved replies with {counselor} and {organization} filled in for this person."""
    names = {"{counselor}": str(user.display_name or user), "{organization}": ""}
    names["{organization}"] = membership.organization.name
    filled = []
    for reply in saved_reply_list(organization_id=membership.organization_id):
        body = reply.body
        for placeholder, value in names.items():
            body = body.replace(placeholder, value)
        filled.append(FilledReply(name=reply.name, shortcut=reply.shortcut, body=body))
    return filled
