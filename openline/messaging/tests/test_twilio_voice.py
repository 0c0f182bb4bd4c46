"""Voice broadcasts through Twilio: calls placed by the call service through the real Twilio
adapter against the local fake Twilio (openline.providers.twilio.tests.fake), which then
drives each call as Twilio would, with signed requests to the real voice views (answer,
key press, status callbacks) through Django's test client."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode
from xml.etree import ElementTree

import httpx
import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from openline.contacts.models import Contact, NumberType
from openline.contacts.selectors import voice_do_not_call_entry
from openline.messaging.models import Call, CallStatus
from openline.messaging.services.calls import (
    GOODBYE_OPTED_OUT,
    OPT_OUT_PROMPT,
    call_script,
    call_send,
    call_urls,
)
from openline.messaging.services.outbound import SendRefused
from openline.providers.base import CallScript, WebhookError, WebhookRequest
from openline.providers.models import Number
from openline.providers.registry import get_provider
from openline.providers.services import number_add
from openline.providers.twilio.provider import CALL_SID
from openline.providers.twilio.tests.fake import FakeTwilio, Poster, WebhookAnswer
from openline.providers.twilio.tests.support import TWILIO_E164, client_poster, twilio_signature

PERSON = "+12025550131"
SCRIPT = "This is Riverside Crisis Line. Our walk-in hours change next week."


@pytest.fixture
def poster(client: Client) -> Poster:
    return client_poster(client)


@pytest.fixture
def short_timeout(monkeypatch: pytest.MonkeyPatch) -> Iterator[float]:
    """The adapter's HTTP client with a 0.5 s timeout, so a scripted hang costs little."""
    timeout = 0.5
    client = httpx.Client(timeout=timeout)
    monkeypatch.setattr(get_provider("twilio"), "_client", client)
    yield timeout
    client.close()


@pytest.fixture
def landline(org: Any) -> Contact:
    """Someone who may get prerecorded calls without consent on record: a landline."""
    return Contact.objects.create(organization=org, phone=PERSON, number_type=NumberType.LANDLINE)


def _call_send(org: Any, number: Number, to: str = PERSON) -> Call:
    return call_send(
        organization_id=org.pk,
        to=to,
        number_id=number.pk,
        script=call_script(say=SCRIPT, seconds=20),
        time_limit=120,
    )


def _place(org: Any, number: Number, pipeline: Any, to: str = PERSON) -> Call:
    """call_send, then dispatch (the task that places it through the adapter)."""
    call: Call = pipeline.run(lambda: _call_send(org, number, to))
    call.refresh_from_db()
    return call


def _twiml(answer: WebhookAnswer) -> ElementTree.Element:
    assert answer.status == 200, answer.text
    assert answer.content_type.startswith("application/xml")
    root = ElementTree.fromstring(answer.body)
    assert root.tag == "Response"
    return root


def _answer(response: Any) -> WebhookAnswer:
    return WebhookAnswer(response.status_code, response["Content-Type"], response.content)


def _verbs(element: ElementTree.Element) -> list[tuple[str, str]]:
    return [(verb.tag, (verb.text or "").strip()) for verb in element]


def _held(calls: list[tuple[str, dict[str, str], dict[str, str]]]) -> Poster:
    """A ``post`` that keeps the webhook instead of delivering it (delivered late, or
    tampered with, by the test)."""

    def post(url: str, params: dict[str, str], headers: dict[str, str]) -> WebhookAnswer:
        calls.append((url, params, headers))
        return WebhookAnswer(200, "text/plain", b"")

    return post


def _post_signed(
    client: Client, path: str, params: dict[str, str], token: str, **headers: str
) -> Any:
    """POST ``params`` to ``path`` (with its query) signed as Twilio would sign it."""
    signature = twilio_signature(token, path, params)
    return client.post(
        path,
        urlencode(params),
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": signature, **headers},
    )


def _status_params(call: Call, status: str, **extra: str) -> dict[str, str]:
    return {
        "AccountSid": "AC" + "1" * 32,
        "CallSid": call.provider_call_id or "CA" + "2" * 32,
        "CallStatus": status,
        "From": TWILIO_E164,
        "To": call.phone,
        "Direction": "outbound-api",
        **extra,
    }


def _path(number: Number, action: str, query: str) -> str:
    return f"/voice/twilio/{number.webhook_key}/{action}{query}"


