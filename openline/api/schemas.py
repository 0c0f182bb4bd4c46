"""Request and response shapes of the REST API (they are also its OpenAPI schema)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from ninja import Field, Schema
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    Strict,
    model_validator,
)

from openline.campaigns.appointments import known_time_zones


def _clean_text(value: str) -> str:
    """JSON can carry NUL and lone surrogates ("\\ud800"); neither can be stored (PostgreSQL
    rejects NUL, UTF-8 cannot encode a lone surrogate), so they are refused up front."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    return value


Text = Annotated[str, AfterValidator(_clean_text)]
Name = Annotated[str, AfterValidator(_clean_text), Field(max_length=200)]


class Input(Schema):
    # An unknown field is refused rather than ignored: a typo like "form" for "from" would
    # otherwise silently send from another number.
    model_config = ConfigDict(extra="forbid")


class ErrorOut(Schema):
    code: str = Field(description="Stable machine-readable code, e.g. opted_out.")
    detail: Any = Field(description="A message a person can act on (or validation errors).")


class CreditsOut(Schema):
    available: int = Field(description="Credits the organization can still spend.")
    reserved: int = Field(description="Credits set aside for messages on their way.")
    owed: int = Field(
        description="Credits spent beyond the balance by texts that never wait for credits "
        "(replies, alerts, automatic answers); paid first from the next credits added."
    )


# Messages


class MessageIn(Input):
    to: Text = Field(description="Recipient phone number, E.164 preferred (+12025550111).")
    body: Text = Field(description="Message text, at most 1,600 characters.")
    from_: Text | None = Field(
        None, alias="from", description="One of the organization's numbers; default: the first."
    )


class MessageSentOut(Schema):
    id: int
    status: str
    segments: int
    encoding: str
    conversation_id: int
    to: str
    from_: str = Field(alias="from")


class MessageOut(Schema):
    id: int
    direction: str = Field(description='"in" (from the person) or "out" (to them).')
    body: str
    segments: int
    encoding: str
    status: str
    error_code: str
    created_at: datetime
    sent_at: datetime | None


# Larger ids overflow the database's integer (SQLite raises OverflowError, not a miss).
MAX_ID = 2**63 - 1


class PageParams(Schema):
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=MAX_ID // 2)


# Conversations


class ConversationFilters(Schema):
    status: Literal["waiting", "active", "closed"] | None = None
    number: str | None = Field(
        None, pattern=r"^\+?[0-9]{3,15}$", description="Only this number's (E.164)."
    )


class MessagePage(Schema):
    items: list[MessageOut]
    count: int


class FormAnswerOut(Schema):
    key: str = Field(description="The question's key; stable across the form's versions.")
    question: str = Field(description="The question as it was asked, in the version answered.")
    values: list[str] = Field(
        description="What is stored: option values, yes/no, numbers and dates (YYYY-MM-DD) "
        "as text, one item per ticked option."
    )
    text: str = Field(description="The answer as shown to people: option labels, joined.")


class FormResponseOut(Schema):
    id: int
    form_id: int
    form: str = Field(description="The form's name.")
    version: int = Field(description="The form version answered (editing a form makes a new one).")
    purpose: Literal["contact", "pre_survey", "post_survey", "risk"]
    channel: Literal["console", "sms", "chat"] = Field(
        description="Who answered: a member in the console, the texter by text, or the "
        "chat visitor."
    )
    status: Literal["in_progress", "complete", "skipped", "expired"]
    risk_level: Literal["low", "moderate", "high"] | None = Field(
        description="A completed risk assessment's result; null otherwise (and when it found "
        "no risk)."
    )
    answered_by_id: int | None = Field(description="The member who filled it in, if one did.")
    created_at: datetime
    completed_at: datetime | None
    answers: list[FormAnswerOut] = Field(
        description="The questions answered that show given the other answers, in order."
    )


class FormResponsePage(Schema):
    items: list[FormResponseOut]
    count: int


class ContactBriefOut(Schema):
    id: int
    name: str
    phone: str


