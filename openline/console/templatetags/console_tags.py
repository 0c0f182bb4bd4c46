from __future__ import annotations

import unicodedata

from django import template

from openline.contacts.models import ConsentSource, Contact
from openline.contacts.phones import format_phone

register = template.Library()

CONSENT_LABELS = {
    "opted_in": "Opted in",
    "opted_out": "Opted out",
    "unknown": "No consent recorded",
}


@register.filter
def phone(value: str) -> str:
    """+12025550142 -> +1 202-555-0142."""
    return format_phone(value) if value else ""


@register.filter
def consent_label(status: str) -> str:
    return CONSENT_LABELS.get(status, status)


@register.filter
def char_label(char: str) -> str:
    """A visible name for a character: invisible ones (a no-break space forces UCS-2 and
    doubles the cost, yet cannot be seen) are named with their code point."""
    category = unicodedata.category(char)
    code = f"U+{ord(char):04X}"
    if category[0] in "ZC" or category in ("Mn", "Me"):
        name = unicodedata.name(char, "unnamed character").lower()
        return f"{name} ({code})"
    return char


@register.filter
def gsm_lookalike(char: str) -> str | None:
    """The GSM-7 text that reads like ``char`` (None when there is none)."""
    from openline.messaging.segments import GSM7_LOOKALIKES

    return GSM7_LOOKALIKES.get(char)


@register.filter
def char_name(char: str) -> str:
    return f"{unicodedata.name(char, 'unnamed character').lower()} (U+{ord(char):04X})"


@register.filter
def priority_label(value: int) -> str:
    """1 -> "Elevated": a triage answer's severity, in words."""
    from openline.messaging.models import Priority

    try:
        return str(Priority(value).label)
    except ValueError:
        return ""


@register.filter
def who(contact: Contact) -> str:
    """A contact's name, else their number formatted for reading (web-chat visitors have
    none: "Web visitor <id>")."""
    return contact.label


@register.filter
def consent_source(value: str | None) -> str:
    if not value:
        return ""
    try:
        return str(ConsentSource(value).label)
    except ValueError:
        return value