# --- placing the call ---------------------------------------------------------------------


@pytest.mark.django_db
def test_call_reaches_twilio_with_its_urls_machine_detection_and_limits(
    org: Any, number: Number, fake: FakeTwilio, pipeline: Any, landline: Contact
) -> None:
    call = _place(org, number, pipeline)

    [request] = fake.call_requests()
    assert request.authenticated and request.status == 201
    urls = call_urls(call)
    assert request.form_lists == {
        "To": [PERSON],
        "From": [TWILIO_E164],
        "Url": [urls.answer],
        "Method": ["POST"],
        "StatusCallback": [urls.status],
        "StatusCallbackMethod": ["POST"],
        "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
        "MachineDetection": ["DetectMessageEnd"],
        "Timeout": ["30"],
        "TimeLimit": ["120"],
    }
    assert urls.answer == (
        f"{settings.PUBLIC_URL}/voice/twilio/{number.webhook_key}/answer?call={call.pk}"
    )
    # Twilio reads no idempotency key on its API: none is sent.
    assert not any("idempotency" in name for name in request.headers)
    assert CALL_SID.match(call.provider_call_id)
    assert list(fake.calls) == [call.provider_call_id]
    assert (call.status, call.attempts) == (CallStatus.CALLING, 1)


@pytest.mark.django_db
def test_ringing_then_a_person_answers_and_hears_the_script_with_the_press_9_prompt(
    org: Any, number: Number, fake: FakeTwilio, pipeline: Any, landline: Contact, poster: Poster
) -> None:
    call = _place(org, number, pipeline)
    sid = call.provider_call_id
    assert fake.call_progress(sid, "initiated", post=poster) == WebhookAnswer(
        200, "text/plain; charset=utf-8", b""
    )
    fake.call_progress(sid, "ringing", post=poster)
    call.refresh_from_db()
    assert call.status == CallStatus.RINGING

    root = _twiml(fake.call_answer(sid, answered_by="human", post=poster))

    [gather] = root
    assert gather.tag == "Gather"
    assert gather.attrib == {
        "action": call_urls(call).keypress,
        "method": "POST",
        "numDigits": "1",
        "timeout": "5",
    }
    assert _verbs(gather) == [("Say", SCRIPT), ("Say", OPT_OUT_PROMPT)]
    assert all(say.get("language") == "en-US" for say in gather)
    assert fake.call(sid).gather == (call_urls(call).keypress, "POST", 1)
    call.refresh_from_db()
    assert (call.status, call.answered_by) == (CallStatus.IN_PROGRESS, "human")


@pytest.mark.django_db
def test_a_voicemail_gets_the_message_without_the_prompt(
    org: Any, number: Number, fake: FakeTwilio, pipeline: Any, landline: Contact, poster: Poster
) -> None:
    call = _place(org, number, pipeline)

    root = _twiml(
        fake.call_answer(call.provider_call_id, answered_by="machine_end_beep", post=poster)
    )

    assert _verbs(root) == [("Say", SCRIPT)]
    assert root[0].get("language") == "en-US"
    assert fake.call(call.provider_call_id).hung_up  # nothing to wait for: it ends
    fake.call_progress(call.provider_call_id, "completed", duration=25, post=poster)
    call.refresh_from_db()
    assert (call.answered_by, call.outcome, call.credits) == ("machine", "voicemail", 1)


@pytest.mark.django_db
def test_pressing_9_puts_the_number_on_the_do_not_call_list_and_says_goodbye(
    org: Any, number: Number, fake: FakeTwilio, pipeline: Any, landline: Contact, poster: Poster
) -> None:
    call = _place(org, number, pipeline)
    fake.call_answer(call.provider_call_id, post=poster)

    root = _twiml(fake.call_press(call.provider_call_id, "9", post=poster))

    assert _verbs(root) == [("Say", GOODBYE_OPTED_OUT), ("Hangup", "")]
    assert fake.call(call.provider_call_id).hung_up
    entry = voice_do_not_call_entry(organization_id=org.pk, phone=PERSON)
    assert entry is not None and entry.number_id == number.pk
    call.refresh_from_db()
    assert call.opted_out
    with pytest.raises(SendRefused) as refused:
        _call_send(org, number)
    assert refused.value.code == "do_not_call"
    assert len(fake.call_requests()) == 1


