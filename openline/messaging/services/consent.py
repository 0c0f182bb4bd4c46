"""Consent flows that answer with a text: keyword replies, staff opt-in with welcome."""

from __future__ import annotations

from django.db import transaction

from openline.contacts.keywords import KeywordKind, KeywordMatch
from openline.contacts.models import ConsentKind, ConsentSource
from openline.contacts.selectors import consent_state
from openline.contacts.services import consent_record, consent_record_opt_in
from openline.core.models import Organization
from openline.messaging.models import Conversation, Message, MessageKind
from openline.messaging.services.outbound import SendRefused, message_send


def welcome_text(org: Organization) -> str:
    return org.welcome_text or (
        f"{org.name}: you're subscribed to texts from us. We reply to your messages and may "
        "send reminders. Msg & data rates may apply. Reply HELP for help, STOP to opt out."
    )


def opt_out_text(org: Organization) -> str:
    return org.opt_out_text or (
        f"{org.name}: you're unsubscribed and will get no more texts from us. "
        "Reply START to subscribe again."
    )


def help_text(org: Organization) -> str:
    contact = f" Contact: {org.contact_info}." if org.contact_info else ""
    return org.help_text or (
        f"{org.name}: text us here any time and a person will answer.{contact} "
        "Msg & data rates may apply. Reply STOP to opt out."
    )


def apply_keyword(*, conversation: Conversation, match: KeywordMatch, text: str) -> Message | None:
    """Record what the person's keyword means and send the one answer it calls for: one
    confirmation per opt-out, a welcome only when the person was not opted in already (a
    second START changes nothing and says nothing), the help text for HELP."""
    org = conversation.organization
    contact = conversation.contact
    simulated = conversation.number.simulated
    before = consent_state(organization_id=org.pk, phone=contact.phone, simulated=simulated)
    kind = {
        KeywordKind.OPT_OUT: ConsentKind.OPT_OUT,
        KeywordKind.OPT_IN: ConsentKind.OPT_IN,
        KeywordKind.HELP: ConsentKind.HELP,
    }[match.kind]
    event = consent_record(
        organization_id=org.pk,
        phone=contact.phone,
        kind=kind,
        source=ConsentSource.KEYWORD,
        text=text,
        number_id=conversation.number_id,
        simulated=simulated,
    )
    # Each answer is tied to its event, so the ledger keeps the exact text shown in reply.
    if match.kind == KeywordKind.OPT_OUT:
        if before.opted_out:
            return None  # one confirmation per opt-out, no more
        return _reply(conversation, opt_out_text(org), MessageKind.CONSENT, event.pk)
    if match.kind == KeywordKind.OPT_IN:
        if before.opted_in:
            return None  # already subscribed: nothing changed, nothing to say
        return _reply(conversation, welcome_text(org), MessageKind.AUTOMATED, event.pk)
    return _reply(conversation, help_text(org), MessageKind.AUTOMATED, event.pk)


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
