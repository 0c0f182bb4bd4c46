"""Consent for calls: the voice do-not-call list and whether a number may be called.

A voice opt-out ("press 9 to stop these calls", or a person who asked staff) is an event
in the same append-only ledger as texts, of its own kinds, so it never changes what may be
texted; an opt-out from texts does stop automated calls (see ``call_refusal``)."""

from __future__ import annotations

from django.db import transaction

from openline.contacts.models import ConsentEvent, ConsentKind, ConsentSource, Contact, NumberType
from openline.contacts.selectors import consent_state, voice_do_not_call_entry
from openline.contacts.services.consent import (
    ConsentError,
    Refusal,
    _audit_consent,
    _require_manager,
    consent_record,
)


def call_refusal(*, contact: Contact, simulated: bool | None = None) -> Refusal | None:
    """Why an automated (prerecorded or text-to-speech) call may not go to ``contact``
    now, or None if it may.

    - on the voice do-not-call list: never;
    - opted out of texts, or asked not to be texted (request waiting): an opt-out "by any
      reasonable means" revokes consent to automated calls too;
    - a mobile number needs consent on record (prior express consent for prerecorded calls
      to mobiles); landlines, VoIP and unknown types do not.
    """
    if not contact.phone:
        return Refusal("invalid_phone", "this contact has no phone number")
    if voice_do_not_call_entry(
        organization_id=contact.organization_id, phone=contact.phone, simulated=simulated
    ):
        return Refusal("do_not_call", f"{contact.label} is on the voice do-not-call list")
    state = consent_state(
        organization_id=contact.organization_id, phone=contact.phone, simulated=simulated
    )
    if state.opted_out:
        return Refusal(
            "opted_out", f"{contact.label} opted out of texts, which stops automated calls too"
        )
    if state.pending_request is not None:
        return Refusal(
            "opt_out_pending",
            "this person asked not to be contacted; calls stay off until someone reviews it",
        )
    if contact.number_type == NumberType.MOBILE and not state.opted_in:
        return Refusal(
            "no_opt_in", "a prerecorded call to a mobile needs the person's consent on record"
        )
    return None


def voice_opt_out_record(
    *,
    organization_id: int,
    phone: str,
    source: str,
    text: str = "",
    actor_id: int | None = None,
    number_id: int | None = None,
    simulated: bool = False,
) -> ConsentEvent:
    """Put ``phone`` on the do-not-call list: a key press on a call (source KEYPRESS: the
    person's own, which staff cannot undo), or staff on the person's behalf (a manager;
    audited). Already on it: the existing entry, nothing added."""
    if source == ConsentSource.STAFF:
        _require_manager(
            organization_id=organization_id, actor_id=actor_id, action="change the call list"
        )
    with transaction.atomic():
        existing = voice_do_not_call_entry(
            organization_id=organization_id, phone=phone, simulated=simulated
        )
        if existing is not None:
            return existing
        event = consent_record(
            organization_id=organization_id,
            phone=phone,
            kind=ConsentKind.VOICE_OPT_OUT,
            source=source,
            text=text,
            actor_id=actor_id,
            number_id=number_id,
            simulated=simulated,
        )
        if source == ConsentSource.STAFF:
            _audit_consent(event, "consent.voice_opt_out")
    return event


def voice_opt_out_remove(
    *, organization_id: int, phone: str, actor_id: int, evidence: str
) -> ConsentEvent:
    """Take ``phone`` off the do-not-call list (a manager, with the reason; audited). A
    number the person took off by pressing 9 stays on: only staff entries can be removed."""
    _require_manager(
        organization_id=organization_id, actor_id=actor_id, action="change the call list"
    )
    if not evidence.strip():
        raise ConsentError("say why the number may be called again", "evidence_required")
    with transaction.atomic():
        entry = voice_do_not_call_entry(organization_id=organization_id, phone=phone)
        if entry is None:
            raise ConsentError(f"{phone} is not on the do-not-call list", "not_listed")
        if entry.source != ConsentSource.STAFF:
            raise ConsentError(
                "this person asked not to be called (they pressed 9); only staff entries "
                "can be removed",
                "opted_out_by_person",
            )
        event = consent_record(
            organization_id=organization_id,
            phone=phone,
            kind=ConsentKind.VOICE_OPT_IN,
            source=ConsentSource.STAFF,
            evidence=evidence.strip(),
            actor_id=actor_id,
        )
        _audit_consent(event, "consent.voice_opt_in")
    return event
