"""The Twilio adapter on its own: parsing recorded webhooks, and the REST client against
the fake Twilio (error classification drives retries and opt-outs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from openline.providers.base import ProviderError, SignatureError, WebhookRequest
from openline.providers.registry import get_provider
from openline.providers.twilio.fake import FakeTwilio
from openline.providers.twilio.tests.support import TWILIO_E164, twilio_signature

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
URL = "https://sms.example.org/hooks/twilio/key/inbound"


def _fixture_form(name: str) -> dict[str, list[str]]:
    return parse_qs((FIXTURES / name).read_text().strip(), keep_blank_values=True)


@pytest.fixture
def twilio() -> Any:
    return get_provider("twilio")


def test_recorded_inbound_webhook_parses_to_one_message(twilio: Any) -> None:
    params = _fixture_form("inbound_sms.txt")
    inbound = twilio.parse_inbound(WebhookRequest(url=URL, params=params, headers={}))
    assert inbound.provider_message_id == "SM4d2a0b6e1c9f43e28a4c9e7b1f0d3a52"
    assert (inbound.from_number, inbound.to_number) == ("+12025550123", TWILIO_E164)
    assert inbound.body == "Hi I don't know who else to talk to 😞"
    assert inbound.media_urls == ()


def test_recorded_21610_status_callback_reports_an_opt_out(twilio: Any) -> None:
    params = _fixture_form("status_undelivered_21610.txt")
    [update] = twilio.parse_status(WebhookRequest(url=URL, params=params, headers={}))
    assert (update.status, update.error_code, update.opted_out) == ("undelivered", "21610", True)


@pytest.mark.django_db
def test_verify_accepts_twilios_signature_and_nothing_else(
    twilio: Any, number: Any, fake: FakeTwilio
) -> None:
    params = _fixture_form("inbound_sms.txt")
    flat = {k: v[0] for k, v in params.items()}
    good = twilio_signature(fake.auth_token, "", flat, base=URL)
    twilio.verify(
        number, WebhookRequest(url=URL, params=params, headers={"x-twilio-signature": good})
    )
    for headers in ({}, {"x-twilio-signature": good[:-2] + "=="}):
        with pytest.raises(SignatureError):
            twilio.verify(number, WebhookRequest(url=URL, params=params, headers=headers))
    with pytest.raises(SignatureError):
        twilio.verify(
            number,
            WebhookRequest(url=URL + "/", params=params, headers={"x-twilio-signature": good}),
        )


@pytest.mark.django_db
def test_send_returns_twilios_sid_and_fetch_status_follows_callbacks(
    twilio: Any, number: Any, fake: FakeTwilio
) -> None:
    result = twilio.send(
        number, to="+12025550123", body="hi", status_url="https://x/status", idempotency_key="k1"
    )
    assert result.provider_message_id in fake.messages
    assert result.status == "queued"
    assert twilio.fetch_status(number, result.provider_message_id) == "queued"
    fake.status_callback(result.provider_message_id, "delivered")  # Twilio's state moves on
    assert twilio.fetch_status(number, result.provider_message_id) == "delivered"
    assert twilio.fetch_status(number, "SM" + "0" * 32) is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "code", "permanent", "opted_out", "retry_after"),
    [
        ("server_error", "20500", False, False, None),
        ("unavailable", "20503", False, False, None),
        ("rate_limited", "20429", False, False, 1.0),
        ("invalid_to", "21211", True, False, None),
        ("opted_out", "21610", True, True, None),
    ],
)
def test_twilio_errors_are_classified_for_retry_and_consent(
    twilio: Any,
    number: Any,
    fake: FakeTwilio,
    kind: str,
    code: str,
    permanent: bool,
    opted_out: bool,
    retry_after: float | None,
) -> None:
    fake.fail_next(kind)
    with pytest.raises(ProviderError) as raised:
        twilio.send(number, to="+12025550123", body="hi", status_url="", idempotency_key="k")
    error = raised.value
    assert (error.code, error.permanent, error.opted_out, error.retry_after) == (
        code,
        permanent,
        opted_out,
        retry_after,
    )
