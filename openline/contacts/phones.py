"""Phone number parsing with Google's libphonenumber data."""

from __future__ import annotations

import functools

import phonenumbers
from phonenumbers import PhoneNumberType
from phonenumbers import timezone as phone_time_zones

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


@functools.lru_cache(maxsize=4096)
def _zones(prefix_key: str) -> tuple[str, ...]:
    zones = phone_time_zones.time_zones_for_number(phonenumbers.parse(prefix_key))
    return tuple(zone for zone in zones if zone != phone_time_zones.UNKNOWN_TIMEZONE)


def phone_time_zone(e164: str, *, default: str) -> str:
    """The time zone a phone number's holder most likely lives in, from the numbering plan
    (area code); ``default`` (the organization's zone) when the plan names none or several,
    as for toll-free and non-geographic numbers."""
    try:
        zones = _zones(e164)
    except phonenumbers.NumberParseException:
        return default
    return zones[0] if len(zones) == 1 else default


@functools.lru_cache(maxsize=8192)
def phone_region(e164: str) -> str:
    """The ISO country of a number ("US", "CA", "GB"), "" when it has none."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164)) or ""
    except phonenumbers.NumberParseException:
        return ""


def region_for_prefix(prefix: str) -> str:
    """The country of the numbers that start with ``prefix`` ("+1212", "+4479": the
    first five characters of an E.164 number), for counting by the database per prefix.
    Exact for North America (the area code decides), the main country of the calling
    code elsewhere."""
    digits = prefix.lstrip("+")
    if digits.startswith("1") and len(digits) >= 4:
        return phone_region(f"+{digits[:4]}2345678")
    for length in (1, 2, 3):
        code = int(digits[:length] or 0)
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return phonenumbers.region_code_for_country_code(code)
    return ""