class ConversationOut(Schema):
    id: int
    channel: str
    status: str
    priority: int
    contact: ContactBriefOut
    number: str = Field(description="The organization's number (E.164 or short code).")
    assigned_to_id: int | None
    needs_consent_review: bool
    last_message_at: datetime
    created_at: datetime
    closed_at: datetime | None

    @staticmethod
    def resolve_number(obj: Any) -> str:
        return str(obj.number.e164)


class ConversationPage(Schema):
    items: list[ConversationOut]
    count: int


# Contacts and consent


class ConsentOut(Schema):
    status: Literal["opted_in", "opted_out", "unknown"]
    opted_out_by_person: bool = Field(
        description="Opted out by keyword or through the carrier; only they can opt back in."
    )
    pending_opt_out_request: bool = Field(
        description="They wrote something like an opt-out; automated texts wait for review."
    )
    changed_at: datetime | None
    source: str | None


class ContactOut(Schema):
    id: int
    name: str
    phone: str
    number_type: str
    textable: bool
    consent: ConsentOut


class ContactIn(Input):
    phone: Text
    name: Name = ""
    number_type: Text | None = Field(None, description="mobile, landline, voip or unknown.")
    notes: Text = ""


class ContactPatch(Input):
    name: Name | None = None
    number_type: Text | None = None
    notes: Text | None = None


class ConsentIn(Input):
    action: Literal["opt_in", "opt_out"]
    evidence: Text = Field(
        "", description="How consent was given or withdrawn. Required for opt_in."
    )
    text: Text = Field("", description="For opt_out: the exact words the person used.")


class ConsentChangeOut(ConsentOut):
    welcome_message_id: int | None = Field(
        None, description="The welcome text queued by an opt_in, if one could be sent."
    )


# Broadcasts

# An id in a request body: a JSON integer (not "5", not true) the database can hold.
Id = Annotated[int, Strict(), Field(ge=1, le=MAX_ID)]
# Ids or phones picked by hand; beyond this, tag the contacts and send to the tag.
MAX_PICKED = 5_000
BUCKETS = Literal[
    "pending",
    "queued",
    "sent",
    "delivered",
    "failed",
    "refused",
    "cancelled",
    # a voice broadcast's
    "ringing",
    "answered",
    "voicemail",
    "busy",
    "no_answer",
]
LANGUAGES = Literal["en-US", "es-US", "en-GB", "fr-CA", "pt-BR", "vi-VN", "zh-CN"]


def _iso_text(value: Any) -> Any:
    # Not a number of seconds since 1970 (pydantic would take one): a time in an API is
    # written out, with its offset, so nobody has to guess which clock it is on.
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date and time with its offset")
    return value


def _utc(value: datetime) -> datetime:
    """An aware datetime at the edge of the calendar (9999-12-31T23:00-05:00) has no UTC
    equivalent; refused here rather than overflowing in the database layer."""
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError("must be a date and time between the years 1 and 9999 in UTC") from None


class FilterIn(Input):
    on: Text = Field(
        description='What to test: "field:<id>" (a contact field), "last_contact", "inbox", '
        '"consent" or "number_type".'
    )
    op: Text = Field(
        description="equals, before, after or empty (what each target allows: a date or "
        "number field all four, text and choice fields equals and empty, last_contact "
        "before/after/empty, the rest equals)."
    )
    value: Annotated[str, Strict()] | Annotated[int, Strict()] = Field(
        "", description="A value of the field's kind; a date as 2026-12-04; an inbox's id."
    )
    exclude: Annotated[bool, Strict()] = Field(False, description="Leave these people out.")


