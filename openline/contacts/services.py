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
from openline.core.realtime import publish_on_commit


class ConsentError(ValueError):
    code = "consent_refused"


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
) -> ConsentEvent:
    """Append one event to the ledger. Rules about who may record what live in the
    callers below; this only writes and announces."""
    event = ConsentEvent.objects.create(
        organization_id=organization_id,
        phone=phone,
        kind=kind,
        source=source,
        text=text,
        evidence=evidence,
        number_id=number_id,
        actor_id=actor_id,
        created_at=timezone.now(),
    )
    publish_on_commit(
        organization_id=organization_id,
        event={"type": "consent.changed", "phone": phone, "kind": kind},
    )
    return event


@transaction.atomic
def consent_record_opt_in(
    *,
    organization_id: int,
    phone: str,
    source: str,
    evidence: str,
    actor_id: int | None = None,
    number_id: int | None = None,
) -> ConsentEvent:
    """Staff/API/import opt-in. Never overrides an opt-out the person made themself."""
    if not evidence.strip():
        raise ConsentError("record how consent was given (evidence is required)")
    state = consent_state(organization_id=organization_id, phone=phone)
    if state.opted_out_by_person:
        raise ConsentError(
            "this person opted out by text; only they can opt back in, by texting START"
        )
    if state.pending_request is not None:
        raise ConsentError(
            "this person asked not to be texted; review that request before recording consent"
        )
    return consent_record(
        organization_id=organization_id,
        phone=phone,
        kind=ConsentKind.OPT_IN,
        source=source,
        evidence=evidence.strip(),
        actor_id=actor_id,
        number_id=number_id,
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
    )


def consent_dismiss_request(
    *, organization_id: int, phone: str, actor_id: int, evidence: str = ""
) -> ConsentEvent:
    """A person reviewed a free-text opt-out request and found it was not one."""
    return consent_record(
        organization_id=organization_id,
        phone=phone,
        kind=ConsentKind.REQUEST_DISMISSED,
        source=ConsentSource.STAFF,
        evidence=evidence,
        actor_id=actor_id,
    )
