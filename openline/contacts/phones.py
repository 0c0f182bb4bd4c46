"""Phone number parsing with Google's libphonenumber data."""

from __future__ import annotations

import functools

import phonenumbers
from phonenumbers import PhoneNumberType

from openline.contacts.models import NumberType


class InvalidPhoneNumber(ValueError):
    pass


_TYPES = {
    PhoneNumberType.MOBILE: NumberType.MOBILE,
    PhoneNumberType.FIXED_LINE: NumberType.LANDLINE,
    PhoneNumberType.VOIP: NumberType.VOIP,
}


def normalize_phone(raw: str, *, region: str = "US") -> str:
    """Return ``raw`` in E.164, or raise InvalidPhoneNumber with a reason a person can act on."""
    return _normalize((raw or "").strip(), region)


# The same few thousand senders text again and again; parsing costs more than the lookup.
@functools.lru_cache(maxsize=65536)
def _normalize(text: str, region: str) -> str:
    if not text:
        raise InvalidPhoneNumber("phone number is empty")
    if len(text) > 40:
        raise InvalidPhoneNumber("phone number is too long")
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(f"{text!r} is not a phone number") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber(f"{text!r} is not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def guess_number_type(e164: str) -> str:
    """Mobile, landline or VoIP when the numbering plan says so; NANP numbers are
    FIXED_LINE_OR_MOBILE, which stays unknown (textable) until someone corrects it."""
    parsed = phonenumbers.parse(e164)
    return _TYPES.get(phonenumbers.number_type(parsed), NumberType.UNKNOWN)


@functools.lru_cache(maxsize=4096)
def format_phone(e164: str) -> str:
    try:
        parsed = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