@pytest.mark.django_db
def test_another_key_plays_the_message_again_without_an_opt_out(
    org: Any, number: Number, fake: FakeTwilio, pipeline: Any, landline: Contact, poster: Poster
) -> None:
    call = _place(org, number, pipeline)
    fake.call_answer(call.provider_call_id, post=poster)

    root = _twiml(fake.call_press(call.provider_call_id, "1", post=poster))

    [gather] = root  # the message and the prompt again, still listening for 9
    assert gather.tag == "Gather" and gather.get("numDigits") == "1"
    assert [child.tag for child in gather] == ["Say", "Say"]
    assert voice_do_not_call_entry(organization_id=org.pk, phone=PERSON) is None
    call.refresh_from_db()
    assert not call.opted_out


# --- status callbacks -----------------------------------------------------------------------


@pytest.mark.django_db
def test_completed_call_gets_its_duration_and_costs_one_credit_per_started_minute(
    org: Any, number: Number, fake: FakeTwilio, pipeline: Any, landline: Contact, poster: Poster
) -> None:
    call = _place(org, number, pipeline)
    sid = call.provider_call_id
    fake.call_progress(sid, "ringing", post=poster)
    fake.call_answer(sid, answered_by="human", post=poster)

    answer = fake.call_progress(sid, "completed", duration=61, post=poster)

    assert answer is not None and answer.status == 200
    call.refresh_from_db()
    assert (call.status, call.duration, call.credits) == (CallStatus.COMPLETED, 61, 2)
    assert (call.answered_by, call.outcome) == ("human", "answered")


@pytest.mark.parametrize(
    ("twilio_status", "status"),
    [
        ("busy", CallStatus.BUSY),
        ("no-answer", CallStatus.NO_ANSWER),
        ("failed", CallStatus.FAILED),
        ("canceled", CallStatus.CANCELED),
    ],
)
@pytest.mark.django_db
def test_unanswered_calls_end_with_twilios_status_and_cost_nothing(
    org: Any,
    number: Number,
    fake: FakeTwilio,
    pipeline: Any,
    landline: Contact,
    poster: Poster,
    twilio_status: str,
    status: str,
) -> None:
    call = _place(org, number, pipeline)
    fake.call_progress(call.provider_call_id, "ringing", post=poster)

    fake.call_progress(call.provider_call_id, twilio_status, post=poster)

    call.refresh_from_db()
    assert (call.status, call.duration, call.credits) == (status, 0, 0)


@pytest.mark.django_db
def test_a_callback_that_arrives_late_does_not_move_the_call_backwards(
    org: Any, number: Number, fake: FakeTwilio, pipeline: Any, landline: Contact, poster: Poster
) -> None:
    call = _place(org, number, pipeline)
    late: list[tuple[str, dict[str, str], dict[str, str]]] = []
    fake.call_progress(call.provider_call_id, "ringing", post=_held(late))
    fake.call_answer(call.provider_call_id, post=poster)
    fake.call_progress(call.provider_call_id, "completed", duration=30, post=poster)

    [(url, params, headers)] = late
    assert poster(url, params, headers).status == 200  # accepted, and ignored

    call.refresh_from_db()
    assert (call.status, call.duration, call.credits) == (CallStatus.COMPLETED, 30, 1)


@pytest.mark.django_db
def test_a_call_that_ended_hangs_up_if_twilio_asks_what_to_play(
    org: Any, number: Number, fake: FakeTwilio, pipeline: Any, landline: Contact, client: Client
) -> None:
    call = _place(org, number, pipeline)
    Call.objects.filter(pk=call.pk).update(status=CallStatus.CANCELED)

    response = _post_signed(
        client,
        _path(number, "answer", f"?call={call.pk}"),
        _status_params(call, "in-progress", AnsweredBy="human"),
        fake.auth_token,
    )

    root = _twiml(_answer(response))
    assert _verbs(root) == [("Hangup", "")]


