"""Appointments from a CSV file (a clinic's export of tomorrow's list from its scheduling
system): upload → a preview of every row with what is wrong with it → someone confirms →
the valid rows are saved → a summary (created, updated, unchanged, not imported).

The file is read as the contact import reads it (contacts.csvfile: UTF-8 with or without a
byte-order mark, comma, semicolon or tab, 50 MB, formula cells as text). Its columns are
guessed from their names; the preview shows the guess and how each row was read, so a
wrong guess is seen before anything is saved.

Between upload and confirm the file stays on the server, never in the browser: in the
database (AppointmentUpload, so any web process can finish it) under an unguessable token,
stamped with the organization and the uploader, read back only for that organization,
taken by one delete when imported or discarded, and dropped after ``EXPIRES_AFTER``
otherwise (it holds patients' details).

Every row goes through ``appointment_save``, idempotent on the external id: importing the
same file twice changes nothing. A row without an external id is matched on its phone and
start instead, so it is not booked twice either. The import runs inside the request, so a
file holds at most ``MAX_ROWS`` appointments."""

from __future__ import annotations

import base64
import functools
import json
import re
import secrets
import zoneinfo
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from openline.campaigns.appointments import (
    MAX_MINUTES,
    PAST_GRACE,
    AppointmentData,
    AppointmentError,
    appointment_save,
    known_time_zones,
)
from openline.campaigns.models import Appointment, AppointmentStatus, AppointmentUpload
from openline.contacts.csvfile import CsvFileError, csv_data_rows, csv_store, csv_unsafe
from openline.contacts.phones import InvalidPhoneNumber, normalize_phone
from openline.core.services import audit_record

MAX_ROWS = 2_000
EXPIRES_AFTER = timedelta(hours=1)
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32}$")
MAX_NAME, MAX_TEXT, MAX_TYPE, MAX_EXTERNAL_ID = 200, 120, 80, 100

# --- columns ----------------------------------------------------------------------------------

PHONE, NAME, FIRST_NAME, LAST_NAME = "phone", "name", "first_name", "last_name"
DATE, TIME, DATETIME, TIME_ZONE = "date", "time", "datetime", "time_zone"
MINUTES, STAFF, LOCATION, TYPE = "minutes", "staff_name", "location", "type"
EXTERNAL_ID, STATUS = "external_id", "status"
LABELS = {
    PHONE: "Phone",
    NAME: "Name",
    FIRST_NAME: "First name",
    LAST_NAME: "Last name",
    DATE: "Date",
    TIME: "Time",
    DATETIME: "Date and time",
    TIME_ZONE: "Time zone",
    MINUTES: "Length (minutes)",
    STAFF: "Provider",
    LOCATION: "Location",
    TYPE: "Type",
    EXTERNAL_ID: "External id",
    STATUS: "Status",
}

# Headers by their exact (normalised) text first, then by the words in them, in order.
_EXACT = {
    "name": NAME, "patient": NAME, "patient name": NAME, "full name": NAME, "client": NAME,
    "client name": NAME, "contact": NAME, "contact name": NAME, "first": FIRST_NAME,
    "firstname": FIRST_NAME, "given name": FIRST_NAME, "last": LAST_NAME,
    "lastname": LAST_NAME, "surname": LAST_NAME, "family name": LAST_NAME, "day": DATE,
    "start": DATETIME, "starts": DATETIME, "starts at": DATETIME, "start at": DATETIME,
    "when": DATETIME, "scheduled": DATETIME, "scheduled for": DATETIME,
    "appointment": DATETIME, "appt": DATETIME, "number": PHONE, "id": EXTERNAL_ID,
    "ref": EXTERNAL_ID, "reference": EXTERNAL_ID, "with": STAFF, "state": STATUS,
    "service": TYPE, "reason for visit": "", "reason": "",
}  # fmt: skip
_RULES: list[tuple[frozenset[str], str]] = [
    (frozenset({"zone", "tz", "timezone"}), TIME_ZONE),
    (frozenset({"phone", "mobile", "cell", "cellphone", "telephone", "tel", "sms"}), PHONE),
    (frozenset({"mrn", "dob", "birth", "diagnosis", "notes", "note", "comments"}), ""),
    (frozenset({"id", "ref", "reference", "booking", "confirmation", "external"}), EXTERNAL_ID),
    (frozenset({"provider", "staff", "doctor", "dr", "clinician", "practitioner"}), STAFF),
    (frozenset({"physician", "therapist", "counselor", "nurse", "resource"}), STAFF),
    (frozenset({"location", "site", "clinic", "office", "facility", "department"}), LOCATION),
    (frozenset({"place", "branch", "room"}), LOCATION),
    (frozenset({"type", "kind", "category"}), TYPE),
    (frozenset({"status"}), STATUS),
    (frozenset({"length", "duration", "minutes", "mins", "min"}), MINUTES),
    (frozenset({"datetime"}), DATETIME),
]
# An id of the person, not of the visit: never an appointment's external id.
_PERSON_WORDS = frozenset({"patient", "client", "person", "member", "contact", "chart"})


