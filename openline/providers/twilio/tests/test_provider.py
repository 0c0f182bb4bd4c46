"""The Twilio adapter on its own: parsing recorded webhooks, and the REST client against
the fake Twilio (error classification drives retries and opt-outs)."""

from __future__ import annotations

import email.utils
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from conftest import free_port
from openline.providers.base import ProviderError, SignatureError, WebhookRequest
from openline.providers.registry import get_provider
from openline.providers.twilio.provider import CLOCK_SKEW
from openline.providers.twilio.tests.fake import FakeTwilio, WebhookAnswer
from openline.providers.twilio.tests.support import (
    SEEKER,
    TWILIO_E164,
    asgi_request,
    inbound_params,
    twilio_signature,
)

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
    ("kind", "code", "permanent", "opted_out", "retry_after", "outcome_unknown"),
    [
        # A 5xx may come after Twilio created the message: never blindly sent again.
        ("server_error", "20500", False, False, None, True),
        ("unavailable", "20503", False, False, None, True),
        # 429 is refused before acceptance: safe to retry.
        ("rate_limited", "20429", False, False, 1.0, False),
        ("invalid_to", "21211", True, False, None, False),
        ("opted_out", "21610", True, True, None, False),
    ],
)
def test_twilio_errors_are_classified_for_retry_consent_and_unknown_outcome(
    twilio: Any,
    number: Any,
    fake: FakeTwilio,
    kind: str,
    code: str,
    permanent: bool,
    opted_out: bool,
    retry_after: float | None,
    outcome_unknown: bool,
) -> None:
    fake.fail_next(kind)
    with pytest.raises(ProviderError) as raised:
        twilio.send(number, to="+12025550123", body="hi", status_url="", idempotency_key="k")
    error = raised.value
    assert (
        error.code,
        error.permanent,
        error.opted_out,
        error.retry_after,
        error.outcome_unknown,
    ) == (code, permanent, opted_out, retry_after, outcome_unknown)