# --- refused webhooks -----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_wrong_or_missing_signature_is_refused_with_403(
    org: Any, number: Number, fake: FakeTwilio, pipeline: Any, landline: Contact, client: Client
) -> None:
    call = _place(org, number, pipeline)
    held: list[tuple[str, dict[str, str], dict[str, str]]] = []
    fake.call_progress(call.provider_call_id, "completed", duration=61, post=_held(held))
    [(url, params, headers)] = held
    poster = client_poster(client)

    forged = dict(params, CallDuration="1")  # the signature covers every field
    assert poster(url, forged, headers).status == 403
    unsigned = {k: v for k, v in headers.items() if k != "X-Twilio-Signature"}
    assert poster(url, params, unsigned).status == 403
    other_call = url.replace(f"call={call.pk}", f"call={call.pk + 1}")  # and the query
    assert poster(other_call, params, headers).status == 403

    call.refresh_from_db()
    assert (call.status, call.duration) == (CallStatus.CALLING, 0)
    assert poster(url, params, headers).status == 200  # the real one still counts


@pytest.mark.django_db
def test_an_unknown_webhook_key_is_404(
    org: Any, number: Number, fake: FakeTwilio, pipeline: Any, landline: Contact, client: Client
) -> None:
    call = _place(org, number, pipeline)
    path = f"/voice/twilio/not-a-key/status?call={call.pk}"

    response = _post_signed(client, path, _status_params(call, "completed"), fake.auth_token)

    assert response.status_code == 404
    call.refresh_from_db()
    assert call.status == CallStatus.CALLING


@pytest.mark.parametrize("query", ["", "?call=", "?call=abc", "?call=-1", "?other=1"])
@pytest.mark.django_db
def test_a_missing_or_invalid_call_id_is_400(
    org: Any,
    number: Number,
    fake: FakeTwilio,
    pipeline: Any,
    landline: Contact,
    client: Client,
    query: str,
) -> None:
    call = _place(org, number, pipeline)

    response = _post_signed(
        client, _path(number, "status", query), _status_params(call, "completed"), fake.auth_token
    )

    assert response.status_code == 400
    assert b"call id" in response.content


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"CallStatus": "exploded"}, b"unknown CallStatus 'exploded'"),
        ({"CallStatus": ""}, b"unknown CallStatus ''"),
        ({"CallStatus": None}, b"missing field CallStatus"),
        ({"CallSid": "SM" + "0" * 32}, b"CallSid is not a Twilio call id"),
        ({"CallDuration": "61s"}, b"CallDuration must be a whole number of seconds"),
    ],
)
@pytest.mark.django_db
def test_a_malformed_status_callback_is_400_with_a_message(
    org: Any,
    number: Number,
    fake: FakeTwilio,
    pipeline: Any,
    landline: Contact,
    client: Client,
    fields: dict[str, str | None],
    message: bytes,
) -> None:
    call = _place(org, number, pipeline)
    params = _status_params(call, "completed", CallDuration="61")
    params.update(fields)
    params = {name: value for name, value in params.items() if value is not None}

    response = _post_signed(
        client, _path(number, "status", f"?call={call.pk}"), params, fake.auth_token
    )

    assert (response.status_code, response.content) == (400, message)
    call.refresh_from_db()
    assert (call.status, call.duration) == (CallStatus.CALLING, 0)


@pytest.mark.django_db
def test_another_organizations_call_is_unknown_on_this_numbers_address(
    org: Any,
    other_org: Any,
    number: Number,
    fake: FakeTwilio,
    pipeline: Any,
    landline: Contact,
    client: Client,
) -> None:
    """Their call id, under our number's webhook key and signed with our token: nothing of
    theirs is touched (their call is queued, never dispatched here)."""
    theirs_number = number_add(
        organization=other_org, provider="twilio", e164="+12025550178", config=fake.config()
    )
    Contact.objects.create(organization=other_org, phone=PERSON, number_type=NumberType.LANDLINE)
    theirs = _call_send(other_org, theirs_number)
    ours = _place(org, number, pipeline)
    before = Call.objects.values().get(pk=theirs.pk)
    query = f"?call={theirs.pk}"

    status = _post_signed(
        client,
        _path(number, "status", query),
        _status_params(ours, "completed", CallDuration="61"),
        fake.auth_token,
    )
    answer = _post_signed(
        client,
        _path(number, "answer", query),
        _status_params(ours, "in-progress", AnsweredBy="human"),
        fake.auth_token,
    )
    press = _post_signed(
        client,
        _path(number, "keypress", query),
        _status_params(ours, "in-progress", Digits="9"),
        fake.auth_token,
    )

    assert (status.status_code, status.content) == (404, b"unknown call")
    for response in (answer, press):  # Twilio is told to hang up, nothing is played
        root = _twiml(_answer(response))
        assert _verbs(root) == [("Hangup", "")]
    assert Call.objects.values().get(pk=theirs.pk) == before
    assert voice_do_not_call_entry(organization_id=other_org.pk, phone=PERSON) is None
    assert voice_do_not_call_entry(organization_id=org.pk, phone=PERSON) is None
    ours.refresh_from_db()
    assert (ours.status, ours.opted_out) == (CallStatus.CALLING, False)


