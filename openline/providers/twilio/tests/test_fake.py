"""The fake Twilio speaks the documented API: checked against the recorded fixtures, so
tests that rely on it are testing against Twilio's shapes, not the fake's whims."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from twilio.request_validator import RequestValidator

from openline.providers.twilio.fake import FakeTwilio, num_segments
from openline.providers.twilio.provider import MESSAGE_SID

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def _post(fake: FakeTwilio, data: dict[str, str], **kwargs: Any) -> httpx.Response:
    kwargs.setdefault("auth", (fake.account_sid, fake.auth_token))
    return httpx.post(
        f"{fake.url}/2010-04-01/Accounts/{fake.account_sid}/Messages.json", data=data, **kwargs
    )


MESSAGE = {"To": "+12025550123", "From": "+12025550177", "Body": "Hello from the line"}


def test_create_answers_201_with_the_documented_message_resource(fake: FakeTwilio) -> None:
    response = _post(fake, dict(MESSAGE, StatusCallback="https://example.org/status"))
    assert response.status_code == 201
    payload = response.json()
    assert set(payload) == set(_fixture("message_created.json"))
    assert MESSAGE_SID.match(payload["sid"])
    assert (payload["status"], payload["to"], payload["from"], payload["body"]) == (
        "queued",
        "+12025550123",
        "+12025550177",
        "Hello from the line",
    )
    assert payload["num_segments"] == "1"
    assert (
        payload["uri"] == f"/2010-04-01/Accounts/{fake.account_sid}/Messages/{payload['sid']}.json"
    )
    [request] = fake.send_requests()
    assert request.form["StatusCallback"] == "https://example.org/status"


def test_fetch_returns_the_message_and_404_for_unknown_sids(fake: FakeTwilio) -> None:
    sid = _post(fake, MESSAGE).json()["sid"]
    base = f"{fake.url}/2010-04-01/Accounts/{fake.account_sid}/Messages"
    auth = (fake.account_sid, fake.auth_token)
    got = httpx.get(f"{base}/{sid}.json", auth=auth)
    assert (got.status_code, got.json()["sid"]) == (200, sid)
    missing = httpx.get(f"{base}/SM{'0' * 32}.json", auth=auth)
    assert (missing.status_code, missing.json()["code"]) == (404, 20404)


@pytest.mark.parametrize(
    "auth",
    [None, ("AC" + "0" * 32, "whatever"), "wrong-token"],
    ids=["no-auth", "other-account", "wrong-token"],
)
def test_bad_credentials_answer_401_code_20003(fake: FakeTwilio, auth: Any) -> None:
    if auth == "wrong-token":
        auth = (fake.account_sid, "not-the-token")
    response = httpx.post(
        f"{fake.url}/2010-04-01/Accounts/{fake.account_sid}/Messages.json", data=MESSAGE, auth=auth
    )
    assert response.status_code == 401
    assert response.json() == _fixture("error_20003.json")
    assert fake.messages == {}


def test_validation_errors_use_twilios_codes(fake: FakeTwilio) -> None:
    invalid_to = _post(fake, dict(MESSAGE, To="+1202555"))
    assert invalid_to.status_code == 400
    assert set(invalid_to.json()) == set(_fixture("error_21211.json"))
    assert invalid_to.json()["code"] == 21211
    assert _post(fake, dict(MESSAGE, Body="")).json()["code"] == 21602
    assert _post(fake, dict(MESSAGE, Body="x" * 1601)).json()["code"] == 21617
    assert fake.messages == {}


def test_opted_out_recipient_answers_21610(fake: FakeTwilio) -> None:
    fake.opt_out("+12025550123")
    response = _post(fake, MESSAGE)
    assert response.status_code == 400
    assert response.json() == _fixture("error_21610.json")


def test_scripted_failures_answer_in_order_then_succeed(fake: FakeTwilio) -> None:
    fake.fail_next("server_error", times=2)
    fake.fail_next("rate_limited")
    answers = [_post(fake, MESSAGE) for _ in range(4)]
    assert [r.status_code for r in answers] == [500, 500, 429, 201]
    assert answers[0].json()["code"] == 20500
    assert (answers[2].json()["code"], answers[2].headers["retry-after"]) == (20429, "1")
    assert [r.status for r in fake.send_requests()] == [500, 500, 429, 201]


def test_scripted_hang_outlasts_the_client_timeout(fake: FakeTwilio) -> None:
    fake.fail_next("hang", hang=2.0)
    with pytest.raises(httpx.ReadTimeout):
        _post(fake, MESSAGE, timeout=0.3)
    assert len(fake.send_requests()) == 1  # seen on arrival, while still hanging


def test_idempotency_token_returns_the_same_message(fake: FakeTwilio) -> None:
    headers = {"I-Twilio-Idempotency-Token": "openline-42"}
    first = _post(fake, MESSAGE, headers=headers).json()["sid"]
    again = _post(fake, MESSAGE, headers=headers).json()["sid"]
    other = _post(fake, MESSAGE, headers={"I-Twilio-Idempotency-Token": "openline-43"})
    assert first == again != other.json()["sid"]
    assert len(fake.messages) == 2


def test_segment_estimate_follows_gsm_and_ucs2_limits() -> None:
    assert [num_segments("a" * n) for n in (160, 161, 306, 307)] == [1, 2, 2, 3]
    assert [num_segments("ж" * n) for n in (70, 71, 134, 135)] == [1, 2, 2, 3]


class _Catcher(BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, str], dict[str, str]]] = []

    def do_POST(self) -> None:  # noqa: N802
        raw = self.rfile.read(int(self.headers["Content-Length"])).decode()
        form = {k: v[0] for k, v in parse_qs(raw).items()}
        self.received.append((self.path, form, dict(self.headers.items())))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


def test_status_callbacks_are_posted_and_signed_like_twilio(fake: FakeTwilio) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Catcher)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        callback = f"http://127.0.0.1:{server.server_address[1]}/hooks/twilio/key/status"
        sid = _post(fake, dict(MESSAGE, StatusCallback=callback)).json()["sid"]
        assert fake.deliver_status(sid, "undelivered", error_code=30003) == 200
    finally:
        server.shutdown()
        server.server_close()
    [(path, form, headers)] = _Catcher.received
    assert path == "/hooks/twilio/key/status"
    assert form["MessageSid"] == sid and form["MessageStatus"] == "undelivered"
    assert (form["ErrorCode"], form["AccountSid"]) == ("30003", fake.account_sid)
    assert RequestValidator(fake.auth_token).validate(callback, form, headers["X-Twilio-Signature"])
    assert not RequestValidator("other-token").validate(
        callback, form, headers["X-Twilio-Signature"]
    )
    fetched = httpx.get(
        f"{fake.url}/2010-04-01/Accounts/{fake.account_sid}/Messages/{sid}.json",
        auth=(fake.account_sid, fake.auth_token),
    ).json()
    assert (fetched["status"], fetched["error_code"]) == ("undelivered", 30003)
