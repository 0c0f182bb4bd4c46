"""The phone simulator: a signed-in member of an organization texts one of its sandbox
numbers as a help seeker would, and sees what the simulated carrier delivered back. Calls
the sandbox places to the phone shown (voice broadcasts) ring on the page, which can answer
them (hearing the recording or the text read aloud, pressing keys), hang up or decline,
each through the simulated carrier's own callbacks (sandbox.tasks).

It lives in the runtime, beside the demo set-up, because it is the other end of the wire:
its send is a POST to the intake endpoint (``runtime.intake``) and its thread reads what
intake stored (``messaging.InboundEvent``); the sandbox provider below it is only the carrier.

Every page and endpoint here needs a member of the organization that owns the number;
anyone else is told there is no such number (an outsider learns nothing about another
organization's numbers). A text is handed to the real intake endpoint in this process with
the number's phone token, so it takes exactly the path a carrier's would, and the token
never reaches the browser: only a signed-in member can send through a number."""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any, Concatenate
from urllib.parse import urlencode, urlsplit

from asgiref.sync import async_to_sync
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from openline.contacts.phones import InvalidPhoneNumber, format_phone, normalize_phone
from openline.core.models import Organization
from openline.core.web import OrgView, P, console_view
from openline.messaging.models import InboundEvent
from openline.providers.models import Number
from openline.providers.sandbox.models import SandboxCall, SandboxMessage
from openline.providers.sandbox.provider import phone_token
from openline.providers.sandbox.tasks import (
    sandbox_call_answer,
    sandbox_call_end,
    sandbox_call_keypress,
)
from openline.runtime.intake import HOOK_PATH, handle_hook

THREAD_LIMIT = 200
NOT_YOURS = "There is no sandbox number of your organization at this address."
NO_CALL = "There is no such call to this phone."
CALL_ENDED = "This call has already ended."
NOT_RINGING = "This call is no longer ringing."
# What the page shows: calls ringing on the phone, and one it answered (after a reload).
LIVE_CALLS = ("ringing", "in-progress")
KEYS = frozenset("0123456789*#")


def member_json(
    view: OrgView[P],
) -> Callable[Concatenate[HttpRequest, P], HttpResponseBase]:
    """``console_view`` for the page's fetch calls: a JSON error they can show instead of a
    login page they would try to read as JSON."""

    @wraps(view)
    def wrapped(request: HttpRequest, /, *args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
        if not request.user.is_authenticated:
            error = "You are signed out. Sign in again, then reload this page to keep texting."
            return JsonResponse({"error": error}, status=401)
        organization: Organization | None = getattr(request, "organization", None)
        if organization is None:
            error = "Your account is not a member of any organization."
            return JsonResponse({"error": error}, status=403)
        return view(request, organization, *args, **kwargs)

    return wrapped


def _sandbox_number(organization: Organization, webhook_key: str) -> Number | None:
    return Number.objects.filter(
        organization=organization, webhook_key=webhook_key, provider="sandbox", is_active=True
    ).first()


def random_phone(*, avoid: str = "") -> str:
    """A valid US number in the fictional 202-555-01xx range."""
    while True:
        phone = f"+120255501{secrets.randbelow(100):02d}"
        if phone != avoid:
            return phone


@require_GET
@console_view
def phone_list(request: HttpRequest, organization: Organization) -> HttpResponse:
    numbers = Number.objects.filter(organization=organization, provider="sandbox").order_by("e164")
    return render(request, "sandbox/phone_list.html", {"numbers": numbers})


@never_cache
@require_GET
@console_view
def phone(request: HttpRequest, organization: Organization, webhook_key: str) -> HttpResponse:
    number = _sandbox_number(organization, webhook_key)
    if number is None:
        raise Http404(NOT_YOURS)
    try:
        initial = normalize_phone(request.GET.get("phone", ""))
    except InvalidPhoneNumber:
        initial = ""
    context = {
        "number": number,
        "number_display": format_phone(number.e164),
        "config": {
            "to": number.e164,
            "sendUrl": reverse("sandbox:send", args=[number.webhook_key]),
            "threadUrl": reverse("sandbox:thread", args=[number.webhook_key]),
            "callsUrl": reverse("sandbox:calls", args=[number.webhook_key]),
            "csrfToken": get_token(request),
            "initialPhone": initial,
            "defaultPhone": random_phone(avoid=number.e164),
            "storageKey": f"openline-sandbox-phone:{number.pk}",
        },
    }
    context["keypad"] = "123456789*0#"
    response = render(request, "sandbox/phone.html", context)
    response["Referrer-Policy"] = "no-referrer"  # the address names the number
    return response


@require_POST
@member_json
def send(request: HttpRequest, organization: Organization, webhook_key: str) -> JsonResponse:
    """Text the number as the phone in ``From``; intake's answer, its refusals included
    ("invalid From number", a body over the limit), goes back to the page as is."""
    number = _sandbox_number(organization, webhook_key)
    if number is None:
        return JsonResponse({"error": NOT_YOURS}, status=404)
    fields = {
        "From": request.POST.get("From", ""),
        "To": number.e164,
        "Body": request.POST.get("Body", ""),
        "MessageId": request.POST.get("MessageId", ""),
    }
    status, text = async_to_sync(_post_to_intake)(number, urlencode(fields).encode())
    if status == 200:
        return JsonResponse({"sent": True})
    return JsonResponse({"error": text or "intake refused the text"}, status=status)


async def _post_to_intake(number: Number, body: bytes) -> tuple[int, str]:
    """One POST to the number's intake endpoint, as the simulated carrier, without the HTTP
    hop: intake's own handler verifies the token, checks and stores the text."""
    path = f"/hooks/sandbox/{number.webhook_key}/inbound"
    match = HOOK_PATH.match(path)
    assert match is not None, path  # webhook keys are made to fit the route
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "query_string": b"",
        "headers": [
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(len(body)).encode()),
            (b"x-sandbox-token", phone_token(number).encode()),
        ],
    }
    answer: dict[str, Any] = {"status": 503, "body": b""}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def respond(message: Any) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        else:
            answer["body"] += message.get("body", b"")

    await handle_hook(scope, receive, respond, match)
    return answer["status"], answer["body"].decode("utf-8", "replace")