class AudienceIn(Input):
    everyone: Annotated[bool, Strict()] = Field(
        False, description="Every contact with a phone number (then narrowed by the rest)."
    )
    include_tags: list[Id] = Field(
        default_factory=list, max_length=MAX_PICKED, description="Contacts with any of these."
    )
    exclude_tags: list[Id] = Field(
        default_factory=list,
        max_length=MAX_PICKED,
        description="Contacts with any of these are left out, unless added by hand.",
    )
    add_contacts: list[Id] = Field(
        default_factory=list, max_length=MAX_PICKED, description="People picked by hand."
    )
    remove_contacts: list[Id] = Field(
        default_factory=list, max_length=MAX_PICKED, description="People left out by hand."
    )
    filters: list[FilterIn] = Field(
        default_factory=list, max_length=20, description="Conditions that must all hold."
    )


class AudienceOut(Schema):
    everyone: bool
    include_tags: list[int]
    exclude_tags: list[int]
    add_contacts: list[int]
    remove_contacts: list[int]
    filters: list[dict[str, Any]]


class BroadcastIn(Input):
    name: Text = Field(description="For the organization's own records, at most 120 characters.")
    channel: Literal["sms", "voice"] = Field(
        "sms",
        description="sms: a text; voice: a call playing recording_id or reading body aloud "
        "(landlines too; never numbers on the voice do-not-call list; everyone can press 9 "
        "to stop these calls).",
    )
    body: Text = Field(
        "",
        description="The text. Merge fields: {first_name}, {name}. A person's first broadcast "
        "from the organization ends with how to opt out. For a call: the text read aloud "
        "(at most 1,000 characters; empty with recording_id).",
    )
    recording_id: Id | None = Field(
        None, description="A call's recorded message (POST /recordings), instead of body."
    )
    language: LANGUAGES = Field("en-US", description="The language body is read aloud in.")
    number_ids: list[Id] = Field(
        min_length=1, max_length=100, description="The organization's numbers to send from."
    )
    audience: AudienceIn | None = Field(None, description="Who gets it, by tag and by hand.")
    contact_ids: list[Id] | None = Field(
        None, min_length=1, max_length=MAX_PICKED, description="Or: exactly these contacts."
    )
    phones: list[Text] | None = Field(
        None,
        min_length=1,
        max_length=MAX_PICKED,
        description="Or: the contacts with these phone numbers (any format; E.164 preferred).",
    )
    reply_mode: Literal["queue", "not_monitored"] = Field(
        "queue",
        description="Replies always wait in the queue; not_monitored also answers each "
        "recipient's first reply once with not_monitored_text.",
    )
    not_monitored_text: Text = Field(
        "", max_length=320, description="That answer (a default names the organization)."
    )

    @model_validator(mode="after")
    def _one_audience(self) -> BroadcastIn:
        given = [self.audience, self.contact_ids, self.phones]
        if sum(value is not None for value in given) != 1:
            raise ValueError("give exactly one of audience, contact_ids or phones")
        return self


class SendIn(Input):
    scheduled_for: (
        Annotated[AwareDatetime, BeforeValidator(_iso_text), AfterValidator(_utc)] | None
    ) = Field(
        None,
        description="When to start, with its UTC offset (2026-12-04T09:00:00-05:00); "
        "absent or past: now.",
    )


class ProgressCountsOut(Schema):
    pending: int = Field(description="Waiting for their turn or their sending window.")
    queued: int = Field(description="Handed to the carrier's queue, no answer yet.")
    sent: int = 0
    delivered: int = 0
    failed: int
    refused: int = Field(description="Not sent (opted out since, no rate for the country...).")
    cancelled: int
    ringing: int = Field(0, description="A call ringing or playing now.")
    answered: int = Field(0, description="A call a person answered.")
    voicemail: int = Field(0, description="A call that reached a voicemail.")
    busy: int = 0
    no_answer: int = 0


class ProgressOut(Schema):
    counts: ProgressCountsOut
    total: int
    done: int = Field(description="Recipients with a final outcome (not pending or queued).")


class BroadcastListItemOut(Schema):
    id: int
    name: str
    body: str = Field(description="As written, merge fields unfilled.")
    status: Literal["draft", "scheduled", "sending", "paused", "finished", "cancelled"]
    created_at: datetime
    scheduled_for: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    number_ids: list[int]
    audience: AudienceOut
    reply_mode: Literal["queue", "not_monitored"]
    channel: Literal["sms", "voice"]
    recording_id: int | None
    language: str


