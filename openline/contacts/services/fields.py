"""Custom fields: defined by an organization, one typed value per contact."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from openline.contacts.models import Contact, CustomField, FieldKind, FieldValue

MAX_FIELDS = 50
MAX_CHOICES = 100
# Names that merge fields already use.
RESERVED_KEYS = frozenset({"name", "first_name", "phone"})
DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%m/%d/%y")


class FieldError(ValueError):
    code = "invalid_field"


def custom_field_create(
    *, organization_id: int, name: str, kind: str, choices: list[str] | None = None
) -> CustomField:
    name = " ".join((name or "").split())
    if not name or len(name) > 60:
        raise FieldError("a field needs a name of at most 60 characters")
    if kind not in FieldKind.values:
        raise FieldError(f"a field is one of: {', '.join(FieldKind.values)}")
    key = re.sub(r"[^a-z0-9_]", "", slugify(name).replace("-", "_"))[:40]
    if not key or key[0].isdigit():
        key = f"field_{key}"[:40]
    if key in RESERVED_KEYS:
        raise FieldError(f"{{{key}}} is taken by a built-in merge field; pick another name")
    clean = [" ".join(c.split()) for c in (choices or []) if c.strip()]
    if kind == FieldKind.CHOICE and not clean:
        raise FieldError("a choice field needs its choices")
    if len(clean) > MAX_CHOICES:
        raise FieldError(f"at most {MAX_CHOICES} choices")
    if CustomField.objects.filter(organization_id=organization_id).count() >= MAX_FIELDS:
        raise FieldError(f"at most {MAX_FIELDS} fields")
    try:
        with transaction.atomic():
            return CustomField.objects.create(
                organization_id=organization_id,
                name=name,
                key=key,
                kind=kind,
                choices=list(dict.fromkeys(clean)) if kind == FieldKind.CHOICE else [],
            )
    except IntegrityError:
        raise FieldError(f"there is a field called {name} already") from None


def parse_date(raw: str) -> date:
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(raw, fmt).date()  # noqa: DTZ007 (a calendar date)
        except ValueError:
            continue
    raise FieldError(f"{raw!r} is not a date (use 2026-12-04 or 12/4/2026)")


def field_value_parse(field: CustomField, raw: str) -> dict[str, Any]:
    """The columns a value of ``field`` is stored in, from what a person typed; raise
    FieldError saying what is wrong."""
    raw = " ".join(str(raw).split())
    if len(raw) > 500:
        raise FieldError(f"{field.name}: at most 500 characters")
    if field.kind == FieldKind.NUMBER:
        try:
            number = Decimal(raw.replace(",", ""))
        except InvalidOperation:
            raise FieldError(f"{field.name}: {raw!r} is not a number") from None
        if not number.is_finite() or abs(number) >= Decimal(10) ** 14:
            raise FieldError(f"{field.name}: {raw!r} is out of range")
        return {"text": raw, "number": number.quantize(Decimal("0.0001")), "date": None}
    if field.kind == FieldKind.DATE:
        day = parse_date(raw)
        return {"text": day.isoformat(), "number": None, "date": day}
    if field.kind == FieldKind.CHOICE:
        match = next((c for c in field.choices if c.lower() == raw.lower()), None)
        if match is None:
            raise FieldError(f"{field.name}: {raw!r} is not one of {', '.join(field.choices)}")
        return {"text": match, "number": None, "date": None}
    return {"text": raw, "number": None, "date": None}


def contact_set_field(*, contact: Contact, field: CustomField, raw: str) -> FieldValue | None:
    """Set (or, with an empty value, clear) one field of a person."""
    if field.organization_id != contact.organization_id:
        raise FieldError("no such field here")
    person = contact.primary or contact
    if not str(raw).strip():
        FieldValue.objects.filter(contact=person, field=field).delete()
        return None
    columns = field_value_parse(field, raw)
    value, _ = FieldValue.objects.update_or_create(
        contact=person,
        field=field,
        defaults={"organization_id": contact.organization_id, **columns},
    )
    return value


def contact_field_texts(*, contact: Contact) -> dict[str, str]:
    """The person's values by field key, as text (for merge fields and display)."""
    person = contact.primary or contact
    return dict(person.field_values.values_list("field__key", "text"))