def _words(header: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", header.lower()).split())


def _guess_one(header: str) -> str:
    text = _words(header)
    words = set(text.split())
    if text in _EXACT:
        return _EXACT[text]
    for keys, target in _RULES:
        if words & keys:
            if target == EXTERNAL_ID and words & _PERSON_WORDS:
                return ""
            return target
    if {"date", "time"} <= words:
        return DATETIME
    for word, target in (("date", DATE), ("time", TIME), ("start", DATETIME)):
        if word in words:
            return target
    if {"first", "name"} <= words:
        return FIRST_NAME
    if {"last", "name"} <= words:
        return LAST_NAME
    return NAME if "name" in words else ""


def columns_guess(headers: Sequence[str]) -> dict[str, int]:
    """{target: column index} from the headers, the first column for each target. A date
    column with a "Start" column beside it makes that the time of day; a time column
    without a date column holds both."""
    columns: dict[str, int] = {}
    for index, header in enumerate(headers):
        target = _guess_one(header)
        if target:
            columns.setdefault(target, index)
    if NAME in columns:
        columns.pop(FIRST_NAME, None)
        columns.pop(LAST_NAME, None)
    if DATE in columns and DATETIME in columns:
        at = columns.pop(DATETIME)
        columns.setdefault(TIME, at)
    if TIME in columns and DATE not in columns and DATETIME not in columns:
        columns[DATETIME] = columns.pop(TIME)  # "Start time": 2030-12-10 09:30
    return columns


def _check_columns(headers: Sequence[str], columns: dict[str, int]) -> None:
    named = ", ".join(headers[:20]) + (" …" if len(headers) > 20 else "")
    if PHONE not in columns:
        raise CsvFileError(
            f"No column holds the patients' phone numbers (the columns are: {named}). Name "
            "it “Phone” and upload the file again."
        )
    if DATE not in columns and DATETIME not in columns:
        raise CsvFileError(
            f"No column holds the appointments' dates (the columns are: {named}). Name them "
            "“Date” and “Time”, or “Start” for both, and upload the file again."
        )


# --- reading a row ------------------------------------------------------------------------------

_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"),
            ("may",), ("jun", "june"), ("jul", "july"), ("aug", "august"),
            ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"),
            ("dec", "december"),
        ],
        1,
    )
    for name in names
}  # fmt: skip
_WEEKDAY = re.compile(
    r"^(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)[a-z]*\.?,?\s+", re.IGNORECASE
)
_ISO_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T\s]+|$)")
_NUMERIC_DATE = re.compile(r"^(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})(?:\s+|$)")
_MONTH_FIRST = re.compile(r"^([a-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4}),?(?:\s+|$)")
_DAY_FIRST = re.compile(r"^(\d{1,2})(?:st|nd|rd|th)?\s+([a-z]{3,9})\.?,?\s+(\d{4}),?(?:\s+|$)")
_TIME = re.compile(
    r"^(\d{1,2})(?:[:.h](\d{2}))?(?::(\d{2})(?:\.\d+)?)?\s*([ap])?\.?(?:m\.?)?$", re.IGNORECASE
)
_MILITARY = re.compile(r"^(\d{2})(\d{2})$")
STATUSES = {
    "": "",
    "booked": AppointmentStatus.BOOKED,
    "scheduled": AppointmentStatus.BOOKED,
    "pending": AppointmentStatus.BOOKED,
    "confirmed": AppointmentStatus.CONFIRMED,
    "cancelled": AppointmentStatus.CANCELLED,
    "canceled": AppointmentStatus.CANCELLED,
    "reschedule": AppointmentStatus.RESCHEDULE,
    "rescheduling requested": AppointmentStatus.RESCHEDULE,
    "completed": AppointmentStatus.COMPLETED,
    "checked out": AppointmentStatus.COMPLETED,
    "no show": AppointmentStatus.NO_SHOW,
    "noshow": AppointmentStatus.NO_SHOW,
}


