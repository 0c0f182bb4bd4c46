"""The provider's voice callbacks: what to play when a call is answered, a key pressed
during it, its statuses. Few and small (one of each per call), so plain Django views, not
the lean intake that texts take; each is signed like a text webhook and checked by the
number's provider adapter."""

from __future__ import annotations

from urllib.parse import parse_qs

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from openline.messaging.services.calls import (
    call_answer,
    call_keypress,
    call_replay,
    call_status_apply,
)
from openline.providers.base import Provider, SignatureError, WebhookError, WebhookRequest
from openline.providers.models import Number
from openline.providers.registry import get_provider

MAX_BODY = 64 * 1024


def _text(status: int, message: str) -> HttpResponse:
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


def _checked(
    request: HttpRequest, provider_slug: str, webhook_key: str
) -> tuple[Number, Provider, WebhookRequest, int] | HttpResponse:
    raw = request.body
    if len(raw) > MAX_BODY:
        return _text(413, "request body too large")
    number = Number.objects.filter(webhook_key=webhook_key, provider=provider_slug).first()
    if number is None:
        return _text(404, "unknown webhook address")
    try:
        provider = get_provider(provider_slug)
    except LookupError:
        return _text(404, "unknown provider")
    try:
        params = parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=200)
    except (UnicodeDecodeError, ValueError) as exc:
        return _text(400, f"malformed form body: {exc}")
    url = settings.PUBLIC_URL + request.get_full_path()
    headers = {name.lower(): value for name, value in request.headers.items()}
    hook = WebhookRequest(url=url, params=params, headers=headers, raw_body=raw)
    try:
        provider.verify(number, hook)
    except SignatureError as exc:
        return _text(403, str(exc) or "invalid signature")
    call_id = request.GET.get("call", "")
    if not (call_id.isascii() and call_id.isdigit()) or len(call_id) > 18:
        return _text(400, "missing or invalid call id")
    return number, provider, hook, int(call_id)


@csrf_exempt
@require_POST
def voice_hook(
    request: HttpRequest, provider_slug: str, webhook_key: str, action: str
) -> HttpResponse:
    checked = _checked(request, provider_slug, webhook_key)
    if isinstance(checked, HttpResponse):
        return checked
    number, provider, hook, call_id = checked
    try:
        if action == "status":
            update = provider.parse_call_status(hook)
            found = call_status_apply(number=number, call_id=call_id, update=update)
            return _text(200, "") if found else _text(404, "unknown call")
        if action == "answer":
            provider_call_id, answered_by = provider.parse_answer(hook)
            script = call_answer(
                number=number,
                call_id=call_id,
                provider_call_id=provider_call_id,
                answered_by=answered_by,
            )
            keypress = hook.url.replace("/answer?", "/keypress?", 1)
            content_type, body = provider.call_document(script, keypress_url=keypress)
            return HttpResponse(body, content_type=content_type)
        provider_call_id, digits = provider.parse_keypress(hook)
        goodbye = call_keypress(
            number=number, call_id=call_id, provider_call_id=provider_call_id, digits=digits
        )
        # Any other key: the message again (still listening for 9), not a hang-up.
        script = None if goodbye else call_replay(number=number, call_id=call_id)
        keypress = hook.url
        content_type, body = provider.call_document(script, keypress_url=keypress, goodbye=goodbye)
        return HttpResponse(body, content_type=content_type)
    except (WebhookError, ValueError) as exc:
        return _text(400, str(exc))
