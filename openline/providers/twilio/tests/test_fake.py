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

from openline.providers.twilio.provider import MESSAGE_SID
from openline.providers.twilio.tests.fake import FakeTwilio, num_segments

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


def test_two_identical_posts_make_two_messages_whatever_the_headers(fake: FakeTwilio) -> None:
    """Twilio documents no idempotency key for creating messages: a repeated POST (even
    one carrying the header Twilio itself sends on webhooks) is a second text."""
    headers = {"I-Twilio-Idempotency-Token": "openline-42"}
    first = _post(fake, MESSAGE, headers=headers)
    again = _post(fake, MESSAGE, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json()["sid"] != again.json()["sid"]
    assert len(fake.messages) == 2


def test_accepted_then_dropped_connection_keeps_the_message(fake: FakeTwilio) -> None:
    fake.fail_next("drop", accept=True)
    with pytest.raises(httpx.RemoteProtocolError):
        _post(fake, MESSAGE)
    [request] = fake.send_requests()
    assert request.status == 0  # never answered
    [stored] = fake.messages.values()
    assert stored.body == MESSAGE["Body"]


# --- the list resource ---------------------------------------------------------------------


def _list(fake: FakeTwilio, params: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
    kwargs.setdefault("auth", (fake.account_sid, fake.auth_token))
    url = f"{fake.url}/2010-04-01/Accounts/{fake.account_sid}/Messages.json"
    return httpx.get(url, params=params, **kwargs)


def _sent(fake: FakeTwilio, body: str, when: float, **fields: str) -> str:
    """A message the fake accepted at ``when`` (seconds since the epoch)."""
    sid = _post(fake, dict(MESSAGE, Body=body, **fields)).json()["sid"]
    message = fake.messages[sid]
    message.created = message.sent = when
    return sid


def test_list_answers_the_documented_page_newest_first(fake: FakeTwilio) -> None:
    older = _sent(fake, "first", 1_700_000_000)
    newer = _sent(fake, "second", 1_700_000_060)
    page = _list(fake).json()
    assert set(page) == set(_fixture("messages_list.json"))
    assert set(page["messages"][0]) == set(_fixture("messages_list.json")["messages"][0])
    assert [m["sid"] for m in page["messages"]] == [newer, older]
    assert [m["date_sent"] for m in page["messages"]] == [
        "Tue, 14 Nov 2023 22:14:20 GMT",
        "Tue, 14 Nov 2023 22:13:20 GMT",
    ]
    assert (page["page"], page["page_size"], page["start"], page["end"]) == (0, 50, 0, 1)
    assert page["next_page_uri"] is None and page["previous_page_uri"] is None
    assert page["uri"] == page["first_page_uri"]


def test_list_filters_by_to_and_from(fake: FakeTwilio) -> None:
    mine = _sent(fake, "hi", 1_700_000_000)
    _sent(fake, "hi", 1_700_000_000, To="+12025550124")
    _sent(fake, "hi", 1_700_000_000, From="+12025550178")
    page = _list(fake, {"To": MESSAGE["To"], "From": MESSAGE["From"]}).json()
    assert [m["sid"] for m in page["messages"]] == [mine]


def test_list_filters_by_date_sent_day_on_or_after_on_or_before_and_instant(
    fake: FakeTwilio,
) -> None:
    day1 = _sent(fake, "a", 1_700_000_000)  # 2023-11-14 22:13:20 GMT
    day2 = _sent(fake, "b", 1_700_086_400)  # 2023-11-15 22:13:20 GMT
    day3 = _sent(fake, "c", 1_700_172_800)  # 2023-11-16 22:13:20 GMT

    def sids(**params: str) -> list[str]:
        response = _list(fake, params)
        assert response.status_code == 200, response.text
        return [m["sid"] for m in response.json()["messages"]]

    assert sids(DateSent="2023-11-15") == [day2]
    # Twilio's "DateSent>=2023-11-15" is the parameter "DateSent>" once the URL is parsed.
    assert sids(**{"DateSent>": "2023-11-15"}) == [day3, day2]
    assert sids(**{"DateSent<": "2023-11-15"}) == [day2, day1]
    assert sids(**{"DateSent>": "2023-11-15", "DateSent<": "2023-11-15"}) == [day2]
    # The SDKs send date and time: on or after that second.
    assert sids(**{"DateSent>": "2023-11-15T22:13:20Z"}) == [day3, day2]
    assert sids(**{"DateSent>": "2023-11-15T22:13:21Z"}) == [day3]
    raw = httpx.get(  # the query string as Twilio's docs spell it
        f"{fake.url}/2010-04-01/Accounts/{fake.account_sid}/Messages.json?DateSent>=2023-11-16",
        auth=(fake.account_sid, fake.auth_token),
    )
    assert [m["sid"] for m in raw.json()["messages"]] == [day3]


def test_list_pages_follow_next_page_uri_without_repeats(fake: FakeTwilio) -> None:
    sids = [_sent(fake, f"text {i}", 1_700_000_000 + i) for i in range(5)]
    seen: list[str] = []
    page = _list(fake, {"PageSize": "2", "To": MESSAGE["To"]}).json()
    pages = [page]
    while page["next_page_uri"]:
        auth = (fake.account_sid, fake.auth_token)
        page = httpx.get(fake.url + page["next_page_uri"], auth=auth).json()
        pages.append(page)
    for page in pages:
        seen += [m["sid"] for m in page["messages"]]
    assert seen == list(reversed(sids))
    assert [p["page"] for p in pages] == [0, 1, 2]
    assert [(p["start"], p["end"]) for p in pages] == [(0, 1), (2, 3), (4, 4)]
    assert "To=%2B12025550123" in pages[1]["uri"] and "PageToken=PA" in pages[1]["uri"]
    back = httpx.get(
        fake.url + pages[2]["previous_page_uri"], auth=(fake.account_sid, fake.auth_token)
    )
    assert [m["sid"] for m in back.json()["messages"]] == [m["sid"] for m in pages[1]["messages"]]


def test_list_needs_credentials_and_valid_parameters(fake: FakeTwilio) -> None:
    assert _list(fake, auth=None).status_code == 401
    assert _list(fake, auth=(fake.account_sid, "not-the-token")).status_code == 401
    for params in ({"PageSize": "0"}, {"PageSize": "1001"}, {"DateSent": "yesterday"}):
        response = _list(fake, params)
        assert (response.status_code, response.json()["code"]) == (400, 20001), params


def test_list_shows_only_the_accounts_own_messages(fake: FakeTwilio) -> None:
    _sent(fake, "mine", 1_700_000_000)
    other_sid, other_token = fake.add_account()
    url = f"{fake.url}/2010-04-01/Accounts/{other_sid}/Messages.json"
    assert httpx.get(url, auth=(other_sid, other_token)).json()["messages"] == []


# --- the calls list resource --------------------------------------------------------------

CALL = {"To": "+12025550123", "From": "+12025550177", "Url": "https://example.org/answer"}
DAY1, DAY2, DAY3 = 1_700_000_000, 1_700_086_400, 1_700_172_800  # 2023-11-14/15/16 22:13:20 GMT


def _calls(fake: FakeTwilio, params: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
    kwargs.setdefault("auth", (fake.account_sid, fake.auth_token))
    url = f"{fake.url}/2010-04-01/Accounts/{fake.account_sid}/Calls.json"
    return httpx.get(url, params=params, **kwargs)


def _call_sids(fake: FakeTwilio, **params: str) -> list[str]:
    response = _calls(fake, params)
    assert response.status_code == 200, response.text
    return [c["sid"] for c in response.json()["calls"]]


def _placed(fake: FakeTwilio, when: float, status: str = "queued", **fields: str) -> str:
    """A call the fake accepted at ``when`` (seconds since the epoch), then moved to
    ``status``; one that was dialed started (and a final one ended) at ``when`` too."""
    response = httpx.post(
        f"{fake.url}/2010-04-01/Accounts/{fake.account_sid}/Calls.json",
        data=dict(CALL, **fields),
        auth=(fake.account_sid, fake.auth_token),
    )
    assert response.status_code == 201, response.text
    sid: str = response.json()["sid"]
    if status != "queued":
        fake.call_progress(sid, status)  # no StatusCallback: nothing is posted
    call = fake.calls[sid]
    call.created = when
    call.started = None if call.started is None else when
    call.ended = None if call.ended is None else when
    return sid


def test_call_list_answers_the_documented_page_newest_first(fake: FakeTwilio) -> None:
    older = _placed(fake, DAY1, "ringing")
    newer = _placed(fake, DAY1 + 60)
    response = _calls(fake)
    assert response.status_code == 200, response.text
    page = response.json()
    messages_page = set(_fixture("messages_list.json"))
    assert set(page) == messages_page - {"messages"} | {"calls"}
    fetched = httpx.get(
        f"{fake.url}/2010-04-01/Accounts/{fake.account_sid}/Calls/{older}.json",
        auth=(fake.account_sid, fake.auth_token),
    ).json()
    assert page["calls"][1] == fetched
    assert [c["sid"] for c in page["calls"]] == [newer, older]
    assert [(c["status"], c["start_time"]) for c in page["calls"]] == [
        ("queued", None),
        ("ringing", "Tue, 14 Nov 2023 22:13:20 GMT"),
    ]
    assert [c["date_created"] for c in page["calls"]] == [
        "Tue, 14 Nov 2023 22:14:20 GMT",
        "Tue, 14 Nov 2023 22:13:20 GMT",
    ]
    assert (page["page"], page["page_size"], page["start"], page["end"]) == (0, 50, 0, 1)
    assert page["next_page_uri"] is None and page["previous_page_uri"] is None
    assert page["uri"] == page["first_page_uri"]
    assert page["uri"].startswith(f"/2010-04-01/Accounts/{fake.account_sid}/Calls.json?")


def test_call_times_follow_dialing_and_the_final_status(fake: FakeTwilio) -> None:
    """start_time once dialed, end_time once a dialed call ends, date_updated with the
    status; a call that fails while queued was never dialed and has neither."""
    never = _placed(fake, DAY1)
    answered = _placed(fake, DAY1)
    fake.call_progress(never, "failed")
    fake.call_progress(answered, "ringing")
    ringing = dict(fake.calls[answered].resource())
    fake.call_progress(answered, "in-progress")
    fake.call_progress(answered, "completed", duration=61)
    listed = {c["sid"]: c for c in _calls(fake).json()["calls"]}
    assert (listed[never]["start_time"], listed[never]["end_time"]) == (None, None)
    assert listed[never]["date_updated"] != listed[never]["date_created"]
    assert ringing["start_time"] is not None and ringing["end_time"] is None
    done = listed[answered]
    assert done["start_time"] == ringing["start_time"]  # the first dialing, not the last
    assert done["end_time"] is not None and done["duration"] == "61"
    assert done["date_updated"] != done["date_created"]
    busy = _placed(fake, DAY1)
    fake.call_progress(busy, "busy")  # dialed and ended at once
    assert fake.calls[busy].started is not None and fake.calls[busy].ended is not None


def test_call_list_filters_by_to_from_and_status(fake: FakeTwilio) -> None:
    queued = _placed(fake, DAY1)
    ringing = _placed(fake, DAY1 + 1, "ringing")
    _placed(fake, DAY1 + 2, To="+12025550124")
    _placed(fake, DAY1 + 3, From="+12025550178")
    mine = {"To": CALL["To"], "From": CALL["From"]}
    assert _call_sids(fake, **mine) == [ringing, queued]
    assert _call_sids(fake, **mine, Status="queued") == [queued]
    assert _call_sids(fake, **mine, Status="ringing") == [ringing]
    assert _call_sids(fake, **mine, Status="completed") == []


def test_call_list_filters_by_start_time_day_on_or_after_on_or_before_and_instant(
    fake: FakeTwilio,
) -> None:
    day1 = _placed(fake, DAY1, "completed")
    day2 = _placed(fake, DAY2, "ringing")
    day3 = _placed(fake, DAY3, "in-progress")
    queued = _placed(fake, DAY3)  # still waiting to be dialed: no start_time
    failed = _placed(fake, DAY3, "failed")  # never dialed either

    assert _call_sids(fake, StartTime="2023-11-15") == [day2]
    assert _call_sids(fake, **{"StartTime>": "2023-11-15"}) == [day3, day2]
    assert _call_sids(fake, **{"StartTime<": "2023-11-15"}) == [day2, day1]
    assert _call_sids(fake, **{"StartTime>": "2023-11-15T22:13:21Z"}) == [day3]
    assert _call_sids(fake, **{"StartTime>": "2023-11-01"}) == [day3, day2, day1]
    assert _call_sids(fake, Status="queued") == [queued]
    assert _call_sids(fake, Status="failed") == [failed]
    # Only the final, dialed one ended.
    assert _call_sids(fake, **{"EndTime>": "2023-11-01"}) == [day1]
    assert _call_sids(fake, EndTime="2023-11-14") == [day1]
    assert _call_sids(fake, EndTime="2023-11-15") == []
    raw = httpx.get(  # the query string as Twilio's docs spell it
        f"{fake.url}/2010-04-01/Accounts/{fake.account_sid}/Calls.json?StartTime>=2023-11-16",
        auth=(fake.account_sid, fake.auth_token),
    )
    assert [c["sid"] for c in raw.json()["calls"]] == [day3]


def test_call_list_pages_follow_next_page_uri_without_repeats(fake: FakeTwilio) -> None:
    sids = [_placed(fake, DAY1 + i) for i in range(5)]
    _placed(fake, DAY1 + 10, To="+12025550124")
    auth = (fake.account_sid, fake.auth_token)
    page = _calls(fake, {"PageSize": "2", "To": CALL["To"]}).json()
    pages = [page]
    while page["next_page_uri"]:
        page = httpx.get(fake.url + page["next_page_uri"], auth=auth).json()
        pages.append(page)
    assert [c["sid"] for p in pages for c in p["calls"]] == list(reversed(sids))
    assert [p["page"] for p in pages] == [0, 1, 2]
    assert [(p["start"], p["end"]) for p in pages] == [(0, 1), (2, 3), (4, 4)]
    assert "To=%2B12025550123" in pages[1]["uri"] and "PageToken=PACA" in pages[1]["uri"]
    assert "/Calls.json?" in pages[1]["next_page_uri"]
    back = httpx.get(fake.url + pages[2]["previous_page_uri"], auth=auth)
    assert [c["sid"] for c in back.json()["calls"]] == [c["sid"] for c in pages[1]["calls"]]


def test_call_list_needs_credentials_and_valid_parameters(fake: FakeTwilio) -> None:
    _placed(fake, DAY1)
    assert _calls(fake, auth=None).status_code == 401
    assert _calls(fake, auth=(fake.account_sid, "not-the-token")).json()["code"] == 20003
    for params in (
        {"PageSize": "0"},
        {"PageSize": "1001"},
        {"Page": "first"},
        {"StartTime": "yesterday"},
        {"StartTime>": "2023-13-45"},
        {"EndTime<": "soon"},
        {"Status": "dialing"},
        {"PageToken": "PASM" + "0" * 32},  # a message's token is not a call's
    ):
        response = _calls(fake, params)
        assert (response.status_code, response.json()["code"]) == (400, 20001), params
    assert _calls(fake, {"PageSize": "1000", "Status": "queued"}).status_code == 200


def test_call_list_shows_only_the_accounts_own_calls(fake: FakeTwilio) -> None:
    _placed(fake, DAY1)
    other_sid, other_token = fake.add_account()
    url = f"{fake.url}/2010-04-01/Accounts/{other_sid}/Calls.json"
    assert httpx.get(url, auth=(other_sid, other_token)).json()["calls"] == []
    mine = f"{fake.url}/2010-04-01/Accounts/{fake.account_sid}/Calls.json"
    assert httpx.get(mine, auth=(other_sid, other_token)).status_code == 401


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