def _date_part(text: str, *, day_first: bool) -> tuple[date, str]:
    """The date at the start of ``text`` and what follows it; ValueError if none."""
    text = _WEEKDAY.sub("", text)
    if match := _ISO_DATE.match(text):
        year, month, day = (int(g) for g in match.groups())
    elif match := _NUMERIC_DATE.match(text):
        first, separator, second, year_text = match.groups()
        year = int(year_text) + (2000 if len(year_text) == 2 else 0)
        month, day = int(first), int(second)
        if day_first or separator == ".":
            month, day = day, month
    elif match := _MONTH_FIRST.match(text.lower()):
        month, day, year = _MONTHS.get(match[1], 0), int(match[2]), int(match[3])
    elif match := _DAY_FIRST.match(text.lower()):
        day, month, year = int(match[1]), _MONTHS.get(match[2], 0), int(match[3])
    else:
        raise ValueError
    return date(year, month, day), text[match.end() :].strip()


def _time_part(text: str) -> time:
    text = text.strip()
    if match := _MILITARY.match(text):
        return time(int(match[1]), int(match[2]))
    match = _TIME.match(text)
    if not match or (match[2] is None and match[4] is None):
        raise ValueError  # "9" alone: a time needs its minutes or am/pm
    hour, minute, second = int(match[1]), int(match[2] or 0), int(match[3] or 0)
    if match[4]:
        if not 1 <= hour <= 12:
            raise ValueError
        hour = hour % 12 + (12 if match[4].lower() == "p" else 0)
    return time(hour, minute, second)


def parse_start(date_text: str, time_text: str, *, day_first: bool = False) -> datetime:
    """A start from a date cell and a time cell (the date cell may hold both): naive (local)
    or, when an ISO text carries its offset, aware. ValueError says what is unreadable."""
    date_text, time_text = " ".join(date_text.split()), " ".join(time_text.split())
    if not date_text:
        raise ValueError("it has no date")
    if not time_text and _ISO_DATE_TIME.match(date_text):
        try:
            return datetime.fromisoformat(date_text)  # with its offset, if it has one
        except ValueError:
            pass
    try:
        day, rest = _date_part(date_text, day_first=day_first)
    except ValueError:
        raise ValueError(f"the date {date_text[:40]!r} cannot be read") from None
    rest = " ".join(part for part in (rest, time_text) if part)
    if not rest:
        raise ValueError(f"{date_text[:40]!r} has no time of day")
    try:
        return datetime.combine(day, _time_part(rest))
    except ValueError:
        raise ValueError(f"the time {rest[:40]!r} cannot be read") from None


def _day_first(values: Iterable[str]) -> bool:
    """Whether the file writes numeric dates day first (10/12/2030 for 10 December): only
    when some date cannot be month first (13/12/2030). Otherwise month first, as US
    scheduling systems write them; the preview shows the date as read."""
    for value in values:
        match = _NUMERIC_DATE.match(_WEEKDAY.sub("", " ".join(value.split())))
        if match and match[2] == "/" and int(match[1]) > 12 >= int(match[3]):
            return True
    return False


