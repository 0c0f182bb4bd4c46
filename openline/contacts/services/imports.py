"""Contact imports from CSV files: upload → choose the columns → every row checked (a task)
→ someone accepts the valid rows, or cancels → the import (a task) → done.

Rows with a problem are reported with their row number and never imported; nothing is
imported before someone accepts. Both tasks work in turns of about ``TURN_SECONDS`` and
enqueue their next turn, so a 100,000-row file never holds the worker (which also dispatches
texts) for long. The import writes ``CHUNK`` rows per transaction together with the row
counter, so each transaction is short (on SQLite every write waits for it) and a crash
resumes after the last chunk written, never repeating a row. Logs carry ids and counts,
never what the file says."""

from __future__ import annotations

import itertools
import logging
import time
import zlib
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from openline.contacts.csvfile import CsvFileError, Place, csv_data_rows, csv_store
from openline.contacts.import_rows import (
    EVIDENCE,
    Row,
    mapping_clean,
    mapping_guess,
    row_read,
)
from openline.contacts.models import ContactImport, ContactImportFile, CustomField, ImportStatus
from openline.contacts.phones import InvalidPhoneNumber, format_phone, normalize_phone
from openline.contacts.services.import_people import row_person, rows_look_up, rows_write
from openline.core.services import audit_record

logger = logging.getLogger(__name__)

CHUNK = 50
TURN_SECONDS = 2.0
# A running import whose last turn is older than this lost its worker: its page restarts it.
STALLED_AFTER = timedelta(seconds=60)
MAX_ERRORS = 1000  # problems kept for the report (the count is always complete)
PREVIEW_ROWS = 5
# Files uploaded and then left (never accepted nor cancelled) are dropped after this.
ABANDONED_AFTER = timedelta(days=1)


class ImportStateError(ValueError):
    """The import cannot do that now (it moved on meanwhile)."""


# --- upload and columns ----------------------------------------------------------------------


def contact_import_upload(
    *, organization_id: int, actor_id: int, file_name: str, chunks: Iterable[bytes]
) -> ContactImport:
    """Store an uploaded file with a guess of its columns; CsvFileError says what is wrong."""
    stored = csv_store(chunks)
    _refuse_data_as_header(stored.headers)
    _drop_abandoned(organization_id)
    with transaction.atomic():
        contact_import = ContactImport.objects.create(
            organization_id=organization_id,
            created_by_id=actor_id,
            file_name=file_name[:255],
            file_size=stored.size,
            delimiter=stored.delimiter,
            headers=stored.headers,
            mapping=mapping_guess(stored.headers, _fields(organization_id)),
            total_rows=stored.rows,
        )
        ContactImportFile.objects.create(contact_import=contact_import, content=stored.content)
        _audit(contact_import, actor_id, "contact_import.upload")
    return contact_import


def _refuse_data_as_header(headers: list[str]) -> None:
    for column, header in enumerate(headers, 1):
        try:
            normalize_phone(header)
        except InvalidPhoneNumber:
            continue
        raise CsvFileError(
            f"The first row holds a phone number (column {column}), not column names. Add a "
            "first row that names the columns: Name, Phone, Tags, …"
        )


def _drop_abandoned(organization_id: int) -> None:
    """Files nobody finished with are not kept: they hold people's details."""
    left = ContactImport.objects.filter(
        organization_id=organization_id,
        status__in=(ImportStatus.UPLOADED, ImportStatus.VALIDATED),
        created_at__lt=timezone.now() - ABANDONED_AFTER,
    )
    with transaction.atomic():
        ContactImportFile.objects.filter(contact_import__in=left).delete()
        left.update(status=ImportStatus.CANCELLED, finished_at=timezone.now(), **_EMPTIED)


# What an ended import no longer needs (its file goes too: ``_drop_file``).
_EMPTIED: dict[str, Any] = {"state": b"", "invalid": b""}


def _drop_file(import_id: int) -> None:
    ContactImportFile.objects.filter(contact_import_id=import_id).delete()


def _content(import_id: int) -> bytes:
    """The file (b"" once the import ended: nothing left to read)."""
    found = ContactImportFile.objects.filter(contact_import_id=import_id)
    return bytes(found.values_list("content", flat=True).first() or b"")


def _fields(organization_id: int) -> list[CustomField]:
    return list(CustomField.objects.filter(organization_id=organization_id).order_by("name"))


def contact_import_fields(*, contact_import: ContactImport) -> list[CustomField]:
    return _fields(contact_import.organization_id)