# --- Twilio refusing, failing or not answering --------------------------------------------


@pytest.mark.django_db
def test_twilio_refusing_the_call_fails_it_without_a_retry(
    org: Any, number: Number, fake: FakeTwilio, pipeline: Any, landline: Contact
) -> None:
    fake.fail_next("invalid_to", on="Calls")

    call = _place(org, number, pipeline)
    pipeline.run(include_deferred=True)

    call.refresh_from_db()
    assert (call.status, call.error_code) == (CallStatus.FAILED, "21211")
    assert call.provider_call_id == ""
    assert len(fake.call_requests()) == 1 and fake.calls == {}


@pytest.mark.django_db
def test_a_twilio_server_error_leaves_the_call_unknown_and_not_placed_again_at_once(
    org: Any, number: Number, fake: FakeTwilio, pipeline: Any, landline: Contact
) -> None:
    fake.fail_next("server_error", on="Calls")

    call = _place(org, number, pipeline)
    pipeline.run(include_deferred=True)

    call.refresh_from_db()
    assert (call.status, call.error_code) == (CallStatus.UNKNOWN, "20500")
    assert len(fake.call_requests()) == 1


@pytest.mark.django_db
def test_a_timeout_leaves_the_call_unknown_and_its_callbacks_still_settle_it(
    org: Any,
    number: Number,
    fake: FakeTwilio,
    pipeline: Any,
    landline: Contact,
    poster: Poster,
    short_timeout: float,
) -> None:
    """Twilio took the call and its answer was lost: not placed again, and the callbacks
    (our call id is in their URLs) bring Twilio's id and the outcome."""
    fake.fail_next("hang", on="Calls", hang=short_timeout * 4, accept=True)

    call = _place(org, number, pipeline)
    pipeline.run(include_deferred=True)

    call.refresh_from_db()
    assert (call.status, call.error_code, call.provider_call_id) == (
        CallStatus.UNKNOWN,
        "timeout",
        "",
    )
    assert len(fake.call_requests()) == 1
    [sid] = fake.calls
    fake.call_answer(sid, post=poster)
    fake.call_progress(sid, "completed", duration=45, post=poster)
    call.refresh_from_db()
    assert (call.status, call.provider_call_id, call.credits) == (CallStatus.COMPLETED, sid, 1)


@pytest.mark.django_db
def test_a_rate_limited_call_is_placed_later_exactly_once(
    org: Any, number: Number, fake: FakeTwilio, pipeline: Any, landline: Contact
) -> None:
    fake.fail_next("rate_limited", on="Calls")
    # No inline wait for the number's calls-per-second between the two attempts.
    Number.objects.filter(pk=number.pk).update(calls_per_second=100)
    number.refresh_from_db()

    call = _place(org, number, pipeline)
    call.refresh_from_db()
    assert (call.status, call.error_code) == (CallStatus.QUEUED, "20429")
    pipeline.run(include_deferred=True)

    call.refresh_from_db()
    assert call.status == CallStatus.CALLING
    assert [r.status for r in fake.call_requests()] == [429, 201]
    assert list(fake.calls) == [call.provider_call_id]


# --- reconciliation: what a timeout, a crash or a lost callback left open -----------------


def _lookups(fake: FakeTwilio) -> list[dict[str, str]]:
    """The Calls list reads the fake received (find_call's look-ups), their filters."""
    return [r.query for r in fake.requests if r.method == "GET" and r.path.endswith("Calls.json")]


def _reconcile_later(pipeline: Any, after: timedelta) -> None:
    from openline.messaging.services.calls import calls_reconcile

    later = timezone.now() + after + timedelta(seconds=1)
    pipeline.run(lambda: calls_reconcile(now=later), include_deferred=True)