def _minutes(text: str) -> int:
    text = text.strip().lower()
    if not text:
        return 30
    if match := re.fullmatch(r"(\d{1,2}):(\d{2})", text):
        return int(match[1]) * 60 + int(match[2])
    if match := re.fullmatch(r"(\d{1,4})\s*(?:m|min|mins|minutes?)?\.?", text):
        return int(match[1])
    raise ValueError(f"the length {text[:20]!r} is not a number of minutes")


@functools.cache
def _zones() -> dict[str, str]:
    """IANA names by their lower case (a spreadsheet may write america/new_york)."""
    return {name.lower(): name for name in known_time_zones()}


NEW, UPDATE, UNCHANGED, DUPLICATE = "new", "update", "unchanged", "duplicate"
OUTCOMES = {NEW: "New", UPDATE: "Changes it", UNCHANGED: "Unchanged", DUPLICATE: "Skipped"}


@dataclass(slots=True)
class ImportRow:
    """One data row as read; ``problems`` keep it from being imported."""

    number: int  # as the spreadsheet numbers it (the header is row 1)
    phone_text: str = ""  # as written
    phone: str = ""  # E.164, when it is a phone number
    name: str = ""
    starts_at: datetime | None = None  # aware, in ``time_zone``
    time_zone: str = ""
    minutes: int = 30
    staff_name: str = ""
    location: str = ""
    type_name: str = ""
    external_id: str = ""
    status: str = ""  # "" when the file does not say
    problems: list[str] = field(default_factory=list)
    action: str = ""  # what importing it does: NEW, UPDATE, UNCHANGED or DUPLICATE
    note: str = ""

    @property
    def valid(self) -> bool:
        return not self.problems

    @property
    def outcome(self) -> str:
        """What importing it does, for people."""
        return OUTCOMES.get(self.action, "")

    @property
    def status_label(self) -> str:
        return str(AppointmentStatus(self.status).label) if self.status else ""

    def data(self) -> AppointmentData:
        assert self.starts_at is not None
        return AppointmentData(
            phone=self.phone,
            starts_at=self.starts_at,
            time_zone=self.time_zone,
            minutes=self.minutes,
            staff_name=self.staff_name,
            location=self.location,
            type_name=self.type_name,
            status=self.status or AppointmentStatus.BOOKED,
            external_id=self.external_id,
            name=self.name,
        )


@dataclass(frozen=True, slots=True)
class _Reading:
    headers: Sequence[str]
    columns: dict[str, int]
    zone: str  # the organization's, for rows that name none
    day_first: bool


def _read_row(number: int, raw: Sequence[str], reading: _Reading) -> ImportRow:
    row = ImportRow(number=number)
    if any(cell.strip() for cell in raw[len(reading.headers) :]):
        row.problems.append(
            "it has more cells than the header row has columns (a comma inside a cell needs "
            "quotes around the cell)"
        )
    cells = [" ".join(csv_unsafe(cell).split()) for cell in raw]

    def cell(target: str) -> str:
        index = reading.columns.get(target)
        return cells[index] if index is not None and index < len(cells) else ""

    _read_phone(row, cell(PHONE), reading.headers[reading.columns[PHONE]])
    row.name = cell(NAME) or " ".join(f"{cell(FIRST_NAME)} {cell(LAST_NAME)}".split())
    _read_start(row, cell, reading)
    _read_minutes(row, cell(MINUTES))
    _read_texts(row, cell)
    _read_status(row, cell(STATUS))
    return row


def _read_phone(row: ImportRow, text: str, header: str) -> None:
    row.phone_text = text[:40]
    if not text:
        row.problems.append("it has no phone number")
        return
    try:
        row.phone = normalize_phone(text)
    except InvalidPhoneNumber as exc:
        row.problems.append(f"{header}: {exc}")


