"""The rows of a contact import against the contacts already there: which person each row
is about, whether its consent evidence may be recorded, and writing a chunk of rows.

A row's numbers are one person's. A number already in Contacts makes the row that person's:
their blank name and notes are filled, tags added, custom fields set, numbers added, never
a second contact for the same number. A number that is a contact on its own (it texted in)
joins the person, as ``contact_add_number`` does; a number of another person with several
numbers is a problem of the row."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Case, F, Value, When
from django.utils import timezone

from openline.contacts.import_rows import Row
from openline.contacts.models import (
    ConsentEvent,
    ConsentKind,
    ConsentSource,
    Contact,
    FieldValue,
    NumberType,
)
from openline.contacts.phones import format_phone, guess_number_type
from openline.contacts.selectors import consent_state
from openline.contacts.services.consent import ConsentError, consent_record_opt_in
from openline.contacts.services.tags import tag_get_or_create
from openline.core.models import AuditEvent
from openline.core.realtime import publish_many_on_commit


@dataclass(frozen=True, slots=True)
class Known:
    """A number already in the organization's contacts."""

    pk: int
    person_id: int  # the person it is a number of (itself, for a person's own number)
    grouped: bool  # the person has several numbers
    number_type: str


@dataclass(slots=True)
class Person:
    pk: int
    name: str
    notes: str


@dataclass(slots=True)
class Found:
    """What the database holds about a chunk's numbers."""

    numbers: dict[str, Known] = field(default_factory=dict)
    people: dict[int, Person] = field(default_factory=dict)
    history: set[str] = field(default_factory=set)  # phones with consent events
    refused: dict[str, str] = field(default_factory=dict)  # phone: why no opt-in may be recorded
    opted_in: set[str] = field(default_factory=set)  # nothing to record for these


def rows_look_up(*, organization_id: int, rows: list[Row]) -> Found:
    """A few queries for the whole chunk, whatever its size."""
    found = Found()
    phones = [phone for row in rows for phone, _ in row.phones]
    numbers = list(
        Contact.objects.filter(organization_id=organization_id, phone__in=phones).values_list(
            "pk", "phone", "primary", "number_type"
        )
    )
    heads = [pk for pk, _, primary_id, _ in numbers if primary_id is None]
    with_others = set(
        Contact.objects.filter(primary_id__in=heads)
        .order_by()
        .values_list("primary_id", flat=True)
        .distinct()
    )
    for pk, phone, primary_id, number_type in numbers:
        grouped = primary_id is not None or pk in with_others
        found.numbers[phone] = Known(pk, primary_id or pk, grouped, number_type)
    people = {known.person_id for known in found.numbers.values()}
    for pk, name, notes in Contact.objects.filter(pk__in=people).values_list("pk", "name", "notes"):
        found.people[pk] = Person(pk, name, notes)
    evidence = [phone for row in rows if row.evidence for phone, _ in row.phones]
    _consent_look_up(organization_id, evidence, found)
    return found


def _consent_look_up(organization_id: int, phones: list[str], found: Found) -> None:
    """Mirrors ``consent_record_opt_in``'s refusals, to report them before importing
    (which calls it, so it decides in the end). A number with no ledger at all has none."""
    found.history = set(
        ConsentEvent.objects.filter(organization_id=organization_id, phone__in=phones)
        .order_by()
        .values_list("phone", flat=True)
        .distinct()
    )
    for phone in found.history:
        real = consent_state(organization_id=organization_id, phone=phone, simulated=False)
        simulated = consent_state(organization_id=organization_id, phone=phone, simulated=True)
        if real.opted_out_by_person or simulated.opted_out_by_person:
            found.refused[phone] = (
                f"{format_phone(phone)} opted out themself (by texting STOP or through their "
                "carrier): only they can opt back in, so this row's consent evidence cannot be "
                "recorded for it"
            )
        elif real.pending_request is not None or simulated.pending_request is not None:
            found.refused[phone] = (
                f"{format_phone(phone)} asked not to be texted and nobody has reviewed the "
                "request yet: review it on the contact's page before importing consent for it"
            )
        elif real.opted_in:
            found.opted_in.add(phone)


def row_person(row: Row, found: Found) -> int | None:
    """The existing person ``row`` is about (None: a new one). Adds to ``row.problems``
    what the database says against the row."""
    known = [(phone, found.numbers[phone]) for phone, _ in row.phones if phone in found.numbers]
    groups: dict[int, str] = {}
    for phone, number in known:
        if number.grouped:
            groups.setdefault(number.person_id, phone)
    if len(groups) > 1:
        first, other = list(groups.values())[:2]
        row.problems.append(
            f"{format_phone(other)} is a number of another person in Contacts than "
            f"{format_phone(first)}"
        )
    if row.evidence:
        row.problems += [found.refused[phone] for phone, _ in row.phones if phone in found.refused]
    if groups:
        return next(iter(groups))
    return known[0][1].person_id if known else None


@dataclass(slots=True)
class Written:
    imported: int = 0
    created: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)