@pytest.mark.django_db
def test_a_call_twilio_did_not_take_is_placed_again_once_twilio_says_it_has_none(
    org: Any, number: Number, fake: FakeTwilio, pipeline: Any, landline: Contact
) -> None:
    """A 5xx: Twilio may have the call. After the grace, its Calls list is read (queued,
    then dialed since the call was made); no such call, so it is placed, once."""
    from openline.messaging.services.calls import CALL_UNKNOWN_GRACE, calls_reconcile

    fake.fail_next("server_error", on="Calls")
    call = _place(org, number, pipeline)
    assert call.status == CallStatus.UNKNOWN and fake.calls == {}
    assert calls_reconcile(now=timezone.now()) == 0 and _lookups(fake) == []  # too soon

    _reconcile_later(pipeline, CALL_UNKNOWN_GRACE)
    _reconcile_later(pipeline, CALL_UNKNOWN_GRACE)  # again: nothing left to settle

    call.refresh_from_db()
    assert [r.status for r in fake.call_requests()] == [500, 201]
    assert list(fake.calls) == [call.provider_call_id]
    assert (call.status, call.attempts) == (CallStatus.CALLING, 2)
    first, second = _lookups(fake)
    assert (first["To"], first["From"], first["Status"]) == (PERSON, TWILIO_E164, "queued")
    assert second["StartTime>"] == (call.created_at - timedelta(minutes=5)).date().isoformat()


@pytest.mark.django_db
def test_a_call_twilio_took_during_a_timeout_is_adopted_never_placed_twice(
    org: Any,
    number: Number,
    fake: FakeTwilio,
    pipeline: Any,
    landline: Contact,
    poster: Poster,
    short_timeout: float,
) -> None:
    """Twilio took the call, dialed it and it was answered, and every callback was lost:
    the look-up brings Twilio's id, outcome and billed duration; nobody is called twice."""
    from openline.messaging.services.calls import CALL_UNKNOWN_GRACE

    fake.fail_next("hang", on="Calls", hang=short_timeout * 4, accept=True)
    call = _place(org, number, pipeline)
    assert call.status == CallStatus.UNKNOWN
    [sid] = fake.calls
    lost: list[Any] = []
    fake.call_progress(sid, "ringing", post=_held(lost))
    fake.call_progress(sid, "completed", duration=75, answered_by="human", post=_held(lost))

    _reconcile_later(pipeline, CALL_UNKNOWN_GRACE)

    call.refresh_from_db()
    assert len(fake.call_requests()) == 1
    assert (call.status, call.provider_call_id) == (CallStatus.COMPLETED, sid)
    assert (call.duration, call.credits, call.answered_by) == (75, 2, "human")
    # The lost callbacks arriving now change nothing.
    for url, params, headers in lost:
        assert poster(url, params, headers).status == 200
    call.refresh_from_db()
    assert (call.status, call.duration, call.credits) == (CallStatus.COMPLETED, 75, 2)


