"""The REST API (django-ninja), mounted at /api/v1/. Every request carries an organization's
token, and every query is scoped to that organization. Endpoints stay thin: validate, call
one service or selector, map its errors to a 4xx answer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from ninja import File, Form, NinjaAPI, Path, Query, Status, UploadedFile

from openline.api.auth import OrganizationToken, organization_id
from openline.api.errors import ApiError, install_error_handlers
from openline.api.schemas import (
    MAX_ID,
    BroadcastIn,
    BroadcastMessagePage,
    BroadcastOut,
    BroadcastPage,
    ConsentChangeOut,
    ConsentIn,
    ContactIn,
    ContactOut,
    ContactPatch,
    ConversationFilters,
    ConversationPage,
    CreditsOut,
    ErrorOut,
    FormResponsePage,
    LogFilters,
    MessageIn,
    MessagePage,
    MessageSentOut,
    PageParams,
    PreviewOut,
    RecordingOut,
    SendIn,
)
from openline.billing.services import CreditError, InsufficientCredits, credit_balance
from openline.campaigns.audience import AudienceError
from openline.campaigns.compose import ComposeError
from openline.campaigns.models import Broadcast, BroadcastRecipient, BroadcastStatus
from openline.campaigns.selectors import (
    _MESSAGE_BUCKET,
    broadcast_get,
    broadcast_log,
    broadcast_progress,
    broadcasts_for,
    call_bucket,
)
from openline.campaigns.services import (
    BroadcastError,
    broadcast_cancel,
    broadcast_create,
    broadcast_pause,
    broadcast_preview,
    broadcast_queue,
    broadcast_resume,
)
from openline.campaigns.voice import MAX_RECORDING_BYTES, RecordingError, recording_save
from openline.contacts.models import ConsentSource, Contact, NumberType
from openline.contacts.phones import InvalidPhoneNumber, normalize_phone
from openline.contacts.selectors import consent_state, contact_by_phone, contact_get
from openline.contacts.services.consent import ConsentError, consent_record_opt_out
from openline.contacts.services.contacts import (
    DuplicateContact,
    contact_create,
    contact_update,
)
from openline.core.services import audit_transcript_read_by_token
from openline.forms.filling import PaneForm, conversation_forms
from openline.messaging.models import (
    CALL_FINAL_STATUSES,
    Conversation,
    Message,
    MessageKind,
    RiskLevel,
)
from openline.messaging.selectors import conversation_get, conversation_list, conversation_messages
from openline.messaging.services.conversation_consent import consent_opt_in_with_welcome
from openline.messaging.services.outbound import SendRefused, message_send

api = NinjaAPI(
    title="OpenLine API",
    version="1",
    description=(
        "Two-way SMS for human-services organizations. Authenticate with an organization's "
        "API token: `Authorization: Bearer olk_...`. Errors are JSON "
        '`{"code": ..., "detail": ...}`.'
    ),
    auth=OrganizationToken(),
)
install_error_handlers(api)
api.add_router("/appointments", "openline.api.appointments.router")

ERRORS = {400: ErrorOut, 401: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}


def _page(queryset: QuerySet[Any], page: PageParams) -> dict[str, Any]:
    # Not ninja's @paginate: its wrapper hides this module's globals from ninja's resolution
    # of postponed annotations (``from __future__ import annotations``).
    items = list(queryset[page.offset : page.offset + page.limit])
    return {"items": items, "count": queryset.count()}


def _contact_or_404(request: HttpRequest, contact_id: int) -> Contact:
    try:
        return contact_get(organization_id=organization_id(request), contact_id=contact_id)
    except Contact.DoesNotExist:
        raise ApiError(404, "not_found", "contact not found") from None


def _contact_out(contact: Contact) -> dict[str, Any]:
    state = consent_state(organization_id=contact.organization_id, phone=contact.phone)
    return {
        "id": contact.pk,
        "name": contact.name,
        "phone": contact.phone,
        "number_type": contact.number_type,
        "textable": contact.is_textable,
        "consent": state.as_dict(),
    }


def _check_number_type(number_type: str | None) -> None:
    if number_type is not None and number_type not in NumberType.values:
        choices = ", ".join(NumberType.values)
        raise ApiError(400, "invalid_number_type", f"number_type must be one of {choices}")


# Messages


@api.post(
    "/messages",
    response={201: MessageSentOut, **ERRORS},
    by_alias=True,
    tags=["messages"],
    summary="Send a text",
)
def send_message(request: HttpRequest, payload: MessageIn) -> Status[dict[str, Any]]:
    """Queue a text to `to`; it is delivered in the background (watch its status through the
    conversation's messages).

    API clients are integrations, so their texts are sent as **automated** messages: besides
    an opt-out (`opted_out`) and a number that cannot receive texts (`not_textable`), an
    unreviewed free-text opt-out request from the person (`opt_out_pending`) also blocks
    them (409). Bad input answers 400 with `invalid_phone`, `invalid_body` (empty or over
    1,600 characters), `invalid_from` or `no_number`."""
    try:
        message = message_send(
            organization_id=organization_id(request),
            to=payload.to,
            body=payload.body,
            from_number=payload.from_,
            kind=MessageKind.AUTOMATED,
        )
    except SendRefused as exc:
        raise ApiError.from_refusal(exc) from None
    conversation = message.conversation
    return Status(
        201,
        {
            "id": message.pk,
            "status": message.status,
            "segments": message.segments,
            "encoding": message.encoding,
            "conversation_id": conversation.pk,
            "to": conversation.contact.phone,
            "from": conversation.number.e164,
        },
    )


# Conversations


@api.get(
    "/conversations",
    response={200: ConversationPage, **ERRORS},
    tags=["conversations"],
    summary="List conversations, newest activity first",
)
def list_conversations(
    request: HttpRequest,
    filters: ConversationFilters = Query(...),  # noqa: B008 -- ninja's declaration style
    page: PageParams = Query(...),  # noqa: B008
) -> dict[str, Any]:
    conversations = conversation_list(
        organization_id=organization_id(request), status=filters.status, number=filters.number
    )
    return _page(conversations, page)


def _conversation_read(request: HttpRequest, conversation_id: int) -> Conversation:
    """The token's organization's conversation (404 otherwise), its read audited as a
    transcript read: once per token and conversation in an hour."""
    org_id = organization_id(request)
    try:
        conversation = conversation_get(organization_id=org_id, conversation_id=conversation_id)
    except Conversation.DoesNotExist:
        raise ApiError(404, "not_found", "conversation not found") from None
    audit_transcript_read_by_token(
        organization_id=org_id,
        api_token_id=request.auth.pk,  # type: ignore[attr-defined]
        conversation_id=conversation.pk,
    )
    return conversation


@api.get(
    "/conversations/{conversation_id}/messages",
    response={200: MessagePage, **ERRORS},
    tags=["conversations"],
    summary="A conversation's messages, oldest first",
)
def list_messages(
    request: HttpRequest,
    conversation_id: int = Path(..., ge=1, le=MAX_ID),
    page: PageParams = Query(...),  # noqa: B008
) -> dict[str, Any]:
    """Reading a transcript is written to the organization's audit log: once per token and
    conversation in an hour, however many pages it takes."""
    conversation = _conversation_read(request, conversation_id)
    return _page(conversation_messages(conversation=conversation), page)


@api.get(
    "/conversations/{conversation_id}/forms",
    response={200: FormResponsePage, **ERRORS},
    tags=["conversations"],
    summary="The forms answered for a conversation, oldest first",
)
def list_form_responses(
    request: HttpRequest, conversation_id: int = Path(..., ge=1, le=MAX_ID)
) -> dict[str, Any]:
    """Its contact form, risk assessment and surveys, each with its answers as asked in the
    version answered. Answers are what the person said: the read is audited as a
    transcript read (once per token and conversation in an hour)."""
    conversation = _conversation_read(request, conversation_id)
    items = [
        _form_response_out(item) for item in conversation_forms(conversation_id=conversation.pk)
    ]
    return {"items": items, "count": len(items)}


def _form_response_out(item: PaneForm) -> dict[str, Any]:
    response = item.response
    assert response is not None  # conversation_forms lists responses given
    return {
        "id": response.pk,
        "form_id": item.form.pk,
        "form": item.form.name,
        "version": item.version_number,
        "purpose": response.purpose,
        "channel": response.channel,
        "status": response.status,
        "risk_level": RiskLevel(response.risk_level).name.lower() if response.risk_level else None,
        "answered_by_id": response.answered_by_id,
        "created_at": response.created_at,
        "completed_at": response.completed_at,
        "answers": [
            {
                "key": row.field.key,
                "question": row.field.label,
                "values": row.values,
                "text": row.text,
            }
            for _, rows in item.sections
            for row in rows
            if row.visible and row.values
        ],
    }


# Contacts


@api.get(
    "/contacts/lookup",
    response={200: ContactOut, **ERRORS},
    tags=["contacts"],
    summary="Find a contact by phone number",
)
def lookup_contact(
    request: HttpRequest, phone: str = Query(..., description="E.164, e.g. +12025550111")
) -> dict[str, Any]:
    try:
        e164 = normalize_phone(phone)
    except InvalidPhoneNumber as exc:
        raise ApiError(400, "invalid_phone", str(exc)) from None
    contact = contact_by_phone(organization_id=organization_id(request), phone=e164)
    if contact is None:
        raise ApiError(404, "not_found", f"no contact with {e164}")
    return _contact_out(contact)


@api.get(
    "/contacts/{contact_id}",
    response={200: ContactOut, **ERRORS},
    tags=["contacts"],
    summary="Get a contact",
)
def get_contact(
    request: HttpRequest, contact_id: int = Path(..., ge=1, le=MAX_ID)
) -> dict[str, Any]:
    return _contact_out(_contact_or_404(request, contact_id))


@api.post(
    "/contacts",
    response={201: ContactOut, **ERRORS},
    tags=["contacts"],
    summary="Create a contact",
)
def create_contact(request: HttpRequest, payload: ContactIn) -> Status[dict[str, Any]]:
    _check_number_type(payload.number_type)
    try:
        contact = contact_create(
            organization_id=organization_id(request),
            phone=payload.phone,
            name=payload.name,
            number_type=payload.number_type,
            notes=payload.notes,
        )
    except InvalidPhoneNumber as exc:
        raise ApiError(400, "invalid_phone", str(exc)) from None
    except DuplicateContact as exc:
        raise ApiError(409, "duplicate", str(exc)) from None
    except ValueError as exc:
        raise ApiError(400, "invalid_number_type", str(exc)) from None
    return Status(201, _contact_out(contact))


@api.patch(
    "/contacts/{contact_id}",
    response={200: ContactOut, **ERRORS},
    tags=["contacts"],
    summary="Change a contact's name, number type or notes",
)
def update_contact(
    request: HttpRequest, payload: ContactPatch, contact_id: int = Path(..., ge=1, le=MAX_ID)
) -> dict[str, Any]:
    contact = _contact_or_404(request, contact_id)
    _check_number_type(payload.number_type)
    contact = contact_update(
        contact=contact, name=payload.name, number_type=payload.number_type, notes=payload.notes
    )
    return _contact_out(contact)


@api.post(
    "/contacts/{contact_id}/consent",
    response={200: ConsentChangeOut, **ERRORS},
    tags=["contacts"],
    summary="Record an opt-in or opt-out",
)
def record_consent(
    request: HttpRequest, payload: ConsentIn, contact_id: int = Path(..., ge=1, le=MAX_ID)
) -> dict[str, Any]:
    """`opt_in` needs `evidence` (how consent was given) and sends the welcome text when the
    number can receive it; it is refused with 409 `opted_out_by_person` for a person who
    opted out themself (by keyword, through the carrier, or in words staff confirmed),
    because only they can opt back in, and 409 `opt_out_request_pending` while a request of
    theirs to stop awaits review. `opt_out` is always recorded (evidence
    optional: an opt-out is never refused) and sends nothing."""
    contact = _contact_or_404(request, contact_id)
    org_id = contact.organization_id
    welcome: Message | None = None
    if payload.action == "opt_in":
        if not payload.evidence.strip():
            raise ApiError(400, "evidence_required", "record how consent was given (evidence)")
        try:
            welcome = consent_opt_in_with_welcome(
                organization_id=org_id,
                phone=contact.phone,
                source=ConsentSource.API,
                evidence=payload.evidence,
                api_token_id=request.auth.pk,  # type: ignore[attr-defined]
            )
        except ConsentError as exc:
            raise ApiError(409, exc.code, str(exc)) from None
        except SendRefused as exc:
            raise ApiError.from_refusal(exc) from None
    else:
        consent_record_opt_out(
            organization_id=org_id,
            phone=contact.phone,
            source=ConsentSource.API,
            evidence=payload.evidence.strip(),
            text=payload.text,
            api_token_id=request.auth.pk,  # type: ignore[attr-defined]
        )
    state = consent_state(organization_id=org_id, phone=contact.phone)
    return {**state.as_dict(), "welcome_message_id": welcome.pk if welcome else None}


# Credits


@api.get(
    "/credits",
    response={200: CreditsOut, **ERRORS},
    tags=["credits"],
    summary="The organization's credit balance",
)
def get_credits(request: HttpRequest) -> dict[str, int]:
    balance = credit_balance(organization_id=organization_id(request))
    return {"available": balance.available, "reserved": balance.reserved, "owed": balance.owed}


# Broadcasts

BROADCAST_ERRORS = {**ERRORS, 402: ErrorOut, 403: ErrorOut}
# How far ahead a broadcast may be scheduled.
MAX_SCHEDULE_AHEAD = timedelta(days=366)


def _broadcast_or_404(request: HttpRequest, broadcast_id: int) -> Broadcast:
    try:
        return broadcast_get(organization_id=organization_id(request), broadcast_id=broadcast_id)
    except Broadcast.DoesNotExist:
        raise ApiError(404, "not_found", "broadcast not found") from None


def _broadcast_out(broadcast: Broadcast, *, progress: bool = True) -> dict[str, Any]:
    out = {
        "id": broadcast.pk,
        "name": broadcast.name,
        "body": broadcast.body,
        "status": broadcast.status,
        "created_at": broadcast.created_at,
        "scheduled_for": broadcast.scheduled_for,
        "started_at": broadcast.started_at,
        "finished_at": broadcast.finished_at,
        "number_ids": sorted(number.pk for number in broadcast.numbers.all()),
        # A draft saved before every key existed reads as if it had them empty.
        "audience": {
            "everyone": broadcast.audience.get("everyone") is True,
            **{
                key: broadcast.audience.get(key) or []
                for key in ("include_tags", "exclude_tags", "add_contacts", "remove_contacts")
            },
            "filters": broadcast.audience.get("filters") or [],
        },
        "reply_mode": broadcast.reply_mode,
        "channel": broadcast.channel,
        "recording_id": broadcast.recording_id,
        "language": broadcast.language,
    }
    if progress:
        out["progress"] = broadcast_progress(broadcast_id=broadcast.pk).as_dict()
    return out


def _contacts_by_phone(org_id: int, phones: list[str]) -> list[int]:
    """The ids of the organization's contacts with ``phones``; 422 naming any phone that is
    not a phone number or not one of its contacts."""
    wanted: dict[str, str] = {}
    for raw in phones:
        try:
            wanted[normalize_phone(raw)] = raw
        except InvalidPhoneNumber as exc:
            raise ApiError(422, "invalid_phone", str(exc)) from None
    found = dict(
        Contact.objects.filter(organization_id=org_id, phone__in=wanted).values_list("phone", "pk")
    )
    missing = [raw for e164, raw in wanted.items() if e164 not in found]
    if missing:
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        shown = ", ".join(missing[:10]) + more
        raise ApiError(422, "invalid_audience", f"no contact here has these phones: {shown}")
    return sorted(set(found.values()))


def _broadcast_error(exc: BroadcastError) -> ApiError:
    status = {"forbidden": 403, "invalid_state": 409, "no_recipients": 409}.get(exc.code, 422)
    return ApiError(status, exc.code, str(exc))


@api.post(
    "/broadcasts",
    response={201: BroadcastOut, **BROADCAST_ERRORS},
    tags=["broadcasts"],
    summary="Create a broadcast (a draft)",
)
def create_broadcast(request: HttpRequest, payload: BroadcastIn) -> Status[dict[str, Any]]:
    """Say who gets it with exactly one of: `audience` (tags and people picked by hand;
    `everyone` for every contact), `contact_ids`, or `phones` (each must be a contact of
    the organization). Nothing is sent until `POST /broadcasts/{id}/send`; see who it would
    reach and what it costs first with `GET /broadcasts/{id}/preview`. Another
    organization's tag, contact or number, an unknown merge field or an unknown phone is
    422."""
    org_id = organization_id(request)
    if payload.channel == "sms" and len(payload.body) > settings.OPENLINE_MAX_BODY_CHARS:
        limit = settings.OPENLINE_MAX_BODY_CHARS
        raise ApiError(422, "invalid_body", f"the message is at most {limit} characters")
    if payload.audience is not None:
        audience = payload.audience.model_dump()
    elif payload.contact_ids is not None:
        audience = {"add_contacts": payload.contact_ids}
    else:
        audience = {"add_contacts": _contacts_by_phone(org_id, payload.phones or [])}
    try:
        broadcast = broadcast_create(
            organization_id=org_id,
            actor_id=None,
            api_token_id=request.auth.pk,  # type: ignore[attr-defined]
            name=payload.name,
            body=payload.body,
            audience=audience,
            number_ids=payload.number_ids,
            reply_mode=payload.reply_mode,
            not_monitored_text=payload.not_monitored_text,
            channel=payload.channel,
            recording_id=payload.recording_id,
            language=payload.language,
        )
    except (AudienceError, ComposeError) as exc:
        raise ApiError(422, exc.code, str(exc)) from None
    except BroadcastError as exc:
        raise _broadcast_error(exc) from None
    return Status(201, _broadcast_out(broadcast))


@api.get(
    "/broadcasts",
    response={200: BroadcastPage, **ERRORS},
    tags=["broadcasts"],
    summary="List broadcasts, newest first",
)
def list_broadcasts(
    request: HttpRequest,
    page: PageParams = Query(...),  # noqa: B008
) -> dict[str, Any]:
    """Each broadcast without its progress (read one for that)."""
    broadcasts = broadcasts_for(organization_id=organization_id(request)).prefetch_related(
        "numbers"
    )
    listed = _page(broadcasts, page)
    listed["items"] = [_broadcast_out(b, progress=False) for b in listed["items"]]
    return listed


@api.get(
    "/broadcasts/{broadcast_id}",
    response={200: BroadcastOut, **ERRORS},
    tags=["broadcasts"],
    summary="Get a broadcast and its progress",
)
def get_broadcast(
    request: HttpRequest, broadcast_id: int = Path(..., ge=1, le=MAX_ID)
) -> dict[str, Any]:
    """`progress` counts recipients by where their text is: pending (waiting for a turn
    or for their sending window), queued, sent, delivered, failed, refused, cancelled."""
    return _broadcast_out(_broadcast_or_404(request, broadcast_id))


@api.get(
    "/broadcasts/{broadcast_id}/preview",
    response={200: PreviewOut, **ERRORS},
    tags=["broadcasts"],
    summary="Who a broadcast would reach now and what it would cost",
)
def preview_broadcast(
    request: HttpRequest, broadcast_id: int = Path(..., ge=1, le=MAX_ID)
) -> dict[str, Any]:
    """Counted now: people selected, numbers it may text (opted in, textable, no opt-out
    request waiting for review), each group left out and why, segments per text, credits
    needed against those available, and recipients who wait for their sending window."""
    return broadcast_preview(broadcast=_broadcast_or_404(request, broadcast_id)).as_dict()


@api.post(
    "/recordings",
    response={201: RecordingOut, **ERRORS, 413: ErrorOut},
    tags=["broadcasts"],
    summary="Upload a recorded message for voice broadcasts",
)
def upload_recording(
    request: HttpRequest,
    file: UploadedFile = File(...),  # noqa: B008
    name: str = Form(""),  # noqa: B008
) -> Status[dict[str, Any]]:
    """A WAV or MP3 file (multipart/form-data, field `file`), at most 10 MB and 5 minutes:
    what phones can play. Use its `id` as a voice broadcast's `recording_id`. Anything
    else is 422 `invalid_recording` with the reason."""
    org_id = organization_id(request)
    if (file.size or 0) > MAX_RECORDING_BYTES:
        limit = MAX_RECORDING_BYTES // (1024 * 1024)
        raise ApiError(413, "too_large", f"the file is over {limit} MB")
    try:
        recording = recording_save(
            organization_id=org_id, actor_id=None, name=name or file.name or "", data=file.read()
        )
    except RecordingError as exc:
        raise ApiError(422, exc.code, str(exc)) from None
    return Status(
        201,
        {
            "id": recording.pk,
            "name": recording.name,
            "seconds": recording.seconds,
            "content_type": recording.content_type,
        },
    )


@api.post(
    "/broadcasts/{broadcast_id}/send",
    response={200: BroadcastOut, **BROADCAST_ERRORS},
    tags=["broadcasts"],
    summary="Send a draft now or schedule it",
)
def send_broadcast(
    request: HttpRequest,
    payload: SendIn | None = None,
    broadcast_id: int = Path(..., ge=1, le=MAX_ID),
) -> dict[str, Any]:
    """Plans every recipient and reserves the credits they need, then sends at the sender
    numbers' rates, to each person only inside the organization's sending window in their
    local time. Without enough credits it is refused with 402 `insufficient_credits` and
    stays a draft. A broadcast that is not a draft is 409 `invalid_state`; one whose
    audience has nobody who can be texted is 409 `no_recipients`."""
    broadcast = _broadcast_or_404(request, broadcast_id)
    scheduled_for = payload.scheduled_for if payload is not None else None
    if scheduled_for is not None and scheduled_for > timezone.now() + MAX_SCHEDULE_AHEAD:
        raise ApiError(422, "invalid_schedule", "schedule a broadcast at most a year ahead")
    if broadcast.status != BroadcastStatus.DRAFT:
        state = broadcast.get_status_display().lower()
        raise ApiError(409, "invalid_state", f"a {state} broadcast cannot be sent")
    try:
        broadcast = broadcast_queue(
            broadcast=broadcast,
            actor_id=None,
            api_token_id=request.auth.pk,  # type: ignore[attr-defined]
            scheduled_for=scheduled_for,
        )
    except InsufficientCredits as exc:
        detail = (
            f"sending this broadcast needs {exc.needed} credits and {exc.available} are "
            f"available: {exc.shortfall} short. Add credits, or narrow the audience."
        )
        raise ApiError(402, exc.code, detail) from None
    except CreditError as exc:
        raise ApiError(409, exc.code, str(exc)) from None
    except BroadcastError as exc:
        # Every refusal to queue is about the broadcast's state (no longer a draft, its
        # numbers deactivated, nobody left to text), not about this request.
        code = "invalid_state" if exc.code == "invalid" else exc.code
        raise ApiError(403 if code == "forbidden" else 409, code, str(exc)) from None
    return _broadcast_out(broadcast)


def _change_broadcast(
    request: HttpRequest, broadcast_id: int, change: Callable[..., Broadcast]
) -> dict[str, Any]:
    broadcast = _broadcast_or_404(request, broadcast_id)
    try:
        broadcast = change(
            broadcast=broadcast,
            actor_id=None,
            api_token_id=request.auth.pk,  # type: ignore[attr-defined]
        )
    except BroadcastError as exc:
        raise _broadcast_error(exc) from None
    return _broadcast_out(broadcast)


@api.post(
    "/broadcasts/{broadcast_id}/pause",
    response={200: BroadcastOut, **BROADCAST_ERRORS},
    tags=["broadcasts"],
    summary="Pause a sending broadcast",
)
def pause_broadcast(
    request: HttpRequest, broadcast_id: int = Path(..., ge=1, le=MAX_ID)
) -> dict[str, Any]:
    """Nobody else is texted until it is resumed; texts already handed over go on. Only a
    sending broadcast can be paused (else 409 `invalid_state`)."""
    return _change_broadcast(request, broadcast_id, broadcast_pause)


@api.post(
    "/broadcasts/{broadcast_id}/resume",
    response={200: BroadcastOut, **BROADCAST_ERRORS},
    tags=["broadcasts"],
    summary="Resume a paused broadcast",
)
def resume_broadcast(
    request: HttpRequest, broadcast_id: int = Path(..., ge=1, le=MAX_ID)
) -> dict[str, Any]:
    """Only a paused broadcast can be resumed (else 409 `invalid_state`)."""
    return _change_broadcast(request, broadcast_id, broadcast_resume)


@api.post(
    "/broadcasts/{broadcast_id}/cancel",
    response={200: BroadcastOut, **BROADCAST_ERRORS},
    tags=["broadcasts"],
    summary="Cancel a scheduled, sending or paused broadcast",
)
def cancel_broadcast(
    request: HttpRequest, broadcast_id: int = Path(..., ge=1, le=MAX_ID)
) -> dict[str, Any]:
    """Nobody still waiting gets it; texts already handed over go on. Credits not used are
    released once those finish. A draft, finished or cancelled broadcast is 409
    `invalid_state`."""
    return _change_broadcast(request, broadcast_id, broadcast_cancel)


# A message's status -> the progress bucket its recipient is counted in.
_LOG_BUCKET = {str(status): bucket for status, bucket in _MESSAGE_BUCKET.items()}


def _log_row(row: BroadcastRecipient) -> dict[str, Any]:
    message, call = row.message, row.call
    status = str(row.status)
    error = row.reason
    credits = row.credits
    if status == "queued" and call is not None:
        status = call_bucket(call.status, call.answered_by)
        if call.status in CALL_FINAL_STATUSES:  # what the billed minutes cost, not the reserve
            credits = min(credits, call.credits)
        if not error:
            error = ": ".join(part for part in (call.error_code, call.error_message) if part)
    elif status == "queued":
        # Bucketed as broadcast_progress does; a message removed by retention was sent.
        status = _LOG_BUCKET.get(message.status, "sent") if message else "sent"
        if message is not None and not error:
            error = ": ".join(part for part in (message.error_code, message.error_message) if part)
    return {
        "contact_id": row.contact_id,
        "phone": row.phone,
        "number": row.number.e164,
        "message_id": row.message_id,
        "queued_at": row.queued_at,
        "status": status,
        "segments": row.segments,
        "credits": credits,
        "error": error,
        "call_id": row.call_id,
        "duration": call.duration if call else 0,
        "pressed_9": bool(call and call.opted_out),
    }


@api.get(
    "/broadcasts/{broadcast_id}/messages",
    response={200: BroadcastMessagePage, **ERRORS},
    tags=["broadcasts"],
    summary="A broadcast's per-recipient log",
)
def list_broadcast_messages(
    request: HttpRequest,
    broadcast_id: int = Path(..., ge=1, le=MAX_ID),
    filters: LogFilters = Query(...),  # noqa: B008
    page: PageParams = Query(...),  # noqa: B008
) -> dict[str, Any]:
    """One row per recipient, in the order they were planned: the sender number, when it
    was handed to the send service, where it is now (`status`, the progress buckets),
    segments and credits, and why it was not sent or delivered. Never the text itself
    (read a conversation for that)."""
    broadcast = _broadcast_or_404(request, broadcast_id)
    rows = _page(broadcast_log(broadcast_id=broadcast.pk, status=filters.status or ""), page)
    rows["items"] = [_log_row(row) for row in rows["items"]]
    return rows