def rows_write(
    *,
    organization_id: int,
    actor_id: int | None,
    plans: list[tuple[Row, int | None]],
    found: Found,
    tags: dict[str, int],
) -> Written:
    """Write checked rows (row, its existing person or None). Call inside a transaction, with
    ``found`` looked up in it; ``tags`` caches tag ids by lower-case name between calls."""
    written = Written(imported=len(plans))
    people = _people(organization_id, plans, found, written)
    _numbers(organization_id, people, found)
    _tags(organization_id, people, tags)
    values = {
        (person.pk, field_id): columns
        for row, person in people
        for field_id, columns in row.fields.items()
    }
    FieldValue.objects.bulk_create(
        [
            FieldValue(organization_id=organization_id, contact_id=pk, field_id=fid, **columns)
            for (pk, fid), columns in values.items()
        ],
        update_conflicts=True,
        unique_fields=["contact", "field"],
        update_fields=["text", "number", "date"],
    )
    _opt_ins(organization_id, actor_id, [row for row, _ in people if row.evidence], found, written)
    # Open contact pages and conversations refresh; nobody has a new person open yet.
    updated = {person_id for _, person_id in plans if person_id is not None}
    publish_many_on_commit(
        [(organization_id, {"type": "contact.updated", "contact_id": pk}) for pk in updated]
    )
    return written


def _people(
    organization_id: int, plans: list[tuple[Row, int | None]], found: Found, written: Written
) -> list[tuple[Row, Person]]:
    fresh = [row for row, person_id in plans if person_id is None]
    made = iter(
        Contact.objects.bulk_create(
            [
                Contact(
                    organization_id=organization_id,
                    phone=row.phones[0][0],
                    name=row.name,
                    number_type=row.phones[0][1] or guess_number_type(row.phones[0][0]),
                    notes=row.notes,
                )
                for row in fresh
            ]
        )
    )
    written.created = len(fresh)
    people = []
    for row, person_id in plans:
        if person_id is None:
            contact = next(made)
            person = found.people[contact.pk] = Person(contact.pk, contact.name, contact.notes)
            found.numbers[contact.phone] = Known(contact.pk, contact.pk, False, "")
        else:
            person = found.people[person_id]
            _fill_blanks(person, row)
        people.append((row, person))
    return people


def _fill_blanks(person: Person, row: Row) -> None:
    changes = {}
    if row.name and not person.name:
        changes["name"] = person.name = row.name
    if row.notes and not person.notes:
        changes["notes"] = person.notes = row.notes
    if changes:
        Contact.objects.filter(pk=person.pk).update(**changes, updated_at=timezone.now())


def _numbers(organization_id: int, people: list[tuple[Row, Person]], found: Found) -> None:
    """Each row's numbers become the person's: new ones are made, contacts of their own join,
    and a type the file gives replaces a type nobody knew."""
    new = []
    for row, person in people:
        for phone, number_type in row.phones:
            known = found.numbers.get(phone)
            if known is None:
                new.append(
                    Contact(
                        organization_id=organization_id,
                        phone=phone,
                        name=person.name,
                        number_type=number_type or guess_number_type(phone),
                        primary_id=person.pk,
                    )
                )
            elif known.person_id != person.pk:
                Contact.objects.filter(pk=known.pk).update(
                    primary_id=person.pk,
                    name=Case(When(name="", then=Value(person.name)), default=F("name")),
                    number_type=number_type or known.number_type,
                    updated_at=timezone.now(),
                )
            elif number_type and known.number_type == NumberType.UNKNOWN:
                Contact.objects.filter(pk=known.pk).update(
                    number_type=number_type, updated_at=timezone.now()
                )
    Contact.objects.bulk_create(new)


def _tags(organization_id: int, people: list[tuple[Row, Person]], tags: dict[str, int]) -> None:
    links = set()
    for row, person in people:
        for name in row.tags:
            if name.lower() not in tags:
                tag = tag_get_or_create(organization_id=organization_id, name=name)
                tags[name.lower()] = tag.pk
            links.add((person.pk, tags[name.lower()]))
    through = Contact.tags.through
    through.objects.bulk_create(
        [through(contact_id=pk, tag_id=tag_id) for pk, tag_id in links], ignore_conflicts=True
    )


def _opt_ins(
    organization_id: int, actor_id: int | None, rows: list[Row], found: Found, written: Written
) -> None:
    """Each number of a row with consent evidence is opted in. A number whose ledger holds
    anything goes through ``consent_record_opt_in``, which decides. A number with no ledger
    at all (``found`` was looked up in this transaction) has nothing that could refuse it:
    its opt-in is the same ledger row, audit row and event, written in bulk, because one
    at a time they were most of an import's time."""
    fresh: list[tuple[str, str]] = []
    for row in rows:
        for phone, _ in row.phones:
            if phone in found.opted_in:
                continue
            if phone not in found.history:
                fresh.append((phone, row.evidence))
                continue
            try:
                consent_record_opt_in(
                    organization_id=organization_id,
                    phone=phone,
                    source=ConsentSource.IMPORT,
                    evidence=row.evidence,
                    actor_id=actor_id,
                )
            except ConsentError as exc:  # the person opted out since the rows were checked
                written.problems.append(
                    (
                        row.number,
                        f"imported, but consent not recorded for {format_phone(phone)}: {exc}",
                    )
                )
    now = timezone.now()
    events = ConsentEvent.objects.bulk_create(
        ConsentEvent(
            organization_id=organization_id,
            phone=phone,
            kind=ConsentKind.OPT_IN,
            source=ConsentSource.IMPORT,
            evidence=evidence,
            actor_id=actor_id,
            created_at=now,
        )
        for phone, evidence in fresh
    )
    AuditEvent.objects.bulk_create(
        AuditEvent(
            organization_id=organization_id,
            actor_id=actor_id,
            action="consent.opt_in",
            object_type="consent_event",
            object_id=str(event.pk),
        )
        for event in events
    )
    publish_many_on_commit(
        [
            (organization_id, {"type": "consent.changed", "phone": phone, "kind": "opt_in"})
            for phone, _ in fresh
        ]
    )