@never_cache
@require_GET
@member_json
def thread(request: HttpRequest, organization: Organization, webhook_key: str) -> JsonResponse:
    found = _number_and_phone(request, organization, webhook_key)
    if isinstance(found, JsonResponse):
        return found
    number, phone_e164 = found
    return JsonResponse(
        {
            "number": number.e164,
            "phone": phone_e164,
            "messages": thread_messages(number=number, phone=phone_e164),
        }
    )


def _number_and_phone(
    request: HttpRequest, organization: Organization, webhook_key: str
) -> tuple[Number, str] | JsonResponse:
    """The member's sandbox number at ``webhook_key`` and the simulated phone (``phone``,
    E.164), or the JSON error the page shows."""
    number = _sandbox_number(organization, webhook_key)
    if number is None:
        return JsonResponse({"error": NOT_YOURS}, status=404)
    try:
        return number, normalize_phone(request.GET.get("phone", ""))
    except InvalidPhoneNumber as exc:
        return JsonResponse({"error": f"invalid phone: {exc}"}, status=400)


def thread_messages(*, number: Number, phone: str) -> list[dict[str, Any]]:
    """The simulated phone's view of its thread with ``number``, oldest first: what it
    sent (accepted by intake) and what the simulated carrier delivered to it."""
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


# --- calls -------------------------------------------------------------------------------


@never_cache
@require_GET
@member_json
def calls(request: HttpRequest, organization: Organization, webhook_key: str) -> JsonResponse:
    """Calls from the number ringing on (or answered by) the phone ``phone``, oldest first."""
    found = _number_and_phone(request, organization, webhook_key)
    if isinstance(found, JsonResponse):
        return found
    number, phone_e164 = found
    live = SandboxCall.objects.filter(number=number, to=phone_e164, status__in=LIVE_CALLS)
    return JsonResponse(
        {
            "calls": [
                {
                    "id": call.pk,
                    "from": number.e164,
                    "fromDisplay": format_phone(number.e164),
                    "status": call.status,
                    "urls": _call_urls(number, call),
                }
                for call in live.order_by("created_at", "pk")[:5]
            ]
        }
    )


def _call_urls(number: Number, call: SandboxCall) -> dict[str, str]:
    """Where the page posts each action (with the call's id in ``call``)."""
    return {
        action: reverse("sandbox:call", args=[number.webhook_key, action])
        for action in CALL_ACTIONS
    }


