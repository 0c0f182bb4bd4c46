"""The REST API (django-ninja), mounted at /api/v1/. Every request carries an organization's
token, and every query is scoped to that organization. Endpoints stay thin: validate, call
one service or selector, map its errors to a 4xx answer."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import NinjaAPI, Path, Query, Status

from openline.api.auth import OrganizationToken, organization_id
from openline.api.errors import ApiError, install_error_handlers
from openline.api.schemas import (
    MAX_ID,
    ConsentChangeOut,
    ConsentIn,
    ContactIn,
    ContactOut,
    ContactPatch,
    ConversationFilters,
    ConversationPage,
    CreditsOut,
    ErrorOut,
    MessageIn,
    MessagePage,
    MessageSentOut,
    PageParams,
)
from openline.billing.services import credit_balance
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
from openline.messaging.models import Conversation, Message, MessageKind
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
    return _page(conversation_messages(conversation=conversation), page)


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
    return {"available": balance.available, "reserved": balance.reserved}
