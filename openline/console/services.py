"""State changes the console makes that have no better home yet."""

from __future__ import annotations

from typing import Literal

from django.db import transaction

from openline.contacts.models import ConsentSource
from openline.contacts.selectors import consent_state
from openline.contacts.services import consent_dismiss_request, consent_record_opt_out
from openline.core.realtime import publish_on_commit
from openline.messaging.models import Conversation

ReviewDecision = Literal["opt_out", "not_opt_out"]


@transaction.atomic
def conversation_review_consent(
    *, conversation: Conversation, actor_id: int, decision: ReviewDecision
) -> bool:
    """Settle the free-text opt-out request flagged on ``conversation``: record the opt-out
    or dismiss the request, and clear the flag on every conversation with this person
    (consent is per phone number). Returns False, recording nothing, when the flag was
    already cleared, so a double submit never writes a second ledger event."""
    flagged = Conversation.objects.filter(pk=conversation.pk, needs_consent_review=True)
    if not flagged.update(needs_consent_review=False):
        return False
    Conversation.objects.filter(
        organization_id=conversation.organization_id,
        contact_id=conversation.contact_id,
        needs_consent_review=True,
    ).update(needs_consent_review=False)
    org_id = conversation.organization_id
    phone = conversation.contact.phone
    if decision == "opt_out":
        pending = consent_state(organization_id=org_id, phone=phone).pending_request
        consent_record_opt_out(
            organization_id=org_id,
            phone=phone,
            source=ConsentSource.STAFF,
            text=pending.text if pending else "",
            evidence="opt-out request confirmed by staff in the console",
            actor_id=actor_id,
            number_id=conversation.number_id,
        )
    else:
        consent_dismiss_request(organization_id=org_id, phone=phone, actor_id=actor_id)
    conversation.needs_consent_review = False
    publish_on_commit(
        organization_id=org_id,
        event={"type": "conversation.updated", "conversation_id": conversation.pk},
    )
    return True