@require_POST
@member_json
def call_action(
    request: HttpRequest, organization: Organization, webhook_key: str, action: str
) -> JsonResponse:
    """A POST about one call (``call``) of one of the member's sandbox numbers; anything
    else is not found, the same for another organization's call as for none."""
    number = _sandbox_number(organization, webhook_key)
    if number is None:
        return JsonResponse({"error": NOT_YOURS}, status=404)
    handler = CALL_ACTIONS.get(action)
    call_id = request.POST.get("call", "")
    found = (
        SandboxCall.objects.select_related("number").filter(number=number, pk=call_id).first()
        if call_id.isascii() and call_id.isdigit() and len(call_id) <= 18
        else None
    )
    if handler is None or found is None:
        return JsonResponse({"error": NO_CALL}, status=404)
    return handler(request, found)


def _claim(call: SandboxCall, was: str, now: str) -> bool:
    """Move the simulated call from ``was`` to ``now`` unless something else did first
    (the carrier ending an unanswered call, a second tab)."""
    return bool(SandboxCall.objects.filter(pk=call.pk, status=was).update(status=now))


def _seconds_on_call(call: SandboxCall) -> int:
    """Since it was answered, in whole seconds (at least one), within its time limit."""
    answered = call.answered_at or timezone.now()
    seconds = math.ceil((timezone.now() - answered).total_seconds())
    return min(max(seconds, 1), call.time_limit)


def _answer(request: HttpRequest, call: SandboxCall) -> JsonResponse:
    """Answer as a person: what the call plays (a recording's address on this server, or
    the text to read and its language) and its "press 9" prompt."""
    if not _claim(call, "ringing", "in-progress"):
        return JsonResponse({"error": NOT_RINGING}, status=409)
    script = sandbox_call_answer(call, "human")
    if script is None:  # OpenLine had already ended it: nothing to play
        SandboxCall.objects.filter(pk=call.pk).update(status="completed")
        return JsonResponse({"hangup": True, "say": "", "opt_out_prompt": ""})
    play_url = urlsplit(script.play_url).path if script.play_url else ""
    return JsonResponse(
        {
            "hangup": False,
            "play_url": play_url,
            "say": script.say,
            "language": script.language,
            "opt_out_prompt": script.opt_out_prompt,
            "seconds": script.seconds,
            "time_limit": call.time_limit,
        }
    )


def _keypress(request: HttpRequest, call: SandboxCall) -> JsonResponse:
    """A key pressed during the call: 9 puts the phone on the do-not-call list, and the
    call says goodbye and ends."""
    digits = request.POST.get("digits", "")
    if not digits or not set(digits) <= KEYS or len(digits) > 10:
        return JsonResponse({"error": "Press 0-9, * or #."}, status=400)
    if call.status != "in-progress":
        return JsonResponse({"error": CALL_ENDED}, status=409)
    goodbye = sandbox_call_keypress(call, digits)
    if not goodbye:  # any other key: the message plays again, as on a real call
        return JsonResponse({"hangup": False, "say": "", "replay": True})
    if _claim(call, "in-progress", "completed"):
        sandbox_call_end(call, "completed", duration=_seconds_on_call(call), by="human")
    return JsonResponse({"hangup": True, "say": goodbye})


def _hangup(request: HttpRequest, call: SandboxCall) -> JsonResponse:
    if not _claim(call, "in-progress", "completed"):
        return JsonResponse({"error": CALL_ENDED}, status=409)
    seconds = _seconds_on_call(call)
    sandbox_call_end(call, "completed", duration=seconds, by="human")
    return JsonResponse({"ended": True, "duration": seconds})


def _decline(request: HttpRequest, call: SandboxCall) -> JsonResponse:
    """Declined while ringing: the carrier reports the line busy."""
    if not _claim(call, "ringing", "busy"):
        return JsonResponse({"error": NOT_RINGING}, status=409)
    sandbox_call_end(call, "busy")
    return JsonResponse({"ended": True})


CallView = Callable[[HttpRequest, SandboxCall], JsonResponse]
CALL_ACTIONS: dict[str, CallView] = {
    "answer": _answer,
    "keypress": _keypress,
    "hangup": _hangup,
    "decline": _decline,
}