def contact_import_preview(*, contact_import: ContactImport) -> list[list[str]]:
    """The first data rows, one cell per column, as the file has them."""
    width = len(contact_import.headers)
    rows = csv_data_rows(_content(contact_import.pk), contact_import.delimiter)
    first = itertools.islice(rows, PREVIEW_ROWS)
    return [(cells + [""] * width)[:width] for _, cells, _ in first]


def contact_import_map(*, contact_import: ContactImport, mapping: list[str]) -> ContactImport:
    """Set the columns and check every row (a task). MappingError says what to change."""
    fields = contact_import_fields(contact_import=contact_import)
    mapping = mapping_clean(mapping, contact_import.headers, fields)
    with transaction.atomic():
        changed = ContactImport.objects.filter(
            pk=contact_import.pk, status__in=(ImportStatus.UPLOADED, ImportStatus.VALIDATED)
        ).update(
            mapping=mapping,
            status=ImportStatus.VALIDATING,
            processed_rows=0,
            read_offset=0,
            read_row=0,
            valid_rows=0,
            error_rows=0,
            errors=[],
            invalid=b"",
            state=b"",
            heartbeat_at=timezone.now(),
        )
        if not changed:
            raise ImportStateError("This import has moved on; its columns cannot change now.")
        _next_turn(ImportStatus.VALIDATING, contact_import.pk, 0)
    contact_import.refresh_from_db()
    return contact_import


# --- checking every row (a task, in turns) ---------------------------------------------------


def contact_import_check(*, import_id: int, start: int) -> None:
    """One turn of checking, from the ``start``-th data row (the task's entry point)."""
    contact_import = ContactImport.objects.filter(
        pk=import_id, status=ImportStatus.VALIDATING, processed_rows=start
    ).first()
    if contact_import is None:
        return  # cancelled, remapped, or another turn got here first
    try:
        _check_turn(contact_import, start)
    except OperationalError:
        raise  # the database is busy or gone: the page restarts the turn later
    except Exception as exc:
        _fail(contact_import, exc)


def _check_turn(contact_import: ContactImport, start: int) -> None:
    c = contact_import
    seen = _seen_load(c.state)
    invalid = bytearray(c.invalid)
    errors: list[list[Any]] = list(c.errors)
    counts = {"valid_rows": c.valid_rows, "error_rows": c.error_rows}
    deadline = time.monotonic() + TURN_SECONDS
    done, place = start, Place(c.read_offset, c.read_row)
    finished = True
    for batch in _batches(_rows(c), CHUNK):
        found = rows_look_up(organization_id=c.organization_id, rows=[row for _, row, _ in batch])
        for ordinal, row, _ in batch:
            _check_duplicates(row, seen)
            row_person(row, found)
            if row.problems:
                counts["error_rows"] += 1
                _mark(invalid, ordinal)
                if len(errors) < MAX_ERRORS:
                    errors.append([row.number, "; ".join(row.problems)])
            else:
                counts["valid_rows"] += 1
        done, place = done + len(batch), batch[-1][2]
        if time.monotonic() > deadline and done < c.total_rows:
            finished = False
            break
    with transaction.atomic():
        saved = ContactImport.objects.filter(
            pk=c.pk, status=ImportStatus.VALIDATING, processed_rows=start
        ).update(
            status=ImportStatus.VALIDATED if finished else ImportStatus.VALIDATING,
            processed_rows=done,
            read_offset=place.offset,
            read_row=place.row,
            errors=errors,
            invalid=bytes(invalid),
            state=b"" if finished else _seen_dump(seen),
            heartbeat_at=timezone.now(),
            **counts,
        )
        if saved and not finished:
            _next_turn(ImportStatus.VALIDATING, c.pk, done)


def _check_duplicates(row: Row, seen: dict[str, int]) -> None:
    for phone, _ in row.phones:
        first = seen.setdefault(phone, row.number)
        if first != row.number:
            row.problems.append(f"{format_phone(phone)} is also in row {first}")


def _seen_dump(seen: dict[str, int]) -> bytes:
    return zlib.compress("\n".join(f"{p} {n}" for p, n in seen.items()).encode(), 1)


def _seen_load(state: bytes | memoryview) -> dict[str, int]:
    if not state:
        return {}
    lines = zlib.decompress(bytes(state)).decode().split("\n")
    return {phone: int(number) for phone, number in (line.split(" ") for line in lines)}