def _read_start(row: ImportRow, cell: Callable[[str], str], reading: _Reading) -> None:
    written = cell(TIME_ZONE)
    row.time_zone = _zones().get(written.lower(), "") if written else reading.zone
    if not row.time_zone:
        row.problems.append(f"unknown time zone {written[:64]!r}")
    try:
        if DATETIME in reading.columns:
            start = parse_start(cell(DATETIME), "", day_first=reading.day_first)
        else:
            start = parse_start(cell(DATE), cell(TIME), day_first=reading.day_first)
    except ValueError as exc:
        row.problems.append(str(exc))
        return
    if not 2000 <= start.year <= 2100:
        row.problems.append(f"the date {start.date().isoformat()} cannot be right")
    elif row.time_zone:
        zone = zoneinfo.ZoneInfo(row.time_zone)
        row.starts_at = start.astimezone(zone) if start.tzinfo else start.replace(tzinfo=zone)


def _read_minutes(row: ImportRow, text: str) -> None:
    try:
        row.minutes = _minutes(text)
    except ValueError as exc:
        row.problems.append(str(exc))
        return
    if not 1 <= row.minutes <= MAX_MINUTES:
        row.problems.append(f"the length is 1 to {MAX_MINUTES:,} minutes, not {row.minutes:,}")


_TEXTS = ((STAFF, MAX_TEXT), (LOCATION, MAX_TEXT), (TYPE, MAX_TYPE), (EXTERNAL_ID, MAX_EXTERNAL_ID))


def _read_texts(row: ImportRow, cell: Callable[[str], str]) -> None:
    if len(row.name) > MAX_NAME:
        row.problems.append(f"the name is over {MAX_NAME} characters")
    for target, limit in _TEXTS:
        value = cell(target)
        if len(value) > limit:
            row.problems.append(f"the {LABELS[target].lower()} is over {limit} characters")
        setattr(row, "type_name" if target == TYPE else target, value[:limit])


def _read_status(row: ImportRow, text: str) -> None:
    if _words(text) in STATUSES:
        row.status = STATUSES[_words(text)]
    else:
        known = "booked, confirmed, cancelled, reschedule, completed or no-show"
        row.problems.append(f"unknown status {text[:20]!r} (use {known})")


# --- the stored upload -------------------------------------------------------------------------


class ImportNotFound(Exception):
    """No such upload for this organization: never made, imported already, or expired."""


@dataclass(frozen=True, slots=True)
class StoredImport:
    token: str
    organization_id: int
    actor_id: int | None
    file_name: str
    created_at: datetime
    delimiter: str
    headers: list[str]
    columns: dict[str, int]
    rows: int
    content: bytes = field(repr=False)  # the file, zlib-compressed (contacts.csvfile)

    def as_json(self) -> bytes:
        return json.dumps(
            {
                "organization_id": self.organization_id,
                "actor_id": self.actor_id,
                "file_name": self.file_name,
                "created_at": self.created_at.isoformat(),
                "delimiter": self.delimiter,
                "headers": self.headers,
                "columns": self.columns,
                "rows": self.rows,
                "content": base64.b64encode(self.content).decode(),
            }
        ).encode()

    @classmethod
    def from_json(cls, token: str, raw: bytes) -> StoredImport:
        data = json.loads(raw)
        return cls(
            token=token,
            organization_id=int(data["organization_id"]),
            actor_id=data["actor_id"],
            file_name=str(data["file_name"]),
            created_at=datetime.fromisoformat(data["created_at"]),
            delimiter=str(data["delimiter"]),
            headers=list(data["headers"]),
            columns={str(k): int(v) for k, v in data["columns"].items()},
            rows=int(data["rows"]),
            content=base64.b64decode(data["content"]),
        )

    @property
    def mapped(self) -> list[tuple[str, str]]:
        """(what, the header of its column) in the order of LABELS, for the preview."""
        return [(LABELS[t], self.headers[self.columns[t]]) for t in LABELS if t in self.columns]

    @property
    def ignored(self) -> list[str]:
        used = set(self.columns.values())
        return [header for index, header in enumerate(self.headers) if index not in used]


def _write(stored: StoredImport) -> None:
    AppointmentUpload.objects.create(
        organization_id=stored.organization_id,
        token=stored.token,
        payload=stored.as_json(),
        created_at=stored.created_at,
    )


def _drop_expired() -> None:
    """Uploads nobody imported are not kept: they hold patients' details."""
    AppointmentUpload.objects.filter(created_at__lt=timezone.now() - EXPIRES_AFTER).delete()