class BroadcastOut(BroadcastListItemOut):
    progress: ProgressOut


class BroadcastPage(Schema):
    items: list[BroadcastListItemOut]
    count: int


class ExcludedOut(Schema):
    reason: str = Field(
        description="not_textable, opted_out, opt_out_pending, no_opt_in, no_rate; for a call "
        "do_not_call, opted_out, opt_out_pending, no_opt_in (a mobile without consent), no_rate"
    )
    label: str
    count: int


class WaitingOut(Schema):
    time_zone: str
    recipients: int
    until: datetime = Field(description="When their sending window opens.")


class PreviewOut(Schema):
    selected: int = Field(description="Contacts the audience selects.")
    eligible: int = Field(description="Numbers it would text.")
    excluded: list[ExcludedOut]
    encoding: str
    segments_per_message: int
    segments_with_footer: int
    credits_needed: int
    credits_available: int
    shortfall: int
    waiting: list[WaitingOut] = Field(description="Recipients outside their window now.")
    minutes_per_call: int = Field(
        description="A call: the minutes reserved for each (a voicemail greeting and the "
        "message); what was billed is debited when it ends. 0 for texts."
    )
    message_seconds: int = Field(description="A call: about how long the message plays.")


class LogFilters(Schema):
    status: BUCKETS | None = None


class BroadcastMessageOut(Schema):
    contact_id: int
    phone: str
    number: str = Field(description="The sender number (E.164).")
    message_id: int | None
    queued_at: datetime | None
    status: BUCKETS
    segments: int
    credits: int = Field(
        description="A text: what it costs. A call: reserved while on its way, then what its "
        "billed minutes cost."
    )
    error: str = Field(description="Why it was not sent or not delivered; empty otherwise.")
    call_id: int | None = Field(None, description="A call: its id.")
    duration: int = Field(0, description="A call: the seconds the provider billed.")
    pressed_9: bool = Field(False, description="A call: 9 pressed (now on the do-not-call list).")


class RecordingOut(Schema):
    id: int
    name: str
    seconds: int
    content_type: str


class BroadcastMessagePage(Schema):
    items: list[BroadcastMessageOut]
    count: int


# Appointments

APPOINTMENT_STATUSES = Literal[
    "booked", "confirmed", "cancelled", "reschedule", "completed", "no_show"
]
ANSWERS = Literal["confirmed", "cancelled", "reschedule"]
REMINDER_STATUSES = Literal["planned", "sent", "withdrawn", "missed", "skipped", "refused"]


def _known_zone(value: str) -> str:
    """Checked against the list of zones rather than by loading one: a name like
    "America" (a directory) or 300 letters fails in the file system, not as a miss."""
    if value not in known_time_zones():
        raise ValueError(f"unknown time zone {value[:64]!r}: use an IANA name like America/Chicago")
    return value


# An ISO 8601 date and time: "2030-12-10T09:30" (local, read in time_zone) or with an
# offset ("2030-12-10T09:30:00-05:00", "...Z").
_ISO_START = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
MIN_YEAR, MAX_YEAR = 2000, 2100


def _start(value: Any) -> datetime:
    if not isinstance(value, str) or not _ISO_START.match(value):
        raise ValueError(
            "must be an ISO 8601 date and time, e.g. 2030-12-10T09:30 (read in time_zone) "
            "or 2030-12-10T09:30:00-05:00"
        )
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value[:40]!r} is not a date and time") from None
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise ValueError(f"must be between the years {MIN_YEAR} and {MAX_YEAR}")
    return moment


StartsAt = Annotated[datetime, BeforeValidator(_start)]
TimeZoneName = Annotated[str, AfterValidator(_known_zone), Field(max_length=64)]
APPOINTMENT_EXAMPLE: dict[str, Any] = {
    "phone": "(212) 555-0110",
    "name": "Ann Lee",
    "starts_at": "2030-12-10T09:30",
    "time_zone": "America/New_York",
    "minutes": 30,
    "staff_name": "Dr. Ruiz",
    "location": "Main St clinic",
    "type": "Check-up",
    "external_id": "EHR-20301210-0042",
}