@pytest.mark.django_db
def test_a_call_claimed_by_a_worker_that_died_is_placed_once(
    org: Any,
    number: Number,
    fake: FakeTwilio,
    pipeline: Any,
    landline: Contact,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Marked calling, then the worker died before it asked Twilio: after CALL_STUCK_AFTER
    Twilio is asked, has nothing, and the call is placed."""
    from openline.messaging.services.calls import CALL_STUCK_AFTER, _claim

    with django_capture_on_commit_callbacks(execute=False):  # the dispatch never runs
        call = _call_send(org, number)
        _claim(call.pk)
    _reconcile_later(pipeline, CALL_STUCK_AFTER)

    call.refresh_from_db()
    assert [r.status for r in fake.call_requests()] == [201]
    assert (call.status, call.provider_call_id) == (CallStatus.CALLING, next(iter(fake.calls)))


@pytest.mark.django_db
def test_when_twilio_cannot_be_asked_nothing_is_placed(
    org: Any, number: Number, fake: FakeTwilio, pipeline: Any, landline: Contact
) -> None:
    from openline.messaging.services.calls import CALL_UNKNOWN_GRACE

    fake.fail_next("server_error", on="Calls")
    call = _place(org, number, pipeline)
    # Twilio unreachable (nothing listens on port 9): the look-up cannot tell.
    Number.objects.filter(pk=number.pk).update(
        config={**number.config, "api_base": "http://127.0.0.1:9"}
    )
    _reconcile_later(pipeline, CALL_UNKNOWN_GRACE)

    call.refresh_from_db()
    assert call.status == CallStatus.UNKNOWN
    assert len(fake.call_requests()) == 1


@pytest.mark.django_db
def test_a_call_whose_final_callback_was_lost_takes_twilios_status(
    org: Any, number: Number, fake: FakeTwilio, pipeline: Any, landline: Contact, poster: Poster
) -> None:
    """Answered, then the "completed" callback never came: past its time limit the call
    reads Twilio's record (the call resource) and is billed by its duration."""
    from openline.messaging.services.calls import CALL_STUCK_AFTER, calls_reconcile

    call = _place(org, number, pipeline)
    sid = call.provider_call_id
    fake.call_progress(sid, "ringing", post=poster)
    _twiml(fake.call_answer(sid, answered_by="human", post=poster))
    fake.call_progress(sid, "completed", duration=61, post=_held([]))
    call.refresh_from_db()
    assert call.status == CallStatus.IN_PROGRESS
    assert calls_reconcile(now=timezone.now() + CALL_STUCK_AFTER) == 0  # may still be on

    _reconcile_later(pipeline, timedelta(seconds=call.time_limit) + CALL_STUCK_AFTER)

    call.refresh_from_db()
    assert (call.status, call.duration, call.credits) == (CallStatus.COMPLETED, 61, 2)
    assert [r.path for r in fake.requests if r.method == "GET"] == [
        f"/2010-04-01/Accounts/{fake.account_sid}/Calls/{sid}.json"
    ]


# --- the adapter on its own -----------------------------------------------------------------

HOOK = "https://openline.example.org/voice/twilio/key/status?call=1"
SID = "CA" + "0123456789abcdef" * 2


def _hook(**fields: str) -> WebhookRequest:
    return WebhookRequest(
        url=HOOK, params={k: [v] for k, v in {"CallSid": SID, **fields}.items()}, headers={}
    )


@pytest.mark.parametrize(
    ("twilio_status", "status"),
    [
        ("queued", "calling"),
        ("initiated", "calling"),
        ("ringing", "ringing"),
        ("in-progress", "in_progress"),
        ("completed", "completed"),
        ("busy", "busy"),
        ("no-answer", "no_answer"),
        ("failed", "failed"),
        ("canceled", "canceled"),
    ],
)
def test_twilio_call_statuses_map_onto_ours(twilio_status: str, status: str) -> None:
    update = get_provider("twilio").parse_call_status(_hook(CallStatus=twilio_status))
    assert (update.provider_call_id, update.status) == (SID, status)
    assert status in CallStatus.values


@pytest.mark.parametrize(
    ("answered_by", "ours"),
    [
        ("human", "human"),
        ("machine_start", "machine"),
        ("machine_end_beep", "machine"),
        ("machine_end_silence", "machine"),
        ("machine_end_other", "machine"),
        ("fax", "machine"),
        ("unknown", ""),
        ("something_new", ""),
    ],
)
def test_answering_machine_verdicts_map_to_human_machine_or_not_known(
    answered_by: str, ours: str
) -> None:
    twilio = get_provider("twilio")
    assert twilio.parse_answer(_hook(AnsweredBy=answered_by)) == (SID, ours)
    update = twilio.parse_call_status(_hook(CallStatus="completed", AnsweredBy=answered_by))
    assert update.answered_by == ours
    assert twilio.parse_answer(_hook()) == (SID, "")


def test_call_duration_counts_on_completed_calls_only_and_error_codes_are_kept() -> None:
    twilio = get_provider("twilio")
    completed = twilio.parse_call_status(_hook(CallStatus="completed", CallDuration="61"))
    assert completed.duration == 61
    busy = twilio.parse_call_status(_hook(CallStatus="busy", CallDuration="0", ErrorCode="13"))
    assert (busy.duration, busy.error_code) == (0, "13")
    assert twilio.parse_keypress(_hook(Digits="9")) == (SID, "9")
    with pytest.raises(WebhookError, match="missing field CallSid"):
        twilio.parse_keypress(WebhookRequest(url=HOOK, params={"Digits": ["9"]}, headers={}))


def test_twiml_plays_a_recording_and_escapes_text() -> None:
    twilio = get_provider("twilio")
    keypress = "https://openline.example.org/voice/twilio/key/keypress?call=1&x=<y>"
    recording = CallScript(
        play_url="https://cdn.example.org/a.mp3?v=1&w=2",
        language="es-US",
        opt_out_prompt="Para no recibir estas llamadas, oprima 9.",
    )
    content_type, body = twilio.call_document(recording, keypress_url=keypress)
    assert content_type == "application/xml"
    [gather] = ElementTree.fromstring(body)
    assert gather.get("action") == keypress
    assert _verbs(gather) == [
        ("Play", "https://cdn.example.org/a.mp3?v=1&w=2"),
        ("Say", "Para no recibir estas llamadas, oprima 9."),
    ]
    assert gather[1].get("language") == "es-US"
    _, said = twilio.call_document(CallScript(say="Tom & Jerry <3"), keypress_url=keypress)
    assert _verbs(ElementTree.fromstring(said)) == [("Say", "Tom & Jerry <3")]
    _, bye = twilio.call_document(None, keypress_url="")
    assert _verbs(ElementTree.fromstring(bye)) == [("Hangup", "")]


# --- the fake's Calls API: as strict as Twilio's ----------------------------------------------


def _create(fake: FakeTwilio, data: dict[str, Any], **kwargs: Any) -> httpx.Response:
    kwargs.setdefault("auth", (fake.account_sid, fake.auth_token))
    return httpx.post(
        f"{fake.url}/2010-04-01/Accounts/{fake.account_sid}/Calls.json", data=data, **kwargs
    )


CALL = {"To": PERSON, "From": TWILIO_E164, "Url": "https://openline.example.org/answer?call=1"}


def test_fake_creates_calls_like_twilio_and_never_dedupes(fake: FakeTwilio) -> None:
    first, again = _create(fake, CALL), _create(fake, CALL)
    assert (first.status_code, again.status_code) == (201, 201)
    payload = first.json()
    assert CALL_SID.match(payload["sid"]) and payload["sid"] != again.json()["sid"]
    assert (payload["status"], payload["to"], payload["from"]) == ("queued", PERSON, TWILIO_E164)
    assert payload["direction"] == "outbound-api"
    assert len(fake.calls) == 2
    fetched = httpx.get(
        f"{fake.url}{payload['uri']}", auth=(fake.account_sid, fake.auth_token)
    ).json()
    assert fetched["sid"] == payload["sid"]
    assert _create(fake, CALL, auth=(fake.account_sid, "wrong")).status_code == 401


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"To": ""}, 21201),
        ({"To": "+1202555"}, 21211),
        ({"From": ""}, 21213),
        ({"From": "twilio"}, 21212),
        ({"Url": ""}, 21205),
        ({"Url": "/answer"}, 21205),
        ({"StatusCallback": "status"}, 21609),
        ({"Timeout": "601"}, 20001),
        ({"TimeLimit": "0"}, 20001),
        ({"MachineDetection": "Sometimes"}, 20001),
        ({"StatusCallbackEvent": ["ringing", "hungup"]}, 20001),
    ],
)
def test_fake_refuses_what_twilio_refuses(
    fake: FakeTwilio, changes: dict[str, Any], code: int
) -> None:
    response = _create(fake, {**CALL, **changes})
    assert response.status_code == 400
    assert set(response.json()) == {"code", "message", "more_info", "status"}
    assert (response.json()["code"], response.json()["status"]) == (code, 400)
    assert fake.calls == {}


def test_fake_only_reports_asked_for_events_and_amd_only_when_asked(fake: FakeTwilio) -> None:
    sid = _create(fake, {**CALL, "StatusCallback": "https://openline.example.org/s"}).json()["sid"]
    sent: list[tuple[str, dict[str, str], dict[str, str]]] = []
    assert fake.call_progress(sid, "ringing", post=_held(sent)) is None  # not asked for
    with pytest.raises(ValueError, match="MachineDetection"):
        fake.call_progress(sid, "completed", answered_by="human", post=_held(sent))
    fake.call_progress(sid, "completed", duration=61, post=_held(sent))  # always reported
    [(url, params, headers)] = sent
    assert (params["CallStatus"], params["CallDuration"], params["Duration"]) == (
        "completed",
        "61",
        "2",
    )
    assert "AnsweredBy" not in params
    assert parse_qs(url.partition("?")[2]) == {}
    with pytest.raises(ValueError, match="no <Gather>"):
        fake.call_press(sid, "9", post=_held(sent))
