"""Request and response shapes of the REST API (they are also its OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from ninja import Field, Schema
from pydantic import AfterValidator, ConfigDict


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
