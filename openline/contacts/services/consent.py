"""The consent ledger and every consent decision. Events are only ever appended here.

Whoever records or asks about consent (inbound keywords, the console, the API, alerts, the
send service) calls this module: what to record, who may record it, what answer the
person is owed, and whether a number may be texted now. Sending a text is messaging's job;
it asks here first. The keyword rules themselves are ``contacts.keywords`` (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from django.db import transaction
from django.utils import timezone

from openline.contacts.keywords import KeywordKind, KeywordMatch, keyword_in_context
from openline.contacts.models import ConsentEvent, ConsentKind, ConsentSource, Contact
from openline.contacts.selectors import consent_state
from openline.core.models import Membership, Organization, Role
from openline.core.realtime import publish_on_commit
from openline.core.services import audit_record

ReviewDecision = Literal["opt_out", "not_opt_out"]


class ConsentError(ValueError):
    """A consent change that may not be made. ``code`` is stable for API clients."""

    def __init__(self, message: str, code: str = "consent_refused") -> None:
        super().__init__(message)
        self.code = code


# --- the organization's consent texts ------------------------------------------------------


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


# --- may this number be texted ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str
    reason: str


def consent_refusal(
    *,
    contact: Contact,
    automated: bool = False,
    confirming_event_id: int | None = None,
    simulated: bool | None = None,
) -> Refusal | None:
    """Why a text may not go to ``contact`` now, or None if it may. ``automated``: an
    automated, bulk or alert text (held back by an unreviewed opt-out request too).
    ``confirming_event_id``: the text confirms that opt-out event, the one text allowed
    after an opt-out, and only for the latest one. ``simulated``: through a simulated
    number (its consent is kept apart; None is the organization's own view)."""
    if not contact.is_textable:
        return Refusal(
            "not_textable",
            f"{contact.phone} is a {contact.get_number_type_display().lower()} number and "
            "cannot receive texts; correct the number type if this is wrong",
        )
    state = consent_state(
        organization_id=contact.organization_id, phone=contact.phone, simulated=simulated
    )
    if state.opted_out:
        confirming = (
            confirming_event_id is not None
            and state.last_change is not None
            and state.last_change.pk == confirming_event_id
        )
        if not confirming:
            return Refusal(
                "opted_out",
                f"{contact.label} opted out of texts; they can opt back in by texting START",
            )
    elif automated and not state.automated_allowed:
        return Refusal(
            "opt_out_pending",
            "this person asked not to be texted; automated messages stay off until "
            "someone reviews the request",
        )
    return None


# --- the ledger -------------------------------------------------------------------------


def consent_record(
    *,
    organization_id: int,
    phone: str,
    kind: str,
    source: str,
    text: str = "",
    evidence: str = "",
    number_id: int | None = None,
    actor_id: int | None = None,
    simulated: bool = False,
) -> ConsentEvent:
    """Append one event to the ledger. Rules about who may record what live in the
    callers below; this only writes and announces. ``simulated``: it came through a
    simulated carrier and counts only there (see ConsentEvent.simulated)."""
    event = ConsentEvent.objects.create(
        organization_id=organization_id,
        phone=phone,
        kind=kind,
        source=source,
        text=text,
        evidence=evidence,
        number_id=number_id,
        actor_id=actor_id,
        simulated=simulated,
        created_at=timezone.now(),
    )
    publish_on_commit(
        organization_id=organization_id,
        event={"type": "consent.changed", "phone": phone, "kind": kind},
    )
    return event


def _require_manager(*, organization_id: int, actor_id: int | None, action: str) -> None:
    """Consent decisions made for a person by someone else need a supervisor or admin."""
    allowed = (
        actor_id is not None
        and Membership.objects.filter(
            organization_id=organization_id,
            user_id=actor_id,
            user__is_active=True,
            is_active=True,
            role__in=(Role.ADMIN, Role.SUPERVISOR),
        ).exists()
    )
    if not allowed:
        raise ConsentError(f"only a supervisor or an admin can {action}", "forbidden")


def _audit_consent(event: ConsentEvent, action: str, api_token_id: int | None = None) -> None:
    audit_record(
        organization_id=event.organization_id,
        actor_id=event.actor_id,
        api_token_id=api_token_id,
        action=action,
        object_type="consent_event",
        object_id=event.pk,
    )


@transaction.atomic
def consent_record_opt_in(
    *,
    organization_id: int,
    phone: str,
    source: str,
    evidence: str,
    actor_id: int | None = None,
    number_id: int | None = None,
    api_token_id: int | None = None,
) -> ConsentEvent:
    """Staff/API/import opt-in, audited. Staff must be a supervisor or admin. Never
    overrides an opt-out the person made themself (by keyword, through the carrier, or in
    words that staff confirmed)."""
    if source == ConsentSource.STAFF:
        _require_manager(
            organization_id=organization_id, actor_id=actor_id, action="record an opt-in"
        )
    if not evidence.strip():
        raise ConsentError(
            "record how consent was given (evidence is required)", "evidence_required"
        )
    # The opt-in holds for every number, the simulator's too: no opt-out the person made
    # through either may be overridden.
    real = consent_state(organization_id=organization_id, phone=phone, simulated=False)
    simulated = consent_state(organization_id=organization_id, phone=phone, simulated=True)
    if real.opted_out_by_person or simulated.opted_out_by_person:
        raise ConsentError(
            "this person opted out themself; only they can opt back in, by texting START",
            "opted_out_by_person",
        )
    if real.pending_request is not None or simulated.pending_request is not None:
        raise ConsentError(
            "this person asked not to be texted; review that request before recording consent",
            "opt_out_request_pending",
        )
    event = consent_record(
        organization_id=organization_id,
        phone=phone,
        kind=ConsentKind.OPT_IN,
        source=source,
        evidence=evidence.strip(),
        actor_id=actor_id,
        number_id=number_id,
    )
    _audit_consent(event, "consent.opt_in", api_token_id)
    return event


def consent_record_own_opt_in(
    *, organization_id: int, phone: str, evidence: str, actor_id: int
) -> ConsentEvent:
    """A member's opt-in for their own phone (alert texts), which a code texted to it proved
    is theirs: not a staff opt-in for someone else, so no supervisor is needed. Like any
    opt-in it never undoes an opt-out they made by text, nor a request not to be texted."""
    state = consent_state(organization_id=organization_id, phone=phone)
    if state.opted_out_by_person:
        raise ConsentError(
            "you texted STOP from this phone; only texting START from it gives permission back",
            "opted_out_by_person",
        )
    if state.pending_request is not None:
        raise ConsentError(
            "this phone asked not to be texted; a supervisor must review that request first",
            "opt_out_request_pending",
        )
    return consent_record(
        organization_id=organization_id,
        phone=phone,
        kind=ConsentKind.OPT_IN,
        source=ConsentSource.STAFF,
        evidence=evidence,
        actor_id=actor_id,
    )


def consent_record_opt_out(
    *,
    organization_id: int,
    phone: str,
    source: str,
    text: str = "",
    evidence: str = "",
    actor_id: int | None = None,
    number_id: int | None = None,
    simulated: bool = False,
    api_token_id: int | None = None,
) -> ConsentEvent:
    """An opt-out. One recorded by staff or through the API is audited too (the person's
    own, by keyword or through the carrier, is in the ledger only)."""
    event = consent_record(
        organization_id=organization_id,
        phone=phone,
        kind=ConsentKind.OPT_OUT,
        source=source,
        text=text,
        evidence=evidence,
        actor_id=actor_id,
        number_id=number_id,
        simulated=simulated,
    )
    if source in (ConsentSource.STAFF, ConsentSource.API):
        _audit_consent(event, "consent.opt_out", api_token_id)
    return event


def consent_record_provider_opt_out(
    *,
    organization_id: int,
    phone: str,
    error_code: str,
    number_id: int | None = None,
    simulated: bool = False,
) -> ConsentEvent:
    """The carrier says the recipient opted out (e.g. Twilio 21610): the ledger agrees, as
    an opt-out of the person's own."""
    return consent_record_opt_out(
        organization_id=organization_id,
        phone=phone,
        source=ConsentSource.PROVIDER,
        text=f"provider error {error_code}: recipient opted out",
        number_id=number_id,
        simulated=simulated,
    )


def consent_record_opt_out_request(
    *, organization_id: int, phone: str, text: str, number_id: int | None, simulated: bool
) -> ConsentEvent:
    """The person asked in their own words not to be texted (``keywords`` decides that the
    text looks like it): automated texts stop until someone reviews the request."""
    return consent_record(
        organization_id=organization_id,
        phone=phone,
        kind=ConsentKind.OPT_OUT_REQUEST,
        source=ConsentSource.MESSAGE,
        text=text,
        number_id=number_id,
        simulated=simulated,
    )


# --- keywords: what to record and what the person is owed --------------------------------

_KEYWORD_KINDS = {
    KeywordKind.OPT_OUT: ConsentKind.OPT_OUT,
    KeywordKind.OPT_IN: ConsentKind.OPT_IN,
    KeywordKind.HELP: ConsentKind.HELP,
}


@dataclass(frozen=True, slots=True)
class KeywordAnswer:
    """What a keyword recorded, and the text to answer it with (None: say nothing)."""

    event: ConsentEvent
    text: str | None
    # The answer confirms the opt-out: the one text allowed to an opted-out number.
    confirms_opt_out: bool = False


def consent_record_keyword(
    *,
    organization: Organization,
    phone: str,
    match: KeywordMatch,
    text: str,
    number_id: int | None,
    simulated: bool,
) -> KeywordAnswer:
    """Record what the person's keyword means and decide the one answer it calls for: one
    confirmation per opt-out, a welcome only when the person was not opted in already (a
    second START changes nothing and says nothing), the help text for HELP. The answer is
    to be tied to the event, so the ledger keeps the exact text shown in reply."""
    before = consent_state(organization_id=organization.pk, phone=phone, simulated=simulated)
    event = consent_record(
        organization_id=organization.pk,
        phone=phone,
        kind=_KEYWORD_KINDS[match.kind],
        source=ConsentSource.KEYWORD,
        text=text,
        number_id=number_id,
        simulated=simulated,
    )
    if match.kind == KeywordKind.OPT_OUT:
        if before.opted_out:
            return KeywordAnswer(event, None)  # one confirmation per opt-out, no more
        return KeywordAnswer(event, opt_out_text(organization), confirms_opt_out=True)
    if match.kind == KeywordKind.OPT_IN:
        if before.opted_in:
            return KeywordAnswer(event, None)  # already subscribed: nothing to say
        return KeywordAnswer(event, welcome_text(organization))
    return KeywordAnswer(event, help_text(organization))


def consent_keyword_in_context(
    match: KeywordMatch | None,
    *,
    organization_id: int,
    phone: str,
    simulated: bool,
    toll_free: bool,
    opted_out: bool | None = None,
    answer_awaited: bool = False,
) -> KeywordMatch | None:
    """``match`` as it counts for this person now (``keywords.keyword_in_context`` applied
    to their ledger): a conditional YES is an opt-in only while they are opted out or asked
    to confirm one; CANCEL answers an awaited question (``answer_awaited``). ``opted_out``:
    what earlier texts not yet in the ledger decided."""
    state = consent_state(organization_id=organization_id, phone=phone, simulated=simulated)
    return keyword_in_context(
        match,
        opted_out=state.opted_out if opted_out is None else opted_out,
        opt_in_pending=state.opt_in_pending,
        toll_free=toll_free,
        answer_awaited=answer_awaited,
    )


# --- reviewing a free-text opt-out request ----------------------------------------------


def consent_dismiss_check(*, organization_id: int, actor_id: int, reason: str) -> str:
    """Raise ConsentError unless ``actor_id`` may dismiss an opt-out request with this
    written reason; returns the reason, trimmed."""
    _require_manager(
        organization_id=organization_id, actor_id=actor_id, action="dismiss an opt-out request"
    )
    if not reason.strip():
        raise ConsentError(
            "write why this is not an opt-out (the reason is kept in the consent history)",
            "reason_required",
        )
    return reason.strip()


def consent_dismiss_request(
    *, organization_id: int, phone: str, actor_id: int, reason: str, number_id: int | None = None
) -> ConsentEvent:
    """A supervisor or admin reviewed a free-text opt-out request and found it was not
    one; the reason is kept as the event's evidence, and the decision is audited."""
    reason = consent_dismiss_check(
        organization_id=organization_id, actor_id=actor_id, reason=reason
    )
    event = consent_record(
        organization_id=organization_id,
        phone=phone,
        kind=ConsentKind.REQUEST_DISMISSED,
        source=ConsentSource.STAFF,
        evidence=reason,
        actor_id=actor_id,
        number_id=number_id,
    )
    _audit_consent(event, "consent.request_dismissed")
    return event


def consent_confirm_request(
    *, organization_id: int, phone: str, actor_id: int, number_id: int | None = None
) -> ConsentEvent:
    """Staff confirmed the person's free-text request: the person's own words make it an
    opt-out only they can undo. Audited."""
    pending = consent_state(organization_id=organization_id, phone=phone).pending_request
    event = consent_record_opt_out(
        organization_id=organization_id,
        phone=phone,
        source=ConsentSource.MESSAGE,
        text=pending.text if pending else "",
        evidence="opt-out request confirmed by staff in the console",
        actor_id=actor_id,
        number_id=number_id,
    )
    _audit_consent(event, "consent.request_confirmed")
    return event


def consent_review_check(
    *, organization_id: int, actor_id: int, decision: ReviewDecision, reason: str = ""
) -> None:
    """Raise ConsentError, before anything changes, unless ``actor_id`` may settle an
    opt-out request with ``decision``: confirming is open to anyone who may see the
    conversation (the caller's check); dismissing needs a supervisor or admin and a reason."""
    if decision == "not_opt_out":
        consent_dismiss_check(organization_id=organization_id, actor_id=actor_id, reason=reason)


def consent_review_request(
    *,
    organization_id: int,
    phone: str,
    actor_id: int,
    decision: ReviewDecision,
    reason: str = "",
    number_id: int | None = None,
) -> ConsentEvent:
    """Settle the free-text opt-out request pending for ``phone``: confirm it as an opt-out
    or dismiss it with ``reason``."""
    if decision == "opt_out":
        return consent_confirm_request(
            organization_id=organization_id, phone=phone, actor_id=actor_id, number_id=number_id
        )
    return consent_dismiss_request(
        organization_id=organization_id,
        phone=phone,
        actor_id=actor_id,
        reason=reason,
        number_id=number_id,
    )
