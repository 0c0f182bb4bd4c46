"""Contacts and the consent ledger. Consent events are only ever appended here."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from openline.contacts.models import (
    ConsentEvent,
    ConsentKind,
    ConsentSource,
    Contact,
    NumberType,
)
from openline.contacts.phones import guess_number_type, normalize_phone
from openline.contacts.selectors import consent_state
from openline.core.models import Membership, Role
from openline.core.realtime import publish_on_commit
from openline.core.services import audit_record


class ConsentError(ValueError):
    """A consent change that may not be made. ``code`` is stable for API clients."""

    def __init__(self, message: str, code: str = "consent_refused") -> None:
        super().__init__(message)
        self.code = code


class DuplicateContact(ValueError):
    code = "duplicate"


def _check_number_type(number_type: str) -> str:
    if number_type not in NumberType.values:
        raise ValueError(f"number type must be one of {', '.join(NumberType.values)}")
    return number_type


def contact_get_or_create(*, organization_id: int, phone: str) -> tuple[Contact, bool]:
    """``phone`` must already be E.164."""
    contact = Contact.objects.filter(organization_id=organization_id, phone=phone).first()
    if contact is not None:
        return contact, False
    try:
        with transaction.atomic():
            contact = Contact.objects.create(
                organization_id=organization_id,
                phone=phone,
                number_type=guess_number_type(phone),
            )
    except IntegrityError:  # created concurrently
        return Contact.objects.get(organization_id=organization_id, phone=phone), False
    return contact, True


def contact_create(
    *,
    organization_id: int,
    phone: str,
    name: str = "",
    number_type: str | None = None,
    notes: str = "",
) -> Contact:
    e164 = normalize_phone(phone)
    number_type = _check_number_type(number_type) if number_type else guess_number_type(e164)
    try:
        with transaction.atomic():
            contact = Contact.objects.create(
                organization_id=organization_id,
                phone=e164,
                name=name.strip(),
                number_type=number_type,
                notes=notes,
            )
    except IntegrityError:
        raise DuplicateContact(f"a contact with {e164} already exists") from None
    _publish_contact(contact)
    return contact


def contact_update(
    *,
    contact: Contact,
    name: str | None = None,
    number_type: str | None = None,
    notes: str | None = None,
) -> Contact:
    if name is not None:
        contact.name = name.strip()
    if number_type is not None:
        contact.number_type = _check_number_type(number_type)
    if notes is not None:
        contact.notes = notes
    contact.save()
    _publish_contact(contact)
    return contact


def _publish_contact(contact: Contact) -> None:
    publish_on_commit(
        organization_id=contact.organization_id,
        event={"type": "contact.updated", "contact_id": contact.pk},
    )


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
    allowed = Membership.objects.filter(
        organization_id=organization_id,
        user_id=actor_id,
        user__is_active=True,
        role__in=(Role.ADMIN, Role.SUPERVISOR),
    )
    if actor_id is None or not allowed.exists():
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
) -> ConsentEvent:
    return consent_record(
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
