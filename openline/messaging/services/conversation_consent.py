"""Where consent meets conversations: the text a keyword is answered with, the welcome
after a staff or API opt-in, and the review flag on a conversation.

Every decision (what to record, who may, what the person is owed) is made by
``contacts.services.consent``; this module only sends the answer and marks conversations."""

from __future__ import annotations

from django.db import transaction

from openline.contacts.keywords import KeywordMatch
from openline.contacts.services.consent import (
    ReviewDecision,
    consent_record_keyword,
    consent_record_opt_in,
    consent_record_opt_out_request,
    consent_review_check,
    consent_review_request,
    welcome_text,
)
from openline.core.models import Organization
from openline.core.realtime import publish_on_commit
from openline.messaging.events import conversation_event
from openline.messaging.models import Conversation, Message, MessageKind
from openline.messaging.services.outbound import SendRefused, message_send


def apply_keyword(*, conversation: Conversation, match: KeywordMatch, text: str) -> Message | None:
    """Record the person's keyword and send the answer the ledger says they are owed, tied
    to its event (contacts decides: one confirmation per opt-out, a welcome only on a
    change, the help text for HELP)."""
    answer = consent_record_keyword(
        organization=conversation.organization,
        phone=conversation.contact.phone,
        match=match,
        text=text,
        number_id=conversation.number_id,
        simulated=conversation.number.simulated,
    )
    if answer.text is None:
        return None
    kind = MessageKind.CONSENT if answer.confirms_opt_out else MessageKind.AUTOMATED
    return _reply(conversation, answer.text, kind, answer.event.pk)


def _reply(
    conversation: Conversation, body: str, kind: str, consent_event_id: int
) -> Message | None:
    try:
        return message_send(
            organization_id=conversation.organization_id,
            conversation=conversation,
            body=body,
            kind=kind,
            consent_event_id=consent_event_id,
        )
    except SendRefused:
        # e.g. HELP from an opted-out or landline number: recorded, not answered.
        return None


@transaction.atomic
def consent_opt_in_with_welcome(
    *,
    organization_id: int,
    phone: str,
    source: str,
    evidence: str,
    actor_id: int | None = None,
    api_token_id: int | None = None,
) -> Message | None:
    """Staff/API record an opt-in with its evidence; the person gets the welcome text, tied
    to the event (the text shown)."""
    org = Organization.objects.get(pk=organization_id)
    event = consent_record_opt_in(
        organization_id=organization_id,
        phone=phone,
        source=source,
        evidence=evidence,
        actor_id=actor_id,
        api_token_id=api_token_id,
    )
    try:
        return message_send(
            organization_id=organization_id,
            to=phone,
            body=welcome_text(org),
            kind=MessageKind.AUTOMATED,
            consent_event_id=event.pk,
        )
    except SendRefused as exc:
        if exc.code in ("no_number", "not_textable"):
            return None
        raise


def conversation_flag_opt_out_request(*, conversation: Conversation, text: str) -> None:
    """The person's ``text`` looks like a request not to be texted (``contacts.keywords``):
    the ledger holds back automated texts, and the conversation asks staff to review it."""
    consent_record_opt_out_request(
        organization_id=conversation.organization_id,
        phone=conversation.contact.phone,
        text=text,
        number_id=conversation.number_id,
        simulated=conversation.number.simulated,
    )
    conversation.needs_consent_review = True
    conversation.save(update_fields=["needs_consent_review"])


@transaction.atomic
def conversation_review_consent(
    *, conversation: Conversation, actor_id: int, decision: ReviewDecision, reason: str = ""
) -> bool:
    """Settle the free-text opt-out request flagged on ``conversation`` (contacts records
    the opt-out or the dismissal and says who may) and clear the flag on every
    conversation with this person (consent is per phone number). Returns False, recording
    nothing, when the flag was already cleared, so a double submit never writes a second
    ledger event. Raises ConsentError, changing nothing, when the decision is not allowed."""
    org_id = conversation.organization_id
    consent_review_check(
        organization_id=org_id, actor_id=actor_id, decision=decision, reason=reason
    )
    flagged = Conversation.objects.filter(pk=conversation.pk, needs_consent_review=True)
    if not flagged.update(needs_consent_review=False):
        return False
    Conversation.objects.filter(
        organization_id=org_id,
        contact_id=conversation.contact_id,
        needs_consent_review=True,
    ).update(needs_consent_review=False)
    consent_review_request(
        organization_id=org_id,
        phone=conversation.contact.phone,
        actor_id=actor_id,
        decision=decision,
        reason=reason,
        number_id=conversation.number_id,
    )
    conversation.needs_consent_review = False
    publish_on_commit(
        organization_id=org_id, event=conversation_event(conversation, "conversation.updated")
    )
    return True