def _upload(organization_id: int, token: str) -> QuerySet[AppointmentUpload]:
    if not _TOKEN.match(token):
        raise ImportNotFound
    return AppointmentUpload.objects.filter(organization_id=organization_id, token=token)


def appointment_import_upload(
    *, organization_id: int, actor_id: int | None, file_name: str, chunks: Iterable[bytes]
) -> StoredImport:
    """Check and keep an uploaded file; CsvFileError says what is wrong with it."""
    csv = csv_store(chunks)
    if csv.rows > MAX_ROWS:
        raise CsvFileError(
            f"The file has {csv.rows:,} appointments; at most {MAX_ROWS:,} can be imported at "
            "once. Export one day (or one location) at a time."
        )
    columns = columns_guess(csv.headers)
    _check_columns(csv.headers, columns)
    _drop_expired()
    stored = StoredImport(
        token=secrets.token_urlsafe(24),
        organization_id=organization_id,
        actor_id=actor_id,
        file_name=file_name[:255],
        created_at=timezone.now(),
        delimiter=csv.delimiter,
        headers=csv.headers,
        columns=columns,
        rows=csv.rows,
        content=csv.content,
    )
    _write(stored)
    _audit(stored, actor_id, "appointment_import.upload")
    return stored


def appointment_import_get(*, organization_id: int, token: str) -> StoredImport:
    """The organization's upload ``token``; ImportNotFound for any other."""
    upload = _upload(organization_id, token).first()
    if upload is None:
        raise ImportNotFound
    stored = StoredImport.from_json(token, bytes(upload.payload))
    if stored.created_at < timezone.now() - EXPIRES_AFTER:
        upload.delete()
        raise ImportNotFound
    return stored


def appointment_import_discard(*, organization_id: int, token: str, actor_id: int | None) -> None:
    stored = appointment_import_get(organization_id=organization_id, token=token)
    _upload(organization_id, token).delete()
    _audit(stored, actor_id, "appointment_import.discard")


# --- checking every row ------------------------------------------------------------------------


def appointment_import_check(
    *, stored: StoredImport, zone: str, now: datetime | None = None
) -> list[ImportRow]:
    """Every data row read, with its problems and what importing it would do. ``zone``:
    the organization's, for rows that name none."""
    now = now or timezone.now()
    records = list(csv_data_rows(stored.content, stored.delimiter))
    at = stored.columns.get(DATETIME, stored.columns.get(DATE, 0))
    day_first = _day_first(cells[at] for _, cells, _ in records if len(cells) > at)
    reading = _Reading(stored.headers, stored.columns, zone, day_first)
    rows = [_read_row(number, cells, reading) for number, cells, _ in records]
    _find_duplicates(rows)
    _compare(stored.organization_id, rows, now)
    return rows


def _key(row: ImportRow) -> tuple[str, ...] | None:
    if row.external_id:
        return ("id", row.external_id)
    if row.phone and row.starts_at is not None:
        return ("at", row.phone, row.starts_at.astimezone(UTC).isoformat())
    return None


def _details(row: ImportRow) -> tuple[object, ...]:
    return (row.phone, row.starts_at, row.time_zone, row.minutes, row.staff_name,
            row.location, row.type_name, row.status)  # fmt: skip


def _find_duplicates(rows: list[ImportRow]) -> None:
    """The same appointment twice in the file: the copy is skipped; with other details,
    neither row is imported (which one is right cannot be told)."""
    first: dict[tuple[str, ...], ImportRow] = {}
    for row in rows:
        key = _key(row)
        if key is None:
            continue
        seen = first.setdefault(key, row)
        if seen is row:
            continue
        if _details(seen) == _details(row):
            row.action, row.note = DUPLICATE, f"same as row {seen.number}"
            continue
        what = f"external id {row.external_id!r}" if row.external_id else "this phone and time"
        for one, other in ((row, seen), (seen, row)):
            one.problems.append(f"{what} is also in row {other.number} with other details")


