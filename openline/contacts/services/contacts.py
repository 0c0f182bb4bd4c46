"""Contacts: create, change and find-or-create. Consent is ``consent.py``'s."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from openline.contacts.models import Contact, NumberType
from openline.contacts.phones import guess_number_type, normalize_phone
from openline.core.realtime import publish_on_commit


class DuplicateContact(ValueError):
    code = "duplicate"


def _check_number_type(number_type: str) -> str:
    if number_type not in NumberType.values:
        raise ValueError(f"number type must be one of {', '.join(NumberType.values)}")
    return number_type


def contact_get_or_create(*, organization_id: int, phone: str) -> tuple[Contact, bool]:
    """``phone`` must already be E.164."""
    # ``exclude(phone="")`` repeats the unique index's condition, so SQLite can use that
    # partial index instead of walking the organization's contacts (bench/README.md).
    contact = (
        Contact.objects.filter(organization_id=organization_id, phone=phone)
        .exclude(phone="")
        .first()
    )
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


def contact_add_number(*, contact: Contact, phone: str, number_type: str | None = None) -> Contact:
    """Give ``contact`` (a person) another number: a row of its own (type, conversations,
    consent) that belongs to the person. A number that is already a contact on its own
    (it texted in before) joins the person; one that belongs to someone else is refused."""
    person = contact.primary or contact
    e164 = normalize_phone(phone)
    kind = _check_number_type(number_type) if number_type else guess_number_type(e164)
    with transaction.atomic():
        existing = (
            Contact.objects.select_for_update()
            .filter(organization_id=person.organization_id, phone=e164)
            .first()
        )
        if existing is not None:
            if existing.pk == person.pk or existing.primary_id == person.pk:
                raise DuplicateContact(f"{e164} is already one of this person's numbers")
            if existing.primary_id is not None or existing.other_numbers.exists():
                raise DuplicateContact(f"{e164} belongs to another person")
            existing.primary = person
            existing.name = existing.name or person.name
            if number_type:
                existing.number_type = kind
            existing.save(update_fields=["primary", "name", "number_type", "updated_at"])
            number = existing
        else:
            number = Contact.objects.create(
                organization_id=person.organization_id,
                phone=e164,
                name=person.name,
                number_type=kind,
                primary=person,
            )
    _publish_contact(person)
    return number


def contact_numbers(*, contact: Contact) -> list[Contact]:
    """Every number of the person ``contact`` is (the person's own first)."""
    person = contact.primary or contact
    return [person, *person.other_numbers.order_by("pk")]