@pytest.fixture
def short_timeout(twilio: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[float]:
    client = httpx.Client(timeout=0.3)
    monkeypatch.setattr(twilio, "_client", client)
    yield 0.3
    client.close()


@pytest.mark.django_db
def test_timeout_after_sending_leaves_the_outcome_unknown(
    twilio: Any, number: Any, fake: FakeTwilio, short_timeout: float
) -> None:
    fake.fail_next("hang", hang=short_timeout * 5, accept=True)
    with pytest.raises(ProviderError) as raised:
        twilio.send(number, to=SEEKER, body="hi", status_url="", idempotency_key="k")
    assert (raised.value.code, raised.value.outcome_unknown) == ("timeout", True)
    assert len(fake.messages) == 1  # Twilio had taken it


@pytest.mark.django_db
def test_connection_dropped_mid_request_leaves_the_outcome_unknown(
    twilio: Any, number: Any, fake: FakeTwilio
) -> None:
    fake.fail_next("drop")
    with pytest.raises(ProviderError) as raised:
        twilio.send(number, to=SEEKER, body="hi", status_url="", idempotency_key="k")
    assert (raised.value.code, raised.value.outcome_unknown) == ("network", True)


@pytest.mark.django_db
def test_connection_refused_surely_did_not_arrive(twilio: Any, number: Any) -> None:
    number.config = dict(number.config, api_base=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ProviderError) as raised:
        twilio.send(number, to=SEEKER, body="hi", status_url="", idempotency_key="k")
    error = raised.value
    assert (error.code, error.outcome_unknown, error.permanent) == ("network", False, False)


@pytest.mark.django_db
def test_unresolvable_host_surely_did_not_arrive(twilio: Any, number: Any) -> None:
    number.config = dict(number.config, api_base="http://no-such-host.invalid")
    with pytest.raises(ProviderError) as raised:
        twilio.send(number, to=SEEKER, body="hi", status_url="", idempotency_key="k")
    assert (raised.value.code, raised.value.outcome_unknown) == ("network", False)


@pytest.mark.django_db
def test_send_carries_no_idempotency_header_twilio_would_ignore(
    twilio: Any, number: Any, fake: FakeTwilio
) -> None:
    twilio.send(number, to=SEEKER, body="hi", status_url="", idempotency_key="openline-1")
    [request] = fake.send_requests()
    assert not any("idempotency" in name for name in request.headers)


# --- looking a sent message up -------------------------------------------------------------


def _accepted(fake: FakeTwilio, body: str, *, to: str = SEEKER, at: float | None = None) -> str:
    """A message Twilio accepted from the test number (as if our answer had been lost)."""
    response = httpx.post(
        f"{fake.url}/2010-04-01/Accounts/{fake.account_sid}/Messages.json",
        data={"To": to, "From": TWILIO_E164, "Body": body},
        auth=(fake.account_sid, fake.auth_token),
    )
    sid = response.json()["sid"]
    if at is not None:
        fake.messages[sid].created = fake.messages[sid].sent = at
    return str(sid)


def _find(twilio: Any, number: Any, body: str, since: datetime, **kwargs: Any) -> Any:
    return twilio.find_sent(number, to=SEEKER, body=body, since=since, **kwargs)


@pytest.mark.django_db
def test_find_sent_reads_the_list_by_to_from_and_date_sent_and_matches_the_body(
    twilio: Any, number: Any, fake: FakeTwilio
) -> None:
    since = datetime.now(UTC)
    sid = _accepted(fake, "We're here. Take your time.")
    _accepted(fake, "Something else")
    _accepted(fake, "We're here. Take your time.", to="+12025550124")

    found = _find(twilio, number, "We're here. Take your time.", since)

    assert (found.provider_message_id, found.status) == (sid, "queued")
    [listing] = [r for r in fake.requests if r.method == "GET"]
    assert listing.query == {
        "To": SEEKER,
        "From": TWILIO_E164,
        "DateSent>": (since - CLOCK_SKEW).date().isoformat(),
        "PageSize": str(twilio.LOOKUP_PAGE_SIZE),
    }
    fake.status_callback(sid, "delivered")
    assert _find(twilio, number, "We're here. Take your time.", since).status == "delivered"


@pytest.mark.django_db
def test_find_sent_is_none_when_twilio_has_no_such_message(
    twilio: Any, number: Any, fake: FakeTwilio
) -> None:
    since = datetime.now(UTC)
    _accepted(fake, "We're here. Take your time", at=since.timestamp() - 3600)  # an hour ago
    _accepted(fake, "We're here. Take your time!")  # not exactly the same text
    assert _find(twilio, number, "We're here. Take your time", since) is None


@pytest.mark.django_db
def test_find_sent_takes_the_oldest_unclaimed_of_identical_texts(
    twilio: Any, number: Any, fake: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(twilio, "LOOKUP_PAGE_SIZE", 2)  # and so reads three pages
    now = datetime.now(UTC).timestamp()
    first, second, third = (_accepted(fake, "Okay", at=now - 30 + i) for i in range(3))
    for i in range(3):
        _accepted(fake, f"other {i}", at=now - 10 + i)
    since = datetime.fromtimestamp(now - 60, UTC)

    assert _find(twilio, number, "Okay", since).provider_message_id == first
    assert _find(twilio, number, "Okay", since, exclude={first}).provider_message_id == second
    assert (
        _find(twilio, number, "Okay", since, exclude={first, second}).provider_message_id == third
    )
    assert _find(twilio, number, "Okay", since, exclude={first, second, third}) is None
    assert len([r for r in fake.requests if r.method == "GET"]) == 4 * 3


@pytest.mark.django_db
@pytest.mark.parametrize("trouble", ["down", "credentials", "server_error"])
def test_find_sent_raises_when_twilio_cannot_be_asked(
    twilio: Any, number: Any, fake: FakeTwilio, trouble: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if trouble == "down":
        number.config = dict(number.config, api_base=f"http://127.0.0.1:{free_port()}")
    elif trouble == "credentials":
        number.config = dict(number.config, auth_token="not-the-token")
    else:
        monkeypatch.setattr(
            fake, "_list", lambda *args: (500, {"code": 20500, "message": "Internal Server Error"})
        )
    with pytest.raises(ProviderError):
        _find(twilio, number, "Okay", datetime.now(UTC))


# --- looking a placed call up --------------------------------------------------------------


def _called(
    fake: FakeTwilio, *, to: str = SEEKER, from_: str = TWILIO_E164, at: float | None = None
) -> str:
    """A call Twilio accepted (as if our answer had been lost), still queued."""
    response = httpx.post(
        f"{fake.url}/2010-04-01/Accounts/{fake.account_sid}/Calls.json",
        data={
            "To": to,
            "From": from_,
            "Url": "https://x.example/answer",
            "StatusCallback": "https://x.example/status",
            "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
            "MachineDetection": "DetectMessageEnd",
        },
        auth=(fake.account_sid, fake.auth_token),
    )
    sid = response.json()["sid"]
    if at is not None:
        fake.calls[sid].created = at
    return str(sid)


def _webhooks(posted: list[str]) -> Any:
    """A ``post`` for the fake's call driving that needs no app: it answers 200."""

    def post(url: str, params: dict[str, str], headers: dict[str, str]) -> WebhookAnswer:
        posted.append(params["CallStatus"])
        return WebhookAnswer(200, "text/xml", b"")

    return post


def _call_lookups(fake: FakeTwilio) -> list[dict[str, str]]:
    return [dict(r.query) for r in fake.requests if r.method == "GET" and "/Calls" in r.path]


@pytest.mark.django_db
def test_find_call_finds_a_call_still_queued_at_twilio(
    twilio: Any, number: Any, fake: FakeTwilio
) -> None:
    """Not dialed yet, so it has no start_time and no StartTime filter finds it: the
    Status=queued list does."""
    since = datetime.now(UTC)
    sid = _called(fake)

    found = twilio.find_call(number, to=SEEKER, since=since)

    assert (found.provider_call_id, found.status, found.answered_by, found.duration) == (
        sid,
        "calling",
        "",
        0,
    )
    page_size = str(twilio.LOOKUP_PAGE_SIZE)
    assert _call_lookups(fake) == [
        {"To": SEEKER, "From": TWILIO_E164, "Status": "queued", "PageSize": page_size},
        {
            "To": SEEKER,
            "From": TWILIO_E164,
            "StartTime>": (since - CLOCK_SKEW).date().isoformat(),
            "PageSize": page_size,
        },
    ]


@pytest.mark.django_db
def test_find_call_finds_a_call_twilio_dialed(twilio: Any, number: Any, fake: FakeTwilio) -> None:
    since = datetime.now(UTC)
    sid = _called(fake)
    posted: list[str] = []
    fake.call_progress(sid, "ringing", post=_webhooks(posted))
    assert posted == ["ringing"]  # the status callback we never got to read

    found = twilio.find_call(number, to=SEEKER, since=since)

    assert (found.provider_call_id, found.status) == (sid, "ringing")
    fake.call_progress(sid, "in-progress", post=_webhooks(posted))
    assert twilio.find_call(number, to=SEEKER, since=since).status == "in_progress"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("twilio_status", "duration", "answered_by", "expected"),
    [
        ("completed", 61, "human", ("completed", "human", 61)),
        ("completed", 25, "machine_end_beep", ("completed", "machine", 25)),
        ("completed", 3, "unknown", ("completed", "", 3)),
        ("no-answer", None, "", ("no_answer", "", 0)),
        ("busy", None, "", ("busy", "", 0)),
    ],
)
def test_find_call_reports_a_finished_calls_billed_seconds_and_who_answered(
    twilio: Any,
    number: Any,
    fake: FakeTwilio,
    twilio_status: str,
    duration: int | None,
    answered_by: str,
    expected: tuple[str, str, int],
) -> None:
    since = datetime.now(UTC)
    sid = _called(fake)
    post = _webhooks([])
    fake.call_progress(sid, "ringing", post=post)
    fake.call_progress(sid, twilio_status, duration=duration, answered_by=answered_by, post=post)

    found = twilio.find_call(number, to=SEEKER, since=since)

    assert (found.provider_call_id, found.status, found.answered_by, found.duration) == (
        sid,
        *expected,
    )


@pytest.mark.django_db
def test_find_call_bills_only_completed_calls(twilio: Any, number: Any, fake: FakeTwilio) -> None:
    since = datetime.now(UTC)
    sid = _called(fake)
    fake.call_progress(sid, "busy", post=_webhooks([]))
    fake.calls[sid].duration = 12  # a duration Twilio shows on a call that was not answered

    assert twilio.find_call(number, to=SEEKER, since=since).duration == 0


@pytest.mark.django_db
def test_find_call_is_none_when_twilio_has_no_such_call(
    twilio: Any, number: Any, fake: FakeTwilio
) -> None:
    since = datetime.now(UTC)
    _called(fake, to="+12025550124")  # someone else
    _called(fake, from_="+12025550178")  # from another number
    dialed_elsewhere = _called(fake, to="+12025550125")
    fake.call_progress(dialed_elsewhere, "ringing", post=_webhooks([]))
    assert twilio.find_call(number, to=SEEKER, since=since) is None
    assert len(_call_lookups(fake)) == 2  # it did ask Twilio, both lists

    mine = _called(fake)  # and the same look-up does find the right one
    assert twilio.find_call(number, to=SEEKER, since=since).provider_call_id == mine


@pytest.mark.django_db
def test_find_call_ignores_calls_created_before_since_less_the_clock_skew(
    twilio: Any, number: Any, fake: FakeTwilio
) -> None:
    since = datetime.now(UTC)
    earliest = (since - CLOCK_SKEW).timestamp()
    too_old = _called(fake, at=earliest - 60)
    fake.call_progress(too_old, "ringing", post=_webhooks([]))
    _called(fake, at=earliest - 1)  # still queued, but long before this call was placed
    assert twilio.find_call(number, to=SEEKER, since=since) is None

    within_skew = _called(fake, at=earliest + 2)  # Twilio's clock a little behind ours
    assert twilio.find_call(number, to=SEEKER, since=since).provider_call_id == within_skew


@pytest.mark.django_db
def test_find_call_takes_the_oldest_unclaimed_call_across_both_lists(
    twilio: Any, number: Any, fake: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The older call was dialed, the newer one still waits in the queue: the queued list
    is read first, yet the oldest wins."""
    monkeypatch.setattr(twilio, "LOOKUP_PAGE_SIZE", 1)  # and so pages through both lists
    now = datetime.now(UTC).timestamp()
    first = _called(fake, at=now - 20)
    fake.call_progress(first, "ringing", post=_webhooks([]))
    second = _called(fake, at=now - 10)
    third = _called(fake, at=now - 5)
    since = datetime.fromtimestamp(now - 60, UTC)

    def find(*excluded: str) -> Any:
        return twilio.find_call(number, to=SEEKER, since=since, exclude=set(excluded))

    assert (find().provider_call_id, find().status) == (first, "ringing")
    assert find(first).provider_call_id == second
    assert find(first, second).provider_call_id == third
    assert find(first, second, third) is None


@pytest.mark.django_db
def test_find_call_reads_a_call_that_moved_on_while_it_looked(
    twilio: Any, number: Any, fake: FakeTwilio
) -> None:
    """Queued when the first list is read, dialed by the second: found once, as dialed."""
    since = datetime.now(UTC)
    sid = _called(fake)
    real_list = fake._list

    def list_then_dial(resource: str, account_sid: str, query: Any) -> Any:
        answer = real_list(resource, account_sid, query)
        if query.get("Status") == "queued":
            fake.call_progress(sid, "ringing", post=_webhooks([]))
        return answer

    fake._list = list_then_dial  # type: ignore[method-assign]
    found = twilio.find_call(number, to=SEEKER, since=since)
    assert (found.provider_call_id, found.status) == (sid, "ringing")


def _listing(*calls: dict[str, Any]) -> Any:
    """A stand-in for the fake's list: every GET answers one page of ``calls``."""
    return lambda *args: (200, {"calls": list(calls), "next_page_uri": None})


def _record(**fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "sid": "CA" + "1" * 32,
        "date_created": email.utils.formatdate(datetime.now(UTC).timestamp(), usegmt=True),
        "direction": "outbound-api",
        "status": "queued",
        "duration": None,
        "answered_by": None,
    }
    record.update(fields)
    return record


@pytest.mark.django_db
def test_find_call_skips_calls_that_are_not_ours_to_adopt(
    twilio: Any, number: Any, fake: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An inbound call from the person, a <Dial> leg, a record without a call sid."""
    since = datetime.now(UTC) - timedelta(seconds=30)
    others = [
        _record(sid="CA" + "2" * 32, direction="inbound"),
        _record(sid="CA" + "3" * 32, direction="outbound-dial"),
        _record(sid="SM" + "4" * 32),
    ]
    monkeypatch.setattr(fake, "_list", _listing(*others))
    assert twilio.find_call(number, to=SEEKER, since=since) is None
    monkeypatch.setattr(fake, "_list", _listing(*others, _record(direction=None)))
    assert twilio.find_call(number, to=SEEKER, since=since).provider_call_id == "CA" + "1" * 32


@pytest.mark.django_db
@pytest.mark.parametrize(
    "fields",
    [{"status": "dialing"}, {"status": "completed", "duration": "a minute"}],
    ids=["unknown-status", "unreadable-duration"],
)
def test_find_call_raises_on_a_call_it_cannot_read(
    twilio: Any,
    number: Any,
    fake: FakeTwilio,
    monkeypatch: pytest.MonkeyPatch,
    fields: dict[str, Any],
) -> None:
    # Built now, not when the tests were collected: its date_created must be recent.
    monkeypatch.setattr(fake, "_list", _listing(_record(**fields)))
    with pytest.raises(ProviderError) as raised:
        twilio.find_call(number, to=SEEKER, since=datetime.now(UTC) - timedelta(seconds=30))
    assert raised.value.code == "bad_response"


@pytest.mark.django_db
@pytest.mark.parametrize("trouble", ["down", "credentials", "server_error", "no_calls"])
def test_find_call_raises_when_twilio_cannot_be_asked(
    twilio: Any, number: Any, fake: FakeTwilio, trouble: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _called(fake)  # there is a call: only an error may keep it from being found
    if trouble == "down":
        number.config = dict(number.config, api_base=f"http://127.0.0.1:{free_port()}")
    elif trouble == "credentials":
        number.config = dict(number.config, auth_token="not-the-token")
    elif trouble == "server_error":
        monkeypatch.setattr(
            fake, "_list", lambda *args: (500, {"code": 20500, "message": "Internal Server Error"})
        )
    else:  # an answer without the list: not "no calls"
        monkeypatch.setattr(fake, "_list", lambda *args: (200, {"messages": []}))
    with pytest.raises(ProviderError):
        twilio.find_call(number, to=SEEKER, since=datetime.now(UTC))


# --- signature settings ---------------------------------------------------------------------


@pytest.mark.django_db
def test_verify_refuses_an_unknown_signature_algorithm_as_a_bad_signature(
    twilio: Any, number: Any, fake: FakeTwilio
) -> None:
    params = _fixture_form("inbound_sms.txt")
    flat = {k: v[0] for k, v in params.items()}
    good = twilio_signature(fake.auth_token, "", flat, base=URL)
    headers = {
        "x-twilio-signature": good,
        "x-twilio-webhooks-signature-settings": "key=webhooks_sharedkey_1,algorithm=HMAC_MD5",
    }
    with pytest.raises(SignatureError, match="HMAC_MD5"):
        twilio.verify(number, WebhookRequest(url=URL, params=params, headers=headers))


@pytest.mark.django_db(transaction=True)
def test_webhook_with_malformed_signature_settings_gets_403_not_503(
    number: Any, fake: FakeTwilio
) -> None:
    from openline.messaging.models import InboundEvent

    path = f"/hooks/twilio/{number.webhook_key}/inbound"
    params = inbound_params()
    signature = twilio_signature(fake.auth_token, path, params)
    response = asgi_request(
        "POST",
        path,
        data=params,
        headers={
            "X-Twilio-Signature": signature,
            "X-Twilio-Webhooks-Signature-Settings": "algorithm=NOT_A_REAL_ALGORITHM",
        },
    )
    assert response.status_code == 403, response.text
    assert "NOT_A_REAL_ALGORITHM" in response.text
    assert not InboundEvent.objects.exists()