def _mark(bits: bytearray, ordinal: int) -> None:
    if len(bits) <= ordinal >> 3:
        bits.extend(bytes((ordinal >> 3) + 1 - len(bits)))
    bits[ordinal >> 3] |= 1 << (ordinal & 7)


def _marked(bits: bytes, ordinal: int) -> bool:
    return len(bits) > ordinal >> 3 and bool(bits[ordinal >> 3] & (1 << (ordinal & 7)))


Item = tuple[int, Row, Place]  # the row's ordinal (from 0), the row, the place after it


def _rows(contact_import: ContactImport) -> Iterator[Item]:
    """The data rows the turns before have not done yet."""
    c = contact_import
    fields = {f.pk: f for f in contact_import_fields(contact_import=c)}
    after = Place(c.read_offset, c.read_row) if c.read_row else None
    content = _content(c.pk)
    if not content:
        return
    records = csv_data_rows(content, c.delimiter, after=after)
    for ordinal, (number, cells, place) in enumerate(records, c.processed_rows):
        row = row_read(number, cells, mapping=c.mapping, headers=c.headers, fields=fields)
        yield ordinal, row, place


def _batches(rows: Iterator[Item], size: int) -> Iterator[list[Item]]:
    while batch := list(itertools.islice(rows, size)):
        yield batch


# --- accepting or cancelling ------------------------------------------------------------------


def contact_import_accept(
    *, contact_import: ContactImport, actor_id: int, consent_confirmed: bool = False
) -> None:
    """Import the valid rows (a task). Consent evidence needs the person to confirm it."""
    if EVIDENCE in contact_import.mapping and not consent_confirmed:
        raise ImportStateError(
            "Confirm that the people in this file gave their consent as its evidence column "
            "says: it is recorded in each number's consent history."
        )
    with transaction.atomic():
        accepted = ContactImport.objects.filter(
            pk=contact_import.pk, status=ImportStatus.VALIDATED, valid_rows__gt=0
        ).update(
            status=ImportStatus.IMPORTING,
            processed_rows=0,
            read_offset=0,
            read_row=0,
            accepted_by_id=actor_id,
            accepted_at=timezone.now(),
            consent_confirmed=consent_confirmed,
            heartbeat_at=timezone.now(),
        )
        if not accepted:
            raise ImportStateError("There is nothing to import now.")
        _audit(contact_import, actor_id, "contact_import.accept")
        _next_turn(ImportStatus.IMPORTING, contact_import.pk, 0)


def contact_import_cancel(*, contact_import: ContactImport, actor_id: int) -> None:
    """Nothing is imported and the file is dropped. Once importing, it cannot be stopped
    half-way: it finishes what was accepted."""
    with transaction.atomic():
        cancelled = ContactImport.objects.filter(
            pk=contact_import.pk,
            status__in=(ImportStatus.UPLOADED, ImportStatus.VALIDATING, ImportStatus.VALIDATED),
        ).update(status=ImportStatus.CANCELLED, finished_at=timezone.now(), **_EMPTIED)
        if not cancelled:
            raise ImportStateError("This import can no longer be cancelled.")
        _drop_file(contact_import.pk)
        _audit(contact_import, actor_id, "contact_import.cancel")


# --- importing (a task, in turns) -----------------------------------------------------------


def contact_import_run(*, import_id: int, start: int) -> None:
    """One turn of importing, from the ``start``-th data row (the task's entry point)."""
    contact_import = ContactImport.objects.filter(
        pk=import_id, status=ImportStatus.IMPORTING, processed_rows=start
    ).first()
    if contact_import is None:
        return
    try:
        _run_turn(contact_import, start)
    except OperationalError:
        raise
    except Exception as exc:
        _fail(contact_import, exc)


def _run_turn(contact_import: ContactImport, start: int) -> None:
    deadline = time.monotonic() + TURN_SECONDS
    tags: dict[str, int] = {}
    done = start
    invalid = bytes(contact_import.invalid)
    for batch in _batches(_rows(contact_import), CHUNK):
        for attempt in range(3):
            try:
                written = _write_chunk(contact_import, done, batch, invalid, tags)
                break
            except IntegrityError:  # a number arrived meanwhile (PostgreSQL): look again
                if attempt == 2:
                    raise
        if not written:
            return  # another turn took over
        done += len(batch)
        if time.monotonic() > deadline and done < contact_import.total_rows:
            with transaction.atomic():
                _next_turn(ImportStatus.IMPORTING, contact_import.pk, done)
            return
    with transaction.atomic():
        finished = ContactImport.objects.filter(
            pk=contact_import.pk, status=ImportStatus.IMPORTING, processed_rows=done
        ).update(status=ImportStatus.DONE, finished_at=timezone.now(), **_EMPTIED)
        if finished:
            _drop_file(contact_import.pk)


