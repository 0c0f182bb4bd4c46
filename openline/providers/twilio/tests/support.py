"""Helpers for tests that talk to the real ASGI app as Twilio would."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from django.conf import settings
from twilio.request_validator import RequestValidator

from openline.providers.services import number_add
from openline.providers.twilio.tests.fake import FakeTwilio, Poster, WebhookAnswer

TWILIO_E164 = "+12025550177"
SEEKER = "+12025550123"


def message_sid() -> str:
    return "SM" + secrets.token_hex(16)


def asgi_request(
    method: str,
    path: str,
    *,
    data: Mapping[str, str] | None = None,
    content: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """One request through ``openline.asgi.application`` (intake router + Django)."""
    from openline.asgi import application

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.request(
                method, path, data=data, content=content, headers=dict(headers or {})
            )
        from openline.core import realtime

        await realtime.flush()  # the loop ends next: let its publishes finish first
        return response

    return asyncio.run(go())


def twilio_signature(token: str, path: str, params: Mapping[str, Any], *, base: str = "") -> str:
    """X-Twilio-Signature for a POST of ``params`` to ``base + path`` (default: PUBLIC_URL)."""
    url = (base or settings.PUBLIC_URL) + path
    return RequestValidator(token).compute_signature(url, dict(params))


def inbound_params(
    *, body: str = "hello, is anyone there?", sid: str | None = None, **fields: str
) -> dict[str, str]:
    """The form Twilio posts for an inbound SMS (the documented fields we rely on)."""
    params = {
        "ToCountry": "US",
        "SmsMessageSid": "",
        "NumMedia": "0",
        "SmsSid": "",
        "SmsStatus": "received",
        "Body": body,
        "To": TWILIO_E164,
        "NumSegments": "1",
        "MessageSid": sid or message_sid(),
        "AccountSid": "AC" + "0" * 32,
        "From": SEEKER,
        "ApiVersion": "2010-04-01",
    }
    params["SmsMessageSid"] = params["SmsSid"] = params["MessageSid"]
    params.update(fields)
    return params


def post_signed(
    path: str, params: Mapping[str, str], token: str, *, base: str = ""
) -> httpx.Response:
    signature = twilio_signature(token, path, params, base=base)
    return asgi_request("POST", path, data=params, headers={"X-Twilio-Signature": signature})


def asgi_poster(url: str, params: dict[str, str], headers: dict[str, str]) -> int:
    """A ``post`` for FakeTwilio.deliver_status that goes through the ASGI app: the URL's
    path is kept (the signature covers PUBLIC_URL + path, as intake rebuilds it)."""
    if not url.startswith(settings.PUBLIC_URL):
        raise AssertionError(f"callback {url} is not under PUBLIC_URL")
    path = url[len(settings.PUBLIC_URL) :]
    return asgi_request("POST", path, data=params, headers=headers).status_code


def client_poster(client: Any) -> Poster:
    """A ``post`` for the fake's call driving (call_progress, call_answer, call_press) that
    goes through Django's test ``client``: the URL's path and query are kept (the signature
    covers PUBLIC_URL + path + query, as the voice views rebuild it)."""

    def post(url: str, params: dict[str, str], headers: dict[str, str]) -> WebhookAnswer:
        if not url.startswith(settings.PUBLIC_URL + "/"):
            raise AssertionError(f"webhook {url} is not under PUBLIC_URL")
        response = client.post(
            url[len(settings.PUBLIC_URL) :],
            urlencode(params),
            content_type="application/x-www-form-urlencoded",
            headers={k: v for k, v in headers.items() if k.lower() != "content-type"},
        )
        return WebhookAnswer(
            response.status_code, response.headers.get("Content-Type", ""), response.content
        )

    return post


# Fixtures for every test that talks to Twilio (registered in the root conftest.py).
@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    """A local server speaking Twilio's Messages API."""
    with FakeTwilio() as server:
        yield server


@pytest.fixture
def number(org: Any, fake: FakeTwilio) -> Any:
    """A Twilio number of ``org`` whose API base is the fake server."""
    return number_add(
        organization=org,
        provider="twilio",
        e164=TWILIO_E164,
        config=fake.config(),
        segments_per_second=1000,
    )
