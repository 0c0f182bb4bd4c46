"""The phone simulator: a trainer lists the organization's sandbox numbers, and anyone with
a number's (unguessable) simulator link can play a help seeker texting it.

The page posts texts to the real intake endpoint (/hooks/sandbox/<key>/inbound) with the
number's phone token, so a simulated text takes exactly the path a carrier's would."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from openline.contacts.phones import InvalidPhoneNumber, format_phone, normalize_phone
from openline.providers.models import Number
from openline.providers.sandbox.models import SandboxMessage
from openline.providers.sandbox.provider import phone_token

THREAD_LIMIT = 200


def _sandbox_number(webhook_key: str) -> Number:
    number = Number.objects.filter(
        webhook_key=webhook_key, provider="sandbox", is_active=True
    ).first()
    if number is None:
        raise Http404("no sandbox number at this address")
    return number


def random_phone(*, avoid: str = "") -> str:
    """A valid US number in the fictional 202-555-01xx range."""
    while True:
        phone = f"+120255501{secrets.randbelow(100):02d}"
        if phone != avoid:
            return phone


@login_required
@require_GET
def phone_list(request: HttpRequest) -> HttpResponse:
    organization = getattr(request, "organization", None)
    numbers = (
        Number.objects.filter(organization=organization, provider="sandbox").order_by("e164")
        if organization is not None
        else Number.objects.none()
    )
    return render(request, "sandbox/phone_list.html", {"numbers": numbers})


@never_cache
@require_GET
def phone(request: HttpRequest, webhook_key: str) -> HttpResponse:
    number = _sandbox_number(webhook_key)
    try:
        initial = normalize_phone(request.GET.get("phone", ""))
    except InvalidPhoneNumber:
        initial = ""
    context = {
        "number": number,
        "number_display": format_phone(number.e164),
        "config": {
            "to": number.e164,
            "token": phone_token(number),
            "inboundUrl": f"/hooks/sandbox/{number.webhook_key}/inbound",
            "threadUrl": reverse("sandbox:thread", args=[number.webhook_key]),
            "initialPhone": initial,
            "defaultPhone": random_phone(avoid=number.e164),
            "storageKey": f"openline-sandbox-phone:{number.pk}",
        },
    }
    response = render(request, "sandbox/phone.html", context)
    # The URL is the credential: keep it out of Referer headers.
    response["Referrer-Policy"] = "no-referrer"
    return response


@never_cache
@require_GET
def thread(request: HttpRequest, webhook_key: str) -> JsonResponse:
    number = _sandbox_number(webhook_key)
    try:
        phone_e164 = normalize_phone(request.GET.get("phone", ""))
    except InvalidPhoneNumber as exc:
        return JsonResponse({"error": f"invalid phone: {exc}"}, status=400)
    return JsonResponse(
        {
            "number": number.e164,
            "phone": phone_e164,
            "messages": thread_messages(number=number, phone=phone_e164),
        }
    )


def thread_messages(*, number: Number, phone: str) -> list[dict[str, Any]]:
    """The simulated phone's view of its thread with ``number``, oldest first: what it
    sent (accepted by intake) and what the simulated carrier delivered to it."""
    from openline.messaging.models import InboundEvent

    sent = InboundEvent.objects.filter(number=number, from_number=phone).order_by("-id")
    received = SandboxMessage.objects.filter(number=number, to=phone).order_by("-id")
    items = [
        _item(f"in-{e.pk}", "sent", e.body, e.received_at, _sent_status(e.processed_at))
        for e in sent.only("body", "received_at", "processed_at")[:THREAD_LIMIT]
    ] + [
        _item(f"out-{m.pk}", "received", m.body, m.created_at, m.status)
        for m in received.only("body", "created_at", "status")[:THREAD_LIMIT]
    ]
    items.sort(key=lambda item: (item[0], item[1]["id"]))
    return [item for _, item in items[-THREAD_LIMIT:]]


def _sent_status(processed_at: datetime | None) -> str:
    return "delivered" if processed_at is not None else "sent"


def _item(
    item_id: str, direction: str, body: str, at: datetime, status: str
) -> tuple[datetime, dict[str, Any]]:
    data = {"id": item_id, "direction": direction, "body": body, "at": at.isoformat()}
    return at, {**data, "status": status}