@transaction.atomic
def _write_chunk(
    contact_import: ContactImport,
    start: int,
    batch: list[Item],
    invalid: bytes,
    tags: dict[str, int],
) -> bool:
    c = (
        ContactImport.objects.select_for_update()
        .filter(pk=contact_import.pk, status=ImportStatus.IMPORTING, processed_rows=start)
        .only("pk", "import_errors")
        .first()
    )
    if c is None:
        return False
    rows = [row for ordinal, row, _ in batch if not _marked(invalid, ordinal)]
    found = rows_look_up(organization_id=contact_import.organization_id, rows=rows)
    plans = [(row, row_person(row, found)) for row in rows]
    late = [[row.number, "; ".join(row.problems)] for row, _ in plans if row.problems]
    written = rows_write(
        organization_id=contact_import.organization_id,
        actor_id=contact_import.accepted_by_id,
        plans=[(row, person) for row, person in plans if not row.problems],
        found=found,
        tags=tags,
    )
    late += [[number, problem] for number, problem in written.problems]
    ContactImport.objects.filter(pk=c.pk).update(
        processed_rows=start + len(batch),
        read_offset=batch[-1][2].offset,
        read_row=batch[-1][2].row,
        imported_rows=F("imported_rows") + written.imported,
        created_rows=F("created_rows") + written.created,
        skipped_rows=F("skipped_rows") + len(plans) - written.imported,
        import_errors=(c.import_errors + late)[:MAX_ERRORS],
        heartbeat_at=timezone.now(),
    )
    return True


# --- a run whose worker died, a failure ------------------------------------------------------


def contact_import_restart_if_stalled(*, contact_import: ContactImport) -> bool:
    """Enqueue the next turn again if the last one is long gone (its worker was killed or
    restarted); a turn that was only late finds it taken and stops."""
    c = contact_import
    if not c.running or (c.heartbeat_at and c.heartbeat_at > timezone.now() - STALLED_AFTER):
        return False
    with transaction.atomic():
        claimed = ContactImport.objects.filter(
            pk=c.pk, status=c.status, processed_rows=c.processed_rows, heartbeat_at=c.heartbeat_at
        ).update(heartbeat_at=timezone.now())
        if claimed:
            logger.warning("contact import %s stalled: restarting its turn", c.pk)
            _next_turn(c.status, c.pk, c.processed_rows)
    return bool(claimed)


def contact_imports_restart_stalled() -> None:
    """For the scheduler: restart every stalled import, watched or not."""
    running = ContactImport.objects.filter(
        status__in=(ImportStatus.VALIDATING, ImportStatus.IMPORTING),
        heartbeat_at__lt=timezone.now() - STALLED_AFTER,
    ).defer("state", "invalid")
    for contact_import in running:
        contact_import_restart_if_stalled(contact_import=contact_import)


def _fail(contact_import: ContactImport, exc: Exception) -> None:
    # The exception's text may quote the file (a value, a number): only its type is logged.
    logger.error("contact import %s failed: %s", contact_import.pk, type(exc).__name__)
    message = "Something went wrong on our side while checking the rows: nothing was imported."
    if contact_import.status == ImportStatus.IMPORTING:
        message = (
            "Something went wrong on our side. The rows imported before it stay imported; "
            "importing the same file again adds the rest without doubling anyone."
        )
    with transaction.atomic():
        ContactImport.objects.filter(pk=contact_import.pk).update(
            status=ImportStatus.FAILED, finished_at=timezone.now(), message=message, **_EMPTIED
        )
        _drop_file(contact_import.pk)


def _next_turn(status: str, import_id: int, start: int) -> None:
    from openline.contacts import tasks

    task = tasks.import_contacts
    if status == ImportStatus.VALIDATING:
        task = tasks.check_contact_import
    transaction.on_commit(lambda: task.enqueue(import_id, start))


def _audit(contact_import: ContactImport, actor_id: int | None, action: str) -> None:
    audit_record(
        organization_id=contact_import.organization_id,
        actor_id=actor_id,
        action=action,
        object_type="contact_import",
        object_id=contact_import.pk,
    )
