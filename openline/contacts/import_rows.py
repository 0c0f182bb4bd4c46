"""How the columns of an imported CSV file map onto a contact, and one row read under that
mapping. No database here: callers pass the organization's custom fields."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openline.contacts.csvfile import csv_unsafe
from openline.contacts.models import CustomField, NumberType
from openline.contacts.phones import InvalidPhoneNumber, normalize_phone
from openline.contacts.services.fields import FieldError, field_value_parse
from openline.contacts.services.tags import MAX_TAG

IGNORE = ""
NAME = "name"
FIRST_NAME = "first_name"
LAST_NAME = "last_name"
PHONE = "phone"
NUMBER_TYPE = "number_type"
TAGS = "tags"
NOTES = "notes"
EVIDENCE = "consent_evidence"
FIELD = "field:"  # + the custom field's id

LABELS = {
    NAME: "Name",
    FIRST_NAME: "First name",
    LAST_NAME: "Last name",
    PHONE: "Phone number",
    NUMBER_TYPE: "Phone type",
    TAGS: "Tags",
    NOTES: "Notes",
    EVIDENCE: "Consent evidence",
}
# Several columns may map here: each phone column is one of the person's numbers (the
# first the person's own), and a type column gives the type of the phone column before it.
REPEATABLE = frozenset({PHONE, NUMBER_TYPE, TAGS})
MAX_NAME = 200
MAX_NOTES = 10_000
MAX_EVIDENCE = 1_000

# Headers guessed by their exact (normalised) text, then by the words in them.
_EXACT = {
    "name": NAME, "full name": NAME, "contact name": NAME, "contact": NAME,
    "first name": FIRST_NAME, "firstname": FIRST_NAME, "given name": FIRST_NAME,
    "first": FIRST_NAME, "last name": LAST_NAME, "lastname": LAST_NAME, "surname": LAST_NAME,
    "family name": LAST_NAME, "last": LAST_NAME, "tags": TAGS, "tag": TAGS, "labels": TAGS,
    "groups": TAGS, "notes": NOTES, "note": NOTES, "comments": NOTES,
    "number": PHONE, "phone number": PHONE, "type": NUMBER_TYPE,
}  # fmt: skip
_PHONE_WORDS = frozenset(
    {"phone", "mobile", "cell", "cellphone", "telephone", "tel", "sms", "msisdn", "whatsapp"}
)
_TYPES = {
    "mobile": NumberType.MOBILE, "cell": NumberType.MOBILE, "cellphone": NumberType.MOBILE,
    "cell phone": NumberType.MOBILE, "mobile phone": NumberType.MOBILE,
    "landline": NumberType.LANDLINE, "land line": NumberType.LANDLINE,
    "home": NumberType.LANDLINE, "fixed": NumberType.LANDLINE,
    "fixed line": NumberType.LANDLINE, "voip": NumberType.VOIP,
    "unknown": NumberType.UNKNOWN,
}  # fmt: skip


class MappingError(ValueError):
    pass


def target_choices(fields: Sequence[CustomField]) -> list[tuple[str, str]]:
    return [
        (IGNORE, "Ignore this column"),
        *LABELS.items(),
        *((f"{FIELD}{f.pk}", f"Field: {f.name}") for f in fields),
    ]


def _words(header: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", header.lower()).split())


def _guess_one(header: str, fields: Sequence[CustomField]) -> list[str]:
    """Targets for one header, the likeliest first."""
    text = _words(header)
    words = set(text.split())
    found = [_EXACT[text]] if text in _EXACT else []
    found += [f"{FIELD}{f.pk}" for f in fields if text in (_words(f.name), _words(f.key))]
    if "evidence" in words:
        found.append(EVIDENCE)
    elif "consent" in words:
        found.append(IGNORE)  # the consent state an export shows: not evidence of consent
    elif "type" in words and words & (_PHONE_WORDS | {"number", "line"}):
        found.append(NUMBER_TYPE)
    elif words & _PHONE_WORDS:
        found.append(PHONE)
    return found


def mapping_guess(headers: Sequence[str], fields: Sequence[CustomField]) -> list[str]:
    """A target for every column from its header (an export of ours maps back exactly)."""
    guess: list[str] = []
    for header in headers:
        taken = {t for t in guess if t not in REPEATABLE}
        guess.append(next((t for t in _guess_one(header, fields) if t not in taken), IGNORE))
    if NAME in guess:
        guess = [IGNORE if t in (FIRST_NAME, LAST_NAME) else t for t in guess]
    pairs = _type_columns(guess)
    return [IGNORE if t == NUMBER_TYPE and i not in pairs else t for i, t in enumerate(guess)]


def _type_columns(mapping: Sequence[str]) -> dict[int, int]:
    """{type column: its phone column}: the phone column before it, if no other type
    column already goes with that one."""
    pairs: dict[int, int] = {}
    phone: int | None = None
    for index, target in enumerate(mapping):
        if target == PHONE:
            phone = index
        elif target == NUMBER_TYPE and phone is not None and phone not in pairs.values():
            pairs[index] = phone
    return pairs


def mapping_clean(
    mapping: Sequence[str], headers: Sequence[str], fields: Sequence[CustomField]
) -> list[str]:
    """``mapping`` if it can import contacts; else MappingError saying what to change."""
    known = {key for key, _ in target_choices(fields)}
    if len(mapping) != len(headers) or any(t not in known for t in mapping):
        raise MappingError("The columns changed meanwhile; choose them again.")
    if PHONE not in mapping:
        raise MappingError("Choose the column with the phone numbers: every contact needs one.")
    for target in set(mapping) - REPEATABLE - {IGNORE}:
        if mapping.count(target) > 1:
            name = LABELS.get(target) or dict(target_choices(fields))[target]
            raise MappingError(f"Only one column can be {name}.")
    if NAME in mapping and (FIRST_NAME in mapping or LAST_NAME in mapping):
        raise MappingError("Choose either Name, or First name and Last name, not both.")
    if len(_type_columns(mapping)) < mapping.count(NUMBER_TYPE):
        raise MappingError(
            "A Phone type column gives the type of the Phone number column before it: put "
            "each one after its phone column, one per phone column."
        )
    return list(mapping)


@dataclass(slots=True)
class Row:
    """One row read under a mapping; ``problems`` says what keeps it from being imported."""

    number: int  # as the spreadsheet numbers it (the header is row 1)
    name: str = ""
    phones: list[tuple[str, str | None]] = field(default_factory=list)  # (E.164, type)
    tags: list[str] = field(default_factory=list)
    notes: str = ""
    fields: dict[int, dict[str, Any]] = field(default_factory=dict)  # id: stored columns
    evidence: str = ""
    problems: list[str] = field(default_factory=list)


def row_read(
    number: int,
    cells: Sequence[str],
    *,
    mapping: Sequence[str],
    headers: Sequence[str],
    fields: Mapping[int, CustomField],
) -> Row:
    row = Row(number=number)
    if any(cell.strip() for cell in cells[len(mapping) :]):
        row.problems.append(
            "it has more cells than the header row has columns (a comma inside a cell needs "
            "quotes around the cell)"
        )
    cells = [csv_unsafe(cell) for cell in cells[: len(mapping)]]
    cells += [""] * (len(mapping) - len(cells))
    columns: dict[str, list[int]] = {}
    for index, target in enumerate(mapping):
        columns.setdefault(target, []).append(index)

    def one(target: str) -> str:
        return cells[columns[target][0]].strip() if target in columns else ""

    _read_name(row, one(NAME) or f"{one(FIRST_NAME)} {one(LAST_NAME)}")
    types = {phone: kind for kind, phone in _type_columns(mapping).items()}
    _read_phones(row, cells, headers, columns.get(PHONE, []), types)
    for index in columns.get(TAGS, []):
        _read_tags(row, cells[index])
    row.notes = one(NOTES)
    if len(row.notes) > MAX_NOTES:
        row.problems.append(f"the notes are longer than {MAX_NOTES:,} characters")
    row.evidence = " ".join(one(EVIDENCE).split())
    if len(row.evidence) > MAX_EVIDENCE:
        row.problems.append(f"the consent evidence is longer than {MAX_EVIDENCE:,} characters")
    for target, (index, *_) in columns.items():
        if target.startswith(FIELD) and int(target[len(FIELD) :]) in fields:
            _read_field(row, fields[int(target[len(FIELD) :])], cells[index])
    return row


def _read_name(row: Row, text: str) -> None:
    row.name = " ".join(text.split())
    if len(row.name) > MAX_NAME:
        row.problems.append(f"the name is longer than {MAX_NAME} characters")


def _read_phones(
    row: Row, cells: list[str], headers: Sequence[str], phones: list[int], types: dict[int, int]
) -> None:
    unreadable = False
    for index in phones:
        raw = cells[index].strip()
        kind = cells[types[index]].strip() if index in types else ""
        if not raw:
            continue
        try:
            e164 = normalize_phone(raw)
        except InvalidPhoneNumber as exc:
            row.problems.append(f"{headers[index]}: {exc}")
            unreadable = True
            continue
        number_type = _TYPES.get(kind.lower()) if kind else None
        if kind and number_type is None:
            row.problems.append(
                f"{headers[types[index]]}: {kind!r} is not a phone type (use mobile, "
                "landline, voip or unknown)"
            )
        if all(e164 != phone for phone, _ in row.phones):
            row.phones.append((e164, number_type))
    if not row.phones and not unreadable:
        row.problems.append("it has no phone number")


def _read_tags(row: Row, cell: str) -> None:
    for raw in re.split(r"[,;]", cell):
        tag = " ".join(raw.split())
        if len(tag) > MAX_TAG:
            row.problems.append(f"the tag {tag[:20]!r}… is longer than {MAX_TAG} characters")
        elif tag and tag.lower() not in {t.lower() for t in row.tags}:
            row.tags.append(tag)


def _read_field(row: Row, custom_field: CustomField, cell: str) -> None:
    if not cell.strip():
        return
    try:
        row.fields[custom_field.pk] = field_value_parse(custom_field, cell)
    except FieldError as exc:
        row.problems.append(str(exc))