class AppointmentIn(Input):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [APPOINTMENT_EXAMPLE]})

    phone: Text = Field(
        max_length=40,
        description="The patient's phone number, any format (a US number without +1 is "
        "read as one); their contact is found or created.",
        examples=["+12125550110", "(212) 555-0110"],
    )
    name: Name = Field("", description="The patient's name, kept if the contact has none.")
    starts_at: StartsAt = Field(
        description="ISO 8601. Without an offset it is the local time in time_zone "
        "(2030-12-10T09:30); with one, that instant (2030-12-10T09:30:00-05:00).",
        examples=["2030-12-10T09:30", "2030-12-10T14:30:00Z"],
    )
    time_zone: TimeZoneName | None = Field(
        None,
        description="Where the visit takes place (IANA). Absent: the appointment's current "
        "zone, or the organization's for a new one.",
        examples=["America/New_York"],
    )
    minutes: Annotated[int, Strict()] = Field(30, ge=1, le=24 * 60, description="Its length.")
    staff_name: Text = Field("", max_length=120, description="Provider or staff member.")
    location: Text = Field("", max_length=120, description="Where (a site, a room).")
    type: Text = Field(
        "",
        max_length=80,
        description="The kind of visit; its reminder rules apply (a new name makes a type "
        "without rules).",
    )
    status: APPOINTMENT_STATUSES | None = Field(
        None,
        description="Absent: booked for a new appointment, and left as it is for one that "
        "exists (so a push that does not know about a patient's confirmation keeps it).",
    )
    external_id: Text = Field(
        "",
        max_length=100,
        description="The scheduling system's id. Sending the same appointment again "
        "changes nothing.",
        examples=["EHR-20301210-0042"],
    )


class ReminderOut(Schema):
    id: int
    due_at: datetime = Field(description="When it goes (or went, or would have gone) out.")
    status: REMINDER_STATUSES
    reason: str = Field(description="Why it was not sent, withdrawn or missed; else empty.")
    sent_at: datetime | None
    for_start: datetime = Field(description="The start it announces.")


class AppointmentOut(Schema):
    id: int
    external_id: str
    contact: ContactBriefOut
    starts_at: datetime = Field(description="In UTC.")
    local_start: str = Field(
        description="The start in time_zone, ISO 8601 with its offset.",
        examples=["2030-12-10T09:30:00-05:00"],
    )
    time_zone: str
    minutes: int
    staff_name: str
    location: str
    type: str | None
    status: APPOINTMENT_STATUSES
    answer: ANSWERS | None = Field(
        description="The patient's first clear answer to a reminder (never the text itself)."
    )
    answered_at: datetime | None
    created_at: datetime
    updated_at: datetime


class AppointmentDetailOut(AppointmentOut):
    reminders: list[ReminderOut] = Field(description="Every reminder planned, in due order.")


class AppointmentPage(Schema):
    items: list[AppointmentOut]
    count: int


class AppointmentFilters(Schema):
    date_from: Text | None = Field(
        None,
        max_length=40,
        description="Starting on or after: a date (2030-12-10, from its midnight in the "
        "organization's time zone) or an ISO 8601 date and time.",
    )
    date_to: Text | None = Field(
        None,
        max_length=40,
        description="Starting before: a date (up to the end of that day in the "
        "organization's time zone, included) or an ISO 8601 date and time (excluded).",
    )
    location: Text | None = Field(None, max_length=120, description="Exactly this (any case).")
    status: APPOINTMENT_STATUSES | None = None
    answer: Literal["confirmed", "cancelled", "reschedule", "none"] | None = Field(
        None, description='The answer to its reminders; "none": no clear answer yet.'
    )
    external_id: Text | None = Field(None, max_length=100)
