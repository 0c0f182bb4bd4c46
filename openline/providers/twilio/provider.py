"""Twilio Programmable Messaging: inbound webhooks, status callbacks and the Messages API.

`api_base` is configurable per number so tests run against a local fake Twilio."""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

import httpx
from twilio.request_validator import RequestValidator, get_signature_algorithm

from openline.providers.base import (
    InboundMessage,
    Provider,
    ProviderError,
    SendResult,
    SignatureError,
    StatusUpdate,
    WebhookError,
    WebhookRequest,
)

if TYPE_CHECKING:
    from openline.providers.models import Number

DEFAULT_API_BASE = "https://api.twilio.com"
MESSAGE_SID = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}$")
EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

# Twilio statuses onto OpenLine's forward-only set.
STATUS_MAP = {
    "accepted": "queued",
    "scheduled": "queued",
    "queued": "queued",
    "sending": "sending",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "partially_delivered": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
    "canceled": "failed",
}
OPTED_OUT_CODES = frozenset({"21610"})
# Errors that say nothing about the message itself: try again later.
TRANSIENT_CODES = frozenset({"20429", "20500", "20503"})


class _Params:
    """The request validator wants a multi-dict, and repeated names must all count. It
    tries ``getall`` first (and ``getlist`` after an AttributeError): offering ``getall``
    saves an exception per field on every webhook."""

    def __init__(self, params: Mapping[str, list[str]]) -> None:
        self._params = params

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._params)

    def getall(self, name: str) -> list[str]:
        return self._params[name]

    getlist = getall


def _one(params: Mapping[str, list[str]], name: str, *, required: bool = True) -> str:
    values = params.get(name)
    if not values:
        if required:
            raise WebhookError(f"missing field {name}")
        return ""
    return values[0]


class TwilioProvider(Provider):
    slug = "twilio"
    name = "Twilio"
    config_keys: ClassVar[tuple[str, ...]] = ("account_sid", "auth_token", "api_base")
    secret_keys: ClassVar[tuple[str, ...]] = ("auth_token",)

    def __init__(self) -> None:
        self._client = httpx.Client(timeout=httpx.Timeout(10.0, connect=5.0))

    def validate_config(self, config: Mapping[str, str]) -> dict[str, str]:
        clean = super().validate_config(config)
        for key in ("account_sid", "auth_token"):
            if not clean.get(key):
                raise ValueError(f"twilio numbers need --config {key}=...")
        if not re.fullmatch(r"AC[0-9a-fA-F]{32}", clean["account_sid"]):
            raise ValueError("account_sid looks like AC followed by 32 hex digits")
        return clean

    # --- webhooks ------------------------------------------------------------------------

    def verify(self, number: Number, request: WebhookRequest) -> None:
        signature = request.headers.get("x-twilio-signature", "")
        if not signature:
            raise SignatureError("missing X-Twilio-Signature header")
        token = number.config.get("auth_token", "")
        algorithm = get_signature_algorithm(
            request.headers.get("x-twilio-webhooks-signature-settings", "")
        )
        if not token:
            raise SignatureError("this number has no auth_token configured")
        validator = RequestValidator(token)
        params = _Params(request.params)
        # The URL as configured is what Twilio signs in practice: one HMAC. The SDK's full
        # check (URL with and without the default port) runs only when that differs.
        expected = validator.compute_signature(request.url, params, algorithm=algorithm)
        if hmac.compare_digest(expected, signature):
            return
        if not validator.validate(request.url, params, signature, algorithm=algorithm):
            raise SignatureError("X-Twilio-Signature does not match this request")

    def parse_inbound(self, request: WebhookRequest) -> InboundMessage:
        params = request.params
        sid = _one(params, "MessageSid")
        if not MESSAGE_SID.match(sid):
            raise WebhookError("MessageSid is not a Twilio message id")
        media = tuple(
            _one(params, f"MediaUrl{i}", required=False)
            for i in range(min(_int(params, "NumMedia"), 10))
        )
        return InboundMessage(
            provider_message_id=sid,
            from_number=_one(params, "From"),
            to_number=_one(params, "To"),
            body=_one(params, "Body", required=False),
            media_urls=tuple(url for url in media if url),
        )

    def parse_status(self, request: WebhookRequest) -> list[StatusUpdate]:
        params = request.params
        sid = _one(params, "MessageSid")
        raw = _one(params, "MessageStatus").lower()
        if raw not in STATUS_MAP:
            raise WebhookError(f"unknown MessageStatus {raw!r}")
        code = _one(params, "ErrorCode", required=False)
        return [
            StatusUpdate(
                provider_message_id=sid,
                status=STATUS_MAP[raw],
                error_code=code,
                opted_out=code in OPTED_OUT_CODES,
            )
        ]

    def inbound_ack(self) -> tuple[str, bytes]:
        return "text/xml", EMPTY_TWIML

    # --- REST API ------------------------------------------------------------------------

    def _messages_url(self, number: Number) -> str:
        base = (number.config.get("api_base") or DEFAULT_API_BASE).rstrip("/")
        return f"{base}/2010-04-01/Accounts/{number.config['account_sid']}/Messages"

    def _auth(self, number: Number) -> tuple[str, str]:
        return number.config["account_sid"], number.config["auth_token"]

    def send(
        self, number: Number, *, to: str, body: str, status_url: str, idempotency_key: str
    ) -> SendResult:
        data = {"To": to, "From": number.e164, "Body": body, "StatusCallback": status_url}
        # Twilio honours I-Twilio-Idempotency-Token on its API for safe retries.
        headers = {"I-Twilio-Idempotency-Token": idempotency_key}
        try:
            response = self._client.post(
                self._messages_url(number) + ".json",
                data=data,
                auth=self._auth(number),
                headers=headers,
            )
        except httpx.TimeoutException as exc:
            raise ProviderError("Twilio did not answer in time", code="timeout") from exc
        except httpx.HTTPError as exc:
            raise ProviderError(f"could not reach Twilio: {exc}", code="network") from exc
        payload = _json(response)
        if response.status_code in (200, 201):
            sid = str(payload.get("sid", ""))
            if not MESSAGE_SID.match(sid):
                raise ProviderError("Twilio answered without a message id", code="bad_response")
            return SendResult(
                provider_message_id=sid,
                status=STATUS_MAP.get(str(payload.get("status", "")), "queued"),
            )
        raise _error(response, payload)

    def fetch_status(self, number: Number, provider_message_id: str) -> str | None:
        try:
            response = self._client.get(
                f"{self._messages_url(number)}/{provider_message_id}.json",
                auth=self._auth(number),
            )
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        return STATUS_MAP.get(str(_json(response).get("status", "")))


def _int(params: Mapping[str, list[str]], name: str) -> int:
    raw = _one(params, name, required=False)
    return int(raw) if raw.isascii() and raw.isdigit() else 0


def _json(response: httpx.Response) -> dict[str, object]:
    try:
        payload = response.json()
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _error(response: httpx.Response, payload: dict[str, object]) -> ProviderError:
    code = str(payload.get("code", "") or response.status_code)
    message = str(payload.get("message", "") or f"Twilio answered HTTP {response.status_code}")
    status = response.status_code
    retry_after = response.headers.get("retry-after", "")
    if code in OPTED_OUT_CODES:
        return ProviderError(message, code=code, opted_out=True)
    if status == 429 or status >= 500 or code in TRANSIENT_CODES:
        return ProviderError(
            message,
            code=code,
            retry_after=float(retry_after) if retry_after.isdigit() else None,
        )
    return ProviderError(message, code=code, permanent=True)
