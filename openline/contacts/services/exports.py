"""Contacts out as CSV, in the columns an import reads back: one row per person with their
name, each number with its type and consent state, tags, notes and every custom field.
Importing the file again changes nothing (the consent state is shown, not imported: only a
person or evidence of their consent changes it). Every cell goes through ``csv_safe``, the
phone numbers too: a spreadsheet then shows "+1…" as text instead of computing with it."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterator

from django.db.models import Count, QuerySet

from openline.contacts.csvfile import csv_safe
from openline.contacts.models import ConsentEvent, ConsentKind, Contact, CustomField, FieldValue
from openline.contacts.selectors import consent_events_in_scope
from openline.core.services import audit_record

BATCH = 1000  # people per round of queries

Person = tuple[int, str, str, str, str]  # pk, name, phone, number type, notes


def contacts_export(*, organization_id: int, actor_id: int) -> Iterator[list[str]]:
    """Audit the export now; the rows (the header first) come as the caller reads them.
    Web-chat visitors (no phone number) are not contacts an import could make: left out."""
    people = (
        Contact.objects.filter(organization_id=organization_id, primary__isnull=True)
        .exclude(phone="")
        .order_by("name", "pk")
        .values_list("pk", "name", "phone", "number_type", "notes")
    )
    audit_record(
        organization_id=organization_id,
        actor_id=actor_id,
        action="contacts.export",
        object_type="contacts",
        object_id=f"{people.count()} people",
    )
    fields = list(CustomField.objects.filter(organization_id=organization_id).order_by("name"))
    width = 1 + (
        Contact.objects.filter(organization_id=organization_id, primary__isnull=False)
        .values("primary")
        .annotate(n=Count("pk"))
        .order_by("-n")
        .values_list("n", flat=True)
        .first()
        or 0
    )
    ledger = consent_events_in_scope(organization_id=organization_id)
    return _rows(people, fields, width, ledger)


def export_header(fields: list[CustomField], width: int) -> list[str]:
    header = ["Name"]
    for n in range(1, width + 1):
        phone = "Phone" if n == 1 else f"Phone {n}"
        header += [phone, f"{phone} type", f"{phone} consent"]
    return [*header, "Tags", "Notes", *(f.name for f in fields)]


def _rows(
    people: QuerySet[Contact, Person],
    fields: list[CustomField],
    width: int,
    ledger: QuerySet[ConsentEvent],
) -> Iterator[list[str]]:
    yield [csv_safe(cell) for cell in export_header(fields, width)]
    found = people.iterator(chunk_size=BATCH)
    while batch := list(itertools.islice(found, BATCH)):
        yield from _batch(batch, fields, width, ledger)


def _batch(
    batch: list[Person], fields: list[CustomField], width: int, ledger: QuerySet[ConsentEvent]
) -> Iterator[list[str]]:
    pks = [person[0] for person in batch]
    numbers: dict[int, list[tuple[str, str]]] = defaultdict(list)
    others = Contact.objects.filter(primary_id__in=pks).order_by("pk")
    for primary_id, phone, number_type in others.values_list("primary", "phone", "number_type"):
        numbers[primary_id or 0].append((phone, number_type))
    tags: dict[int, list[str]] = defaultdict(list)
    through = Contact.tags.through.objects.filter(contact_id__in=pks).order_by("tag__name")
    for pk, name in through.values_list("contact_id", "tag__name"):
        tags[pk].append(name)
    values: dict[tuple[int, int], str] = {}
    for pk, field_id, text in FieldValue.objects.filter(contact_id__in=pks).values_list(
        "contact", "field", "text"
    ):
        values[(pk, field_id)] = text
    phones = [phone for _, _, phone, _, _ in batch]
    phones += [phone for numbered in numbers.values() for phone, _ in numbered]
    consent = _consent(ledger, phones)
    for pk, name, phone, number_type, notes in batch:
        cells = [name]
        for number, kind in [(phone, number_type), *numbers[pk]]:
            cells += [number, kind, consent.get(number, "unknown")]
        cells += [""] * (1 + 3 * width - len(cells))
        cells += [", ".join(tags[pk]), notes, *(values.get((pk, f.pk), "") for f in fields)]
        yield [csv_safe(cell) for cell in cells]


def _consent(ledger: QuerySet[ConsentEvent], phones: list[str]) -> dict[str, str]:
    """Each number's consent state (``consent_state(...).status``: its latest opt-in or
    opt-out), for the batch in one query."""
    latest = (
        ledger.filter(phone__in=phones, kind__in=(ConsentKind.OPT_IN, ConsentKind.OPT_OUT))
        .order_by("phone", "-created_at", "-id")
        .values_list("phone", "kind")
    )
    states: dict[str, str] = {}
    for phone, kind in latest:
        states.setdefault(phone, "opted_in" if kind == ConsentKind.OPT_IN else "opted_out")
    return states
