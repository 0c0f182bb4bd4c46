"""The imminent-risk alert: when a counselor starts the rescue checklist in a conversation
(forms.rescue), the supervisors and admins on shift now, and the people on call, get one
text each.

Recipients and sending are the sweep's: the high-risk wait alert's people (its ``Roster``:
a shift covering now, an active membership, a confirmed alert phone with alert texts on
and the person's permission in the consent ledger) and ``alert_send`` (the Alert row and
its text together; the unique key on conversation, kind, attempt and phone makes it once
per conversation and phone, so a second start, or a new checklist after the first ended,
texts nobody again). A phone that texted STOP since is refused by the send service, and
the row records why.

The text names the inbox and the counselor's first name, with a console link: never what
anyone wrote, nor the name or number of the person at risk. forms imports this module;
it imports nothing from forms."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from openline.alerts.models import AlertKind
from openline.alerts.sweep import Recipient, Step, alert_send, high_risk_recipients
from openline.core.models import Membership
from openline.messaging.models import Conversation

logger = logging.getLogger(__name__)

RESCUE_STEP = Step(AlertKind.RESCUE, 1, 0)


@dataclass
class RescueAlerts:
    sent: int = 0
    refused: int = 0
    skipped: int = 0


def rescue_recipients(*, organization_id: int, exclude_user_id: int | None) -> list[Recipient]:
    """The high-risk alert's people (supervisors and admins on a shift of the organization
    now, and everyone on call), one per phone, but not ``exclude_user_id``: whoever started
    the checklist knows already."""
    found = high_risk_recipients(timezone.now(), {organization_id}).get(organization_id, [])
    return [r for r in found if r.user_id is None or r.user_id != exclude_user_id]


def rescue_text(*, conversation: Conversation, inbox: str, first_name: str) -> str:
    link = settings.PUBLIC_URL + reverse("console:conversation", args=[conversation.pk])
    return (
        f"OpenLine: imminent risk in a conversation in {inbox}, {first_name} started the "
        f"rescue checklist. {link}"
    )


def rescue_alerts_send(*, conversation_id: int, started_by_id: int | None) -> RescueAlerts:
    """Text the supervisors on shift that a rescue checklist started (call after commit)."""
    conversation = Conversation.objects.select_related("number").get(pk=conversation_id)
    result = RescueAlerts()
    recipients = rescue_recipients(
        organization_id=conversation.organization_id, exclude_user_id=started_by_id
    )
    if not recipients:
        return result
    body = rescue_text(
        conversation=conversation,
        inbox=conversation.number.label,
        first_name=_first_name(conversation.organization_id, started_by_id),
    )
    for recipient in recipients:
        outcome = alert_send(
            conversation=conversation, step=RESCUE_STEP, recipient=recipient, body=body
        )
        setattr(result, outcome, getattr(result, outcome) + 1)
    logger.info(
        "rescue alert: conversation %d, %d sent, %d refused, %d already sent",
        conversation_id,
        result.sent,
        result.refused,
        result.skipped,
    )
    return result


def _first_name(organization_id: int, user_id: int | None) -> str:
    """The counselor's first name as their team knows it; never their e-mail address."""
    if user_id is None:
        return "a team member"
    member = (
        Membership.objects.filter(organization_id=organization_id, user_id=user_id)
        .select_related("user")
        .first()
    )
    if member is None:
        return "a team member"
    user = member.user
    name = (user.first_name or user.display_name).strip()
    return name.split()[0] if name else "a team member"