def _existing(organization_id: int, rows: list[ImportRow]) -> dict[tuple[str, ...], Appointment]:
    ids = {row.external_id for row in rows if row.external_id}
    phones = {row.phone for row in rows if not row.external_id and row.starts_at}
    found = Appointment.objects.filter(organization_id=organization_id).select_related(
        "contact", "appointment_type"
    )
    by_key: dict[tuple[str, ...], Appointment] = {
        ("id", a.external_id): a for a in found.filter(external_id__in=ids)
    }
    starts = {row.starts_at for row in rows if not row.external_id and row.starts_at}
    for a in found.filter(contact__phone__in=phones, starts_at__in=starts):
        by_key.setdefault(("at", a.contact.phone, a.starts_at.astimezone(UTC).isoformat()), a)
    return by_key


def _compare(organization_id: int, rows: list[ImportRow], now: datetime) -> None:
    existing = _existing(organization_id, rows)
    for row in rows:
        key = _key(row)
        if not row.valid or row.action == DUPLICATE or key is None:
            continue
        appointment = existing.get(key)
        if appointment is None:
            row.status = row.status or AppointmentStatus.BOOKED
            row.action = NEW
            if row.starts_at is not None and row.starts_at < now - PAST_GRACE:
                row.problems.append("the appointment is in the past")
            continue
        row.status = row.status or appointment.status  # a confirmation stands
        if not row.external_id:
            row.action, row.note = UNCHANGED, "already booked (same phone and time)"
        else:
            row.action = UPDATE if _differs(appointment, row) else UNCHANGED


def _differs(appointment: Appointment, row: ImportRow) -> bool:
    kind = appointment.appointment_type.name if appointment.appointment_type else ""
    return (
        appointment.contact.phone,
        appointment.starts_at,
        appointment.time_zone,
        appointment.minutes,
        appointment.staff_name,
        appointment.location,
        kind,
        appointment.status,
    ) != _details(row)


# --- importing ---------------------------------------------------------------------------------


@dataclass(slots=True)
class ImportSummary:
    file_name: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    first_day: date | None = None  # the earliest day imported, in the organization's zone


def appointment_import_run(
    *,
    organization_id: int,
    token: str,
    actor_id: int | None,
    zone: str,
    now: datetime | None = None,
) -> ImportSummary:
    """Import the valid rows (checked again now) and drop the file. Taken once: a second
    confirm of the same upload finds it gone (ImportNotFound)."""
    stored = appointment_import_get(organization_id=organization_id, token=token)
    taken, _ = _upload(organization_id, token).delete()  # the one request that wins imports
    if not taken:
        raise ImportNotFound
    summary = ImportSummary(file_name=stored.file_name)
    for row in appointment_import_check(stored=stored, zone=zone, now=now):
        _import_row(organization_id, actor_id, row, summary, now, zone)
    _audit(stored, actor_id, "appointment_import.run")
    return summary


def _import_row(
    organization_id: int,
    actor_id: int | None,
    row: ImportRow,
    summary: ImportSummary,
    now: datetime | None,
    zone: str,
) -> None:
    if not row.valid:
        summary.errors.append((row.number, "; ".join(row.problems)))
        return
    if row.action == DUPLICATE or (row.action == UNCHANGED and not row.external_id):
        summary.unchanged += 1
        return
    try:
        _, changed = appointment_save(
            organization_id=organization_id, data=row.data(), actor_id=actor_id, now=now
        )
    except AppointmentError as exc:
        summary.errors.append((row.number, str(exc)))
        return
    if row.action == NEW:
        summary.created += 1
    elif changed:
        summary.updated += 1
    else:
        summary.unchanged += 1
    assert row.starts_at is not None
    day = row.starts_at.astimezone(zoneinfo.ZoneInfo(zone)).date()  # the day view's zone
    summary.first_day = min(day, summary.first_day or day)


def _audit(stored: StoredImport, actor_id: int | None, action: str) -> None:
    audit_record(
        organization_id=stored.organization_id,
        actor_id=actor_id,
        action=action,
        object_type="appointment_import",
        object_id=stored.token,
    )
