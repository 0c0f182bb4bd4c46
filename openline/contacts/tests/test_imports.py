"""CSV import and export of contacts (issue 15): the services through the task queue (the
``pipeline`` fixture runs what they enqueue), then the console pages."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from openline.contacts.csvfile import (
    MAX_BYTES,
    CsvFileError,
    csv_data_rows,
    csv_safe,
    csv_store,
    csv_unsafe,
)
from openline.contacts.import_rows import (
    EVIDENCE,
    FIRST_NAME,
    IGNORE,
    LAST_NAME,
    NAME,
    NOTES,
    NUMBER_TYPE,
    PHONE,
    TAGS,
    MappingError,
    mapping_guess,
)
from openline.contacts.models import (
    ConsentEvent,
    ConsentKind,
    ConsentSource,
    Contact,
    ContactImport,
    ContactImportFile,
    CustomField,
    FieldValue,
    ImportStatus,
)
from openline.contacts.selectors import consent_state
from openline.contacts.services import imports
from openline.contacts.services.consent import consent_record, consent_record_opt_out
from openline.contacts.services.contacts import contact_add_number, contact_create
from openline.contacts.services.exports import contacts_export
from openline.contacts.services.fields import custom_field_create
from openline.contacts.services.imports import (
    ImportStateError,
    contact_import_accept,
    contact_import_cancel,
    contact_import_map,
    contact_import_restart_if_stalled,
    contact_import_upload,
)
from openline.contacts.services.tags import contact_set_tags
from openline.core.models import AuditEvent

ANN = "+12025550101"
ANN_2 = "+12025550102"
BO = "+12025550103"
CY = "+12025550104"
HEADER = "Name,Mobile,Phone 2,Phone 2 type,Tags,Class,Birthday,Balance,School,Consent evidence"
GOOD = "\n".join(
    [
        HEADER,
        'Ann Lee,(202) 555-0101,202-555-0102,landline,"swim team, Saturday",swim,2015-04-03,'
        '"1,200.50",Oak,signed paper form 2024-09-01',
        "Bo Chen,+1 202 555 0103,,,Saturday;art,Art,12/4/2016,-3,Elm,",
        "",
    ]
)


@pytest.fixture
def fields(org: Any) -> dict[str, CustomField]:
    def make(name: str, kind: str, choices: list[str] | None = None) -> CustomField:
        return custom_field_create(organization_id=org.pk, name=name, kind=kind, choices=choices)

    return {
        "class": make("Class", "choice", ["Swim", "Art"]),
        "birthday": make("Birthday", "date"),
        "balance": make("Balance", "number"),
        "school": make("School", "text"),
    }


def _client(user: Any) -> Client:
    signed_in = Client()
    signed_in.force_login(user)
    return signed_in


@pytest.fixture
def sue_client(sue: Any) -> Client:
    return _client(sue)


@pytest.fixture
def bob_client(bob: Any) -> Client:
    return _client(bob)


@pytest.fixture
def charlie_client(charlie: Any) -> Client:
    return _client(charlie)


def upload(org: Any, user: Any, data: str | bytes, name: str = "people.csv") -> ContactImport:
    raw = data.encode() if isinstance(data, str) else data
    return contact_import_upload(
        organization_id=org.pk, actor_id=user.pk, file_name=name, chunks=[raw]
    )


def check(pipeline: Any, contact_import: ContactImport, mapping: list[str] | None = None) -> Any:
    pipeline.run(
        lambda: contact_import_map(
            contact_import=contact_import, mapping=mapping or contact_import.mapping
        )
    )
    contact_import.refresh_from_db()
    return contact_import


def accept(pipeline: Any, contact_import: ContactImport, user: Any) -> ContactImport:
    pipeline.run(
        lambda: contact_import_accept(
            contact_import=contact_import, actor_id=user.pk, consent_confirmed=True
        )
    )
    contact_import.refresh_from_db()
    return contact_import


def import_file(pipeline: Any, org: Any, user: Any, data: str | bytes) -> ContactImport:
    contact_import = check(pipeline, upload(org, user, data))
    assert contact_import.status == ImportStatus.VALIDATED
    return accept(pipeline, contact_import, user)


def snapshot(org: Any) -> dict[str, Any]:
    """Everything an import may change, comparable before and after."""
    contacts = Contact.objects.filter(organization=org)
    return {
        "contacts": sorted(
            contacts.values_list("phone", "name", "number_type", "notes", "primary__phone")
        ),
        "tags": sorted(Contact.tags.through.objects.values_list("contact__phone", "tag__name")),
        "fields": sorted(FieldValue.objects.values_list("contact__phone", "field__key", "text")),
        "ledger": ConsentEvent.objects.filter(organization=org).count(),
    }


def export_text(org: Any, user: Any) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(contacts_export(organization_id=org.pk, actor_id=user.pk))
    return out.getvalue()


# --- a good file ---------------------------------------------------------------------------


def test_a_good_file_imports_people_with_their_numbers_tags_fields_and_consent(
    pipeline: Any, org: Any, alice: Any, sue: Any, fields: dict[str, CustomField]
) -> None:
    contact_import = check(pipeline, upload(org, alice, GOOD))
    assert (contact_import.valid_rows, contact_import.error_rows) == (2, 0)
    done = accept(pipeline, contact_import, sue)

    assert done.status == ImportStatus.DONE
    assert (done.imported_rows, done.created_rows) == (2, 2)
    assert not ContactImportFile.objects.exists()  # the file is not kept once imported
    ann = Contact.objects.get(organization=org, phone=ANN)
    assert ann.name == "Ann Lee" and ann.primary is None
    second = Contact.objects.get(organization=org, phone=ANN_2)
    assert (second.primary_id, second.number_type, second.name) == (ann.pk, "landline", "Ann Lee")
    assert sorted(t.name for t in ann.tags.all()) == ["Saturday", "swim team"]
    bo = Contact.objects.get(organization=org, phone=BO)
    assert sorted(t.name for t in bo.tags.all()) == ["Saturday", "art"]
    values = {v.field.key: v for v in FieldValue.objects.filter(contact=ann)}
    assert values["class"].text == "Swim"  # the choice as the field spells it
    assert values["birthday"].date == date(2015, 4, 3)
    assert values["balance"].number == Decimal("1200.5")
    assert values["school"].text == "Oak"
    assert FieldValue.objects.get(contact=bo, field__key="birthday").date == date(2016, 12, 4)
    assert FieldValue.objects.get(contact=bo, field__key="balance").number == Decimal(-3)

    ledger = ConsentEvent.objects.filter(organization=org).order_by("phone")
    assert [(e.phone, e.kind, e.source, e.evidence, e.actor_id) for e in ledger] == [
        (phone, ConsentKind.OPT_IN, ConsentSource.IMPORT, "signed paper form 2024-09-01", sue.pk)
        for phone in (ANN, ANN_2)
    ]
    assert consent_state(organization_id=org.pk, phone=BO).status == "unknown"
    actions = set(AuditEvent.objects.filter(organization=org).values_list("action", flat=True))
    assert {"contact_import.upload", "contact_import.accept", "consent.opt_in"} <= actions


def test_the_columns_are_guessed_from_the_headers(fields: dict[str, CustomField]) -> None:
    choices = list(fields.values())
    headers = ["Full name", "Cell", "Phone 2", "Phone 2 type", "Phone 2 consent", "Labels"]
    headers += ["Comments", "birthday", "Class", "Evidence of consent", "Shoe size"]
    guess = mapping_guess(headers, choices)
    assert guess == [
        NAME, PHONE, PHONE, NUMBER_TYPE, IGNORE, TAGS, NOTES,
        f"field:{fields['birthday'].pk}", f"field:{fields['class'].pk}", EVIDENCE, IGNORE,
    ]  # fmt: skip
    assert mapping_guess(["First name", "Surname", "Phone"], choices) == [
        FIRST_NAME,
        LAST_NAME,
        PHONE,
    ]
    # One column per target that cannot repeat; a name column wins over first/last names.
    assert mapping_guess(["Name", "Name", "First name", "Phone"], []) == [
        NAME,
        IGNORE,
        IGNORE,
        PHONE,
    ]


def test_first_and_last_names_are_joined_and_the_file_may_use_semicolons_and_a_bom(
    pipeline: Any, org: Any, alice: Any
) -> None:
    data = "\ufeffFirst name;Last name;Phone\nAnn;Lee;202-555-0101\n;Chen;202 555 0103\n"
    contact_import = upload(org, alice, data)
    assert contact_import.delimiter == ";"
    assert contact_import.headers == ["First name", "Last name", "Phone"]
    assert contact_import.mapping == [FIRST_NAME, LAST_NAME, PHONE]
    import_file(pipeline, org, alice, data)
    names = dict(Contact.objects.filter(organization=org).values_list("phone", "name"))
    assert names == {ANN: "Ann Lee", BO: "Chen"}


def test_a_tab_separated_file_is_read(org: Any, alice: Any) -> None:
    contact_import = upload(org, alice, "Name\tPhone\nAnn, Lee\t2025550101\n")
    assert contact_import.delimiter == "\t"
    assert contact_import.headers == ["Name", "Phone"]


def test_reading_on_from_where_a_turn_stopped_gives_the_rows_that_follow() -> None:
    text = 'Name,Notes,Phone\nAnn,"two\nlines",2025550101\n,,\nBo,x,2025550103\nCy,,2025550104\n'
    stored = csv_store([("\ufeff" + text).encode()])
    rows = list(csv_data_rows(stored.content, ","))
    assert [(number, cells[0]) for number, cells, _ in rows] == [(2, "Ann"), (4, "Bo"), (5, "Cy")]
    for index, (_, _, place) in enumerate(rows):
        after = list(csv_data_rows(stored.content, ",", after=place))
        assert [row[:2] for row in after] == [row[:2] for row in rows[index + 1 :]]


# --- bad files: a clear report, nothing stored --------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("Name,Phone\nJosé,2025550101\n".encode("cp1252"), "not in the UTF-8 encoding"),
        ("Name,Phone\nAnn,2025550101\n".encode("utf-16"), "UTF-16"),
        (b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 40, "Excel workbook"),
        (b"", "The file is empty"),
        (b"Name,Phone\n", "no contacts under it"),
        (b"\n\nName,Phone\nAnn,2025550101", "first row must name the columns"),
        (b"Ann,202-555-0101\nBo,202-555-0103\n", r"holds a phone number \(column 2\)"),
        (",".join(f"c{i}" for i in range(201)).encode() + b"\nx\n", "201 columns"),
    ],
)
def test_a_file_that_cannot_be_used_is_refused_with_what_to_do(
    org: Any, alice: Any, data: bytes, message: str
) -> None:
    with pytest.raises(CsvFileError, match=message):
        upload(org, alice, data)
    assert not ContactImport.objects.exists()


def test_the_wrong_encoding_names_the_line_and_how_to_save_the_file(org: Any, alice: Any) -> None:
    data = "Name,Phone\nAnn,2025550101\nJosé,2025550103\n".encode("cp1252")
    with pytest.raises(CsvFileError) as refused:
        upload(org, alice, data)
    assert "line 3" in str(refused.value)
    assert "CSV UTF-8" in str(refused.value)


def test_a_file_over_50_mb_is_refused_without_reading_it_all(org: Any, alice: Any) -> None:
    megabyte = b"Ann,2025550101\n" * (1024 * 1024 // 15)
    read = []

    def chunks() -> Iterator[bytes]:
        yield b"Name,Phone\n"
        for _ in range(200):  # 200 MB on offer; refusing must stop at the limit
            read.append(len(megabyte))
            yield megabyte

    with pytest.raises(CsvFileError, match="larger than 50 MB"):
        contact_import_upload(
            organization_id=org.pk, actor_id=alice.pk, file_name="big.csv", chunks=chunks()
        )
    assert MAX_BYTES < sum(read) < MAX_BYTES + 2 * len(megabyte)


def test_a_mapping_without_a_phone_column_is_refused(pipeline: Any, org: Any, alice: Any) -> None:
    contact_import = upload(org, alice, "Name,Phone,Type\nAnn,2025550101,mobile\n")
    with pytest.raises(MappingError, match="phone numbers"):
        contact_import_map(contact_import=contact_import, mapping=[NAME, IGNORE, IGNORE])
    with pytest.raises(MappingError, match="Only one column can be Name"):
        contact_import_map(contact_import=contact_import, mapping=[NAME, PHONE, NAME])
    with pytest.raises(MappingError, match="type of the Phone number column before it"):
        contact_import_map(contact_import=contact_import, mapping=[NUMBER_TYPE, PHONE, IGNORE])
    contact_import.refresh_from_db()
    assert contact_import.status == ImportStatus.UPLOADED


def test_each_bad_row_is_reported_with_its_row_number_and_problem(
    pipeline: Any, org: Any, alice: Any, fields: dict[str, CustomField]
) -> None:
    taken = contact_create(organization_id=org.pk, phone="+12025550150", name="Dee")
    contact_add_number(contact=taken, phone="+12025550151")
    contact_create(organization_id=org.pk, phone="+12025550160", name="Eve")
    contact_add_number(contact=Contact.objects.get(phone="+12025550160"), phone="+12025550161")
    consent_record(
        organization_id=org.pk,
        phone="+12025550170",
        kind=ConsentKind.OPT_OUT,
        source=ConsentSource.KEYWORD,
        text="STOP",
    )
    data = "\n".join(
        [
            "Name,Phone,Phone 2,Class,Birthday,Balance,Consent evidence",
            "Ok,2025550101,,,,,",  # row 2
            "Bad number,555-12,,,,,",  # row 3
            "No number,,,,,,",  # row 4
            "Bad choice,2025550103,,Chess,,,",  # row 5
            "Bad date,2025550104,,,31/31/2020,,",  # row 6
            "Bad balance,2025550105,,,,lots,",  # row 7
            "Twice,202-555-0101,,,,,",  # row 8: Ok's number again
            "Two people,2025550151,2025550161,,,,",  # row 9
            "Opted out,2025550170,,,,,web form",  # row 10
            "Fine too,2025550106,,,,,",  # row 11
        ]
    )
    contact_import = check(pipeline, upload(org, alice, data))
    assert (contact_import.valid_rows, contact_import.error_rows) == (2, 8)
    problems = dict(contact_import.errors)
    assert problems[3] == "Phone: '555-12' is not a valid phone number"
    assert problems[4] == "it has no phone number"
    assert problems[5] == "Class: 'Chess' is not one of Swim, Art"
    assert problems[6].startswith("'31/31/2020' is not a date")
    assert problems[7] == "Balance: 'lots' is not a number"
    assert problems[8] == "+1 202-555-0101 is also in row 2"
    assert problems[9] == (
        "+1 202-555-0161 is a number of another person in Contacts than +1 202-555-0151"
    )
    assert problems[10].startswith("+1 202-555-0170 opted out themself")
    assert sorted(problems) == [3, 4, 5, 6, 7, 8, 9, 10]


def test_formula_cells_are_kept_as_text_and_escaped_on_export(
    pipeline: Any, org: Any, alice: Any, fields: dict[str, CustomField]
) -> None:
    data = (
        'Name,Phone,School,Notes\n"=HYPERLINK(""http://x.test"",""hi"")",2025550101,@SUM(A1),+cmd\n'
    )
    import_file(pipeline, org, alice, data)
    ann = Contact.objects.get(phone=ANN)
    assert ann.name == '=HYPERLINK("http://x.test","hi")'
    assert ann.notes == "+cmd"
    assert FieldValue.objects.get(contact=ann).text == "@SUM(A1)"
    rows = list(csv.reader(io.StringIO(export_text(org, alice))))
    assert rows[1][0] == '\'=HYPERLINK("http://x.test","hi")'
    assert rows[1][1] == "'+12025550101"
    assert "'+cmd" in rows[1] and "'@SUM(A1)" in rows[1]
    for text in ("=1", "-2", "'=3", "''@4", "'", "ok", "it's", ""):
        assert csv_unsafe(csv_safe(text)) == text
    assert csv_safe("'=3") == "''=3"


# --- accepting, cancelling, re-running ----------------------------------------------------


def test_nothing_is_imported_before_acceptance_nor_after_cancelling(
    pipeline: Any, org: Any, alice: Any, fields: dict[str, CustomField]
) -> None:
    before = snapshot(org)
    contact_import = check(pipeline, upload(org, alice, GOOD))
    assert contact_import.status == ImportStatus.VALIDATED
    assert snapshot(org) == before
    pipeline.run(lambda: contact_import_cancel(contact_import=contact_import, actor_id=alice.pk))
    contact_import.refresh_from_db()
    assert contact_import.status == ImportStatus.CANCELLED
    assert not ContactImportFile.objects.exists()
    with pytest.raises(ImportStateError):
        contact_import_accept(contact_import=contact_import, actor_id=alice.pk)
    pipeline.run()
    assert snapshot(org) == before


def test_accepting_imports_only_the_valid_rows(pipeline: Any, org: Any, alice: Any) -> None:
    data = "Name,Phone\nAnn,2025550101\nBad,12\nBo,2025550103\n"
    done = import_file(pipeline, org, alice, data)
    assert (done.imported_rows, done.error_rows, done.skipped_rows) == (2, 1, 0)
    assert set(Contact.objects.values_list("name", flat=True)) == {"Ann", "Bo"}


def test_consent_evidence_is_imported_only_once_someone_confirms_it(
    pipeline: Any, org: Any, alice: Any
) -> None:
    contact_import = check(pipeline, upload(org, alice, "Phone,Evidence\n2025550101,form\n"))
    with pytest.raises(ImportStateError, match="Confirm"):
        contact_import_accept(contact_import=contact_import, actor_id=alice.pk)
    contact_import.refresh_from_db()
    assert contact_import.status == ImportStatus.VALIDATED
    assert accept(pipeline, contact_import, alice).consent_confirmed


class Crash(BaseException):
    """The worker dies (a kill, an out-of-memory): nothing in the task can catch it."""


def test_a_crashed_import_resumes_where_it_stopped_and_never_doubles_a_row(
    pipeline: Any, org: Any, alice: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imports, "CHUNK", 2)
    rows = [f"P{n},20255501{n:02d},form {n}" for n in range(10, 17)]
    contact_import = check(pipeline, upload(org, alice, "Name,Phone,Evidence\n" + "\n".join(rows)))
    real_write = imports.rows_write
    calls = []

    def dies_on_the_third_chunk(**kwargs: Any) -> Any:
        calls.append(1)
        written = real_write(**kwargs)
        if len(calls) == 3:
            raise Crash  # after writing, before the chunk's transaction commits
        return written

    monkeypatch.setattr(imports, "rows_write", dies_on_the_third_chunk)
    accept(pipeline, contact_import, alice)
    assert (contact_import.status, contact_import.processed_rows) == (ImportStatus.IMPORTING, 4)
    assert Contact.objects.count() == 4  # the third chunk was rolled back whole

    # Its page notices the silence and enqueues the turn again, from row 4.
    ContactImport.objects.filter(pk=contact_import.pk).update(
        heartbeat_at=timezone.now() - imports.STALLED_AFTER - timedelta(seconds=1)
    )
    contact_import.refresh_from_db()
    assert pipeline.run(lambda: contact_import_restart_if_stalled(contact_import=contact_import))
    contact_import.refresh_from_db()
    assert contact_import.status == ImportStatus.DONE
    assert contact_import.imported_rows == 7
    assert Contact.objects.count() == 7
    assert ConsentEvent.objects.count() == 7  # one opt-in per number, none twice

    # The same turn again (a duplicate task) finds the import done: nothing happens.
    before = snapshot(org)
    pipeline.run(lambda: imports.contact_import_run(import_id=contact_import.pk, start=4))
    pipeline.run(lambda: imports.contact_import_run(import_id=contact_import.pk, start=7))
    assert snapshot(org) == before


def test_an_unexpected_error_fails_the_import_and_logs_nothing_from_the_file(
    pipeline: Any,
    org: Any,
    alice: Any,
    sue_client: Client,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    contact_import = check(pipeline, upload(org, alice, "Name,Phone\nAnn Secret,2025550101\n"))

    def broken(**kwargs: Any) -> Any:
        raise ValueError("Ann Secret +12025550101")

    monkeypatch.setattr(imports, "rows_write", broken)
    failed = accept(pipeline, contact_import, alice)
    assert failed.status == ImportStatus.FAILED
    assert "stay imported" in failed.message
    assert not ContactImportFile.objects.exists()
    assert "ValueError" in caplog.text
    assert "Ann Secret" not in caplog.text and "2025550101" not in caplog.text
    page = sue_client.get(reverse("console:contact_import", args=[contact_import.pk]))
    assert "stay imported" in page.content.decode()


def test_a_long_file_is_checked_and_imported_in_turns(
    pipeline: Any, org: Any, alice: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imports, "CHUNK", 2)
    monkeypatch.setattr(imports, "TURN_SECONDS", 0.0)  # one chunk per turn
    enqueued = []
    real_next = imports._next_turn
    monkeypatch.setattr(imports, "_next_turn", lambda *a: (enqueued.append(a[0]), real_next(*a))[1])
    rows = [f"P{n},20255501{n:02d}" for n in range(10, 19)] + ["Again,2025550110"]
    done = import_file(pipeline, org, alice, "Name,Phone\n" + "\n".join(rows))
    assert enqueued.count(ImportStatus.VALIDATING) == 5  # the first turn and four more
    assert enqueued.count(ImportStatus.IMPORTING) == 5
    assert done.status == ImportStatus.DONE
    # The duplicate in the last row was found across turns.
    assert done.errors == [[11, "+1 202-555-0110 is also in row 2"]]
    assert (done.imported_rows, Contact.objects.count()) == (9, 9)


def test_existing_contacts_are_updated_not_duplicated(
    pipeline: Any,
    org: Any,
    alice: Any,
    fields: dict[str, CustomField],
    published: list[dict[str, Any]],
) -> None:
    ann = contact_create(organization_id=org.pk, phone=ANN)  # texted in: no name yet
    contact_set_tags(contact=ann, names=["old"])
    named = contact_create(organization_id=org.pk, phone=BO, name="Bo (school)")
    loner = contact_create(organization_id=org.pk, phone=CY)  # a number on its own
    data = (
        "Name,Phone,Phone 2,Tags,School\n"
        "Ann Lee,2025550101,2025550102,new,Oak\n"
        "Bo Chen,2025550103,2025550104,,Elm\n"
    )
    done = import_file(pipeline, org, alice, data)
    assert (done.imported_rows, done.created_rows) == (2, 0)
    ann.refresh_from_db()
    named.refresh_from_db()
    loner.refresh_from_db()
    assert ann.name == "Ann Lee"  # it was blank
    assert named.name == "Bo (school)"  # never overwritten
    assert sorted(t.name for t in ann.tags.all()) == ["new", "old"]
    assert Contact.objects.get(phone=ANN_2).primary_id == ann.pk
    assert loner.primary_id == named.pk  # a number on its own joins the person
    assert FieldValue.objects.get(contact=named).text == "Elm"
    assert Contact.objects.count() == 4
    updated = {e["contact_id"] for e in published if e["type"] == "contact.updated"}
    assert updated == {ann.pk, named.pk}  # their open pages refresh


def test_an_opt_out_the_person_made_is_never_overridden(
    pipeline: Any, org: Any, alice: Any
) -> None:
    consent_record_opt_out(
        organization_id=org.pk, phone=BO, source=ConsentSource.KEYWORD, text="STOP"
    )
    data = "Name,Phone,Evidence\nAnn,2025550101,web form\nBo,2025550103,web form\n"
    contact_import = check(pipeline, upload(org, alice, data))
    assert [row for row, _ in contact_import.errors] == [3]
    done = accept(pipeline, contact_import, alice)
    assert done.imported_rows == 1
    assert consent_state(organization_id=org.pk, phone=BO).opted_out_by_person
    assert not ConsentEvent.objects.filter(phone=BO, source=ConsentSource.IMPORT).exists()
    assert consent_state(organization_id=org.pk, phone=ANN).opted_in


def test_numbers_with_a_consent_history_go_through_the_consent_service(
    pipeline: Any, org: Any, alice: Any, published: list[dict[str, Any]]
) -> None:
    consent_record_opt_out(organization_id=org.pk, phone=ANN, source=ConsentSource.STAFF)
    consent_record(
        organization_id=org.pk,
        phone=BO,
        kind=ConsentKind.OPT_IN,
        source=ConsentSource.KEYWORD,
        text="START",
    )
    consent_record(
        organization_id=org.pk,
        phone=CY,
        kind=ConsentKind.OPT_OUT_REQUEST,
        source=ConsentSource.MESSAGE,
        text="please stop",
    )
    data = "Phone,Evidence\n2025550101,form\n2025550103,form\n2025550104,form\n2025550105,form\n"
    contact_import = check(pipeline, upload(org, alice, data))
    assert [row for row, _ in contact_import.errors] == [4]
    assert "asked not to be texted" in contact_import.errors[0][1]
    published.clear()
    accept(pipeline, contact_import, alice)
    imported = ConsentEvent.objects.filter(source=ConsentSource.IMPORT).order_by("phone")
    # A staff opt-out may be undone with evidence; an opt-in is not recorded twice.
    assert list(imported.values_list("phone", "evidence", "actor")) == [
        (ANN, "form", alice.pk),
        ("+12025550105", "form", alice.pk),
    ]
    assert consent_state(organization_id=org.pk, phone=ANN).opted_in
    audited = AuditEvent.objects.filter(action="consent.opt_in", actor=alice)
    assert sorted(audited.values_list("object_id", flat=True)) == sorted(
        str(pk) for pk in imported.values_list("pk", flat=True)
    )
    changed = [e["phone"] for e in published if e.get("type") == "consent.changed"]
    assert sorted(changed) == [ANN, "+12025550105"]


def test_an_opt_out_after_the_check_skips_the_row_when_importing(
    pipeline: Any, org: Any, alice: Any
) -> None:
    data = "Name,Phone,Evidence\nAnn,2025550101,web form\nBo,2025550103,web form\n"
    contact_import = check(pipeline, upload(org, alice, data))
    assert contact_import.valid_rows == 2
    consent_record_opt_out(
        organization_id=org.pk, phone=BO, source=ConsentSource.KEYWORD, text="STOP"
    )
    done = accept(pipeline, contact_import, alice)
    assert (done.imported_rows, done.skipped_rows) == (1, 1)
    assert [row for row, _ in done.import_errors] == [3]
    assert "opted out themself" in done.import_errors[0][1]
    assert consent_state(organization_id=org.pk, phone=BO).opted_out


def test_importing_the_export_changes_nothing(
    pipeline: Any, org: Any, alice: Any, fields: dict[str, CustomField]
) -> None:
    import_file(pipeline, org, alice, GOOD)
    walk_in = contact_create(organization_id=org.pk, phone=CY, name="=1+1")
    consent_record_opt_out(
        organization_id=org.pk, phone=CY, source=ConsentSource.KEYWORD, text="STOP"
    )
    assert walk_in.pk
    exported = export_text(org, alice)
    rows = list(csv.reader(io.StringIO(exported)))
    assert rows[0] == [
        "Name", "Phone", "Phone type", "Phone consent", "Phone 2", "Phone 2 type",
        "Phone 2 consent", "Tags", "Notes", "Balance", "Birthday", "Class", "School",
    ]  # fmt: skip
    assert rows[1][:8] == [
        "'=1+1", "'+12025550104", "unknown", "opted_out", "", "", "", "",
    ]  # fmt: skip
    assert rows[2][:8] == [
        "Ann Lee", "'+12025550101", "unknown", "opted_in",
        "'+12025550102", "landline", "opted_in", "Saturday, swim team",
    ]  # fmt: skip
    assert rows[2][9:] == ["1,200.50", "2015-04-03", "Swim", "Oak"]
    assert rows[3][0] == "Bo Chen" and rows[3][9] == "'-3"

    before = snapshot(org)
    again = upload(org, alice, exported.encode("utf-8-sig"), name="export.csv")
    assert again.mapping[3] == IGNORE  # the consent state is shown, never imported
    done = check(pipeline, again)
    assert (done.valid_rows, done.error_rows) == (3, 0)
    assert accept(pipeline, done, alice).imported_rows == 3
    assert snapshot(org) == before


def test_an_export_names_who_made_it_and_holds_only_the_organization(
    org: Any, other_org: Any, alice: Any, charlie: Any
) -> None:
    contact_create(organization_id=org.pk, phone=ANN, name="Ann")
    contact_create(organization_id=other_org.pk, phone=BO, name="Bo")
    text = export_text(other_org, charlie)
    assert "Bo" in text and "Ann" not in text
    event = AuditEvent.objects.get(action="contacts.export")
    assert (event.organization_id, event.actor_id, event.object_id) == (
        other_org.pk,
        charlie.pk,
        "1 people",
    )


def test_an_export_costs_the_same_queries_for_3_people_or_30(
    org: Any, alice: Any, fields: dict[str, CustomField]
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def people(start: int, count: int) -> None:
        for n in range(start, start + count):
            person = contact_create(
                organization_id=org.pk, phone=f"+120255502{n:02d}", name=f"P{n}"
            )
            contact_add_number(contact=person, phone=f"+120255503{n:02d}")
            contact_set_tags(contact=person, names=["a", "b"])
            FieldValue.objects.create(
                organization=org, contact=person, field=fields["school"], text="Oak"
            )
            consent_record_opt_out(organization_id=org.pk, phone=person.phone, source="staff")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            rows = export_text(org, alice).splitlines()
        assert len(rows) == Contact.objects.filter(primary__isnull=True).count() + 1
        return len(captured)

    people(0, 3)
    few = queries()
    people(3, 27)
    assert queries() == few


# --- the pages -----------------------------------------------------------------------------


def _post_file(client: Client, data: bytes, name: str = "people.csv") -> Any:
    handle = io.BytesIO(data)
    handle.name = name
    return client.post(reverse("console:contact_import_new"), {"file": handle})


def test_a_supervisor_imports_a_file_through_the_pages(
    pipeline: Any, org: Any, sue: Any, sue_client: Client, fields: dict[str, CustomField]
) -> None:
    page = sue_client.get(reverse("console:contacts"))
    assert reverse("console:contact_import_new") in page.content.decode()
    assert reverse("console:contacts_export") in page.content.decode()

    sent = pipeline.run(lambda: _post_file(sue_client, (GOOD + "Bad,12,,,,,,,,\n").encode()))
    contact_import = ContactImport.objects.get()
    assert sent.status_code == 302
    assert sent["Location"] == reverse("console:contact_import", args=[contact_import.pk])

    page = sue_client.get(sent["Location"]).content.decode()
    assert '<option value="phone" selected>' in page  # the guess, pre-selected
    assert "Ann Lee" in page and "Bo Chen" in page  # the first rows
    form = {f"column_{i}": target for i, target in enumerate(contact_import.mapping)}
    url = reverse("console:contact_import_columns", args=[contact_import.pk])
    assert pipeline.run(lambda: sue_client.post(url, form)).status_code == 302

    report = sue_client.get(sent["Location"]).content.decode()
    assert "Import the 2 valid rows" in report
    assert "Phone number" in report and "&#x27;12&#x27; is not a valid phone number" in report
    assert 'data-row="4"' in report
    accept_url = reverse("console:contact_import_accept", args=[contact_import.pk])
    refused = sue_client.post(accept_url, {})  # the evidence column needs a confirmation
    assert refused.status_code == 422 and "Confirm that the people" in refused.content.decode()
    assert Contact.objects.count() == 0
    done = pipeline.run(lambda: sue_client.post(accept_url, {"consent_confirmed": "on"}))
    assert done.status_code == 302

    page = sue_client.get(sent["Location"]).content.decode()
    assert 'data-count="imported">2<' in page and 'data-count="created">2<' in page
    assert reverse("console:contacts") in page
    assert Contact.objects.filter(primary__isnull=True).count() == 2


def test_a_bad_file_on_the_page_says_why_and_never_fails(
    sue_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    latin = _post_file(sue_client, "Name,Phone\nJosé,2025550101\n".encode("cp1252"))
    assert latin.status_code == 422
    assert "CSV UTF-8" in latin.content.decode()
    monkeypatch.setattr("openline.contacts.csvfile.MAX_BYTES", 100)
    big = _post_file(sue_client, b"Name,Phone\n" + b"Ann,2025550101\n" * 10)
    assert big.status_code == 422 and "larger than 0 MB" in big.content.decode()
    none = sue_client.post(reverse("console:contact_import_new"), {})
    assert none.status_code == 422
    assert not ContactImport.objects.exists()


def test_choosing_no_phone_column_on_the_page_says_so(
    org: Any, alice: Any, sue_client: Client
) -> None:
    contact_import = upload(org, alice, "Name,Phone\nAnn,2025550101\n")
    url = reverse("console:contact_import_columns", args=[contact_import.pk])
    answer = sue_client.post(url, {"column_0": NAME, "column_1": ""})
    assert answer.status_code == 422
    assert "Choose the column with the phone numbers" in answer.content.decode()


def test_the_progress_fragment_polls_while_running_then_reloads_the_page(
    pipeline: Any,
    org: Any,
    alice: Any,
    sue_client: Client,
    django_capture_on_commit_callbacks: Any,
) -> None:
    contact_import = upload(org, alice, "Name,Phone\nAnn,2025550101\n")
    with django_capture_on_commit_callbacks(execute=True):  # queued, not run yet
        contact_import_map(contact_import=contact_import, mapping=contact_import.mapping)
    url = reverse("console:contact_import_progress", args=[contact_import.pk])
    running = sue_client.get(url, {"status": "validating"}, headers={"HX-Request": "true"})
    assert 'hx-trigger="every 1s"' in running.content.decode()
    assert 'role="progressbar"' in running.content.decode()
    assert "HX-Refresh" not in running
    pipeline.run()
    finished = sue_client.get(url, {"status": "validating"}, headers={"HX-Request": "true"})
    assert finished["HX-Refresh"] == "true"


def test_the_progress_bar_shows_the_rows_done(org: Any, alice: Any, sue_client: Client) -> None:
    contact_import = upload(org, alice, "Name,Phone\nAnn,2025550101\n")
    ContactImport.objects.update(
        status=ImportStatus.IMPORTING, processed_rows=1, total_rows=4, heartbeat_at=timezone.now()
    )
    url = reverse("console:contact_import_progress", args=[contact_import.pk])
    body = sue_client.get(url, {"status": "importing"}).content.decode()
    assert 'aria-valuenow="1"' in body and 'width="250"' in body
    assert "1 of 4 rows (25%)" in body


def test_a_stalled_run_is_restarted_by_its_progress_poll(
    pipeline: Any, org: Any, alice: Any, sue_client: Client
) -> None:
    contact_import = upload(org, alice, "Name,Phone\nAnn,2025550101\n")
    # Its task is lost (the worker died with it): nothing is enqueued after commit.
    contact_import_map(contact_import=contact_import, mapping=contact_import.mapping)
    url = reverse("console:contact_import_progress", args=[contact_import.pk])
    pipeline.run(lambda: sue_client.get(url, {"status": "validating"}))
    contact_import.refresh_from_db()
    assert contact_import.status == ImportStatus.VALIDATING  # not silent long enough yet
    ContactImport.objects.update(heartbeat_at=timezone.now() - timedelta(minutes=2))
    pipeline.run(lambda: sue_client.get(url, {"status": "validating"}))
    contact_import.refresh_from_db()
    assert contact_import.status == ImportStatus.VALIDATED


def test_the_export_is_a_post_streamed_with_a_bom_and_audited(
    org: Any, sue: Any, sue_client: Client
) -> None:
    contact_create(organization_id=org.pk, phone=ANN, name="@Ann")
    url = reverse("console:contacts_export")
    assert sue_client.get(url).status_code == 405
    answer = sue_client.post(url)
    assert answer.streaming and answer["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="contacts-' in answer["Content-Disposition"]
    text = b"".join(answer).decode()
    assert text.startswith("\ufeffName,Phone,")
    assert "'@Ann,'+12025550101,unknown,unknown" in text
    assert AuditEvent.objects.filter(action="contacts.export", actor=sue).count() == 1


def _import_urls(contact_import: ContactImport) -> list[tuple[str, str]]:
    pk = contact_import.pk
    return [
        ("get", reverse("console:contact_import", args=[pk])),
        ("get", reverse("console:contact_import_progress", args=[pk])),
        ("post", reverse("console:contact_import_columns", args=[pk])),
        ("post", reverse("console:contact_import_accept", args=[pk])),
        ("post", reverse("console:contact_import_cancel", args=[pk])),
    ]


def test_counselors_are_refused_and_other_organizations_see_nothing(
    org: Any, alice: Any, bob_client: Client, charlie_client: Client
) -> None:
    contact_import = upload(org, alice, "Name,Phone\nAnn,2025550101\n")
    contact_create(organization_id=org.pk, phone=ANN, name="Ann")
    page = bob_client.get(reverse("console:contacts")).content.decode()
    assert reverse("console:contact_import_new") not in page
    for method, url in [
        ("get", reverse("console:contact_import_new")),
        ("post", reverse("console:contacts_export")),
        *_import_urls(contact_import),
    ]:
        assert getattr(bob_client, method)(url).status_code == 403, url
    for method, url in _import_urls(contact_import):
        assert getattr(charlie_client, method)(url).status_code == 404, url
    exported = b"".join(charlie_client.post(reverse("console:contacts_export"))).decode()
    assert "Ann" not in exported
    contact_import.refresh_from_db()
    assert contact_import.status == ImportStatus.UPLOADED
    assert not AuditEvent.objects.filter(organization=org, action="contacts.export").exists()


def test_a_cancelled_import_says_nothing_was_imported(
    pipeline: Any, org: Any, alice: Any, sue_client: Client
) -> None:
    contact_import = check(pipeline, upload(org, alice, "Name,Phone\nAnn,2025550101\n"))
    url = reverse("console:contact_import_cancel", args=[contact_import.pk])
    assert sue_client.post(url).status_code == 302
    page = sue_client.get(reverse("console:contact_import", args=[contact_import.pk]))
    assert "nothing from this file was imported" in page.content.decode()
    assert not Contact.objects.exists()


def test_the_upload_page_lists_recent_imports(
    org: Any, alice: Any, sue_client: Client, other_org: Any, charlie: Any
) -> None:
    upload(org, alice, "Name,Phone\nAnn,2025550101\n", name="spring.csv")
    upload(other_org, charlie, "Name,Phone\nBo,2025550103\n", name="theirs.csv")
    page = sue_client.get(reverse("console:contact_import_new")).content.decode()
    assert "spring.csv" in page and "theirs.csv" not in page
