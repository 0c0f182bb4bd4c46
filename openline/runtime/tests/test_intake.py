"""The webhook intake, driven through the real ASGI app (openline.asgi.application) as
Twilio would call it: signed form posts to /hooks/twilio/<key>/inbound|status.

The intake's writer thread has its own database connection, hence transactional tests."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
import pytest
from django.test import override_settings
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from openline.contacts.models import ConsentEvent, ConsentKind, ConsentSource
from openline.contacts.phones import normalize_phone
from openline.messaging.models import (
    Conversation,
    ConversationStatus,
    Direction,
    InboundEvent,
    Message,
    MessageStatus,
)
from openline.messaging.services.inbound import inbound_process_pending
from openline.messaging.services.outbound import SendRefused, message_send
from openline.providers.services import number_add
from openline.providers.twilio.provider import MESSAGE_SID
from openline.providers.twilio.tests.fake import FakeTwilio
from openline.providers.twilio.tests.support import (
    SEEKER,
    TWILIO_E164,
    asgi_poster,
    asgi_request,
    inbound_params,
    message_sid,
    post_signed,
    twilio_signature,
)

FIXTURES = Path(__file__).resolve().parents[2] / "providers" / "twilio" / "fixtures"
TWIML_EMPTY = re.compile(r"^<\?xml[^>]*\?>\s*<Response\s*(/>|>\s*</Response>)$")

pytestmark = pytest.mark.django_db(transaction=True)


def _inbound_path(number: Any) -> str:
    return f"/hooks/twilio/{number.webhook_key}/inbound"


def _status_path(number: Any) -> str:
    return f"/hooks/twilio/{number.webhook_key}/status"


def _nothing_stored() -> bool:
    return not InboundEvent.objects.exists() and not Message.objects.exists()


# --- accepted inbound texts -----------------------------------------------------------


def test_signed_inbound_text_is_acked_with_twiml_and_becomes_a_waiting_conversation(
    number: Any, fake: FakeTwilio
) -> None:
    raw = (FIXTURES / "inbound_sms.txt").read_text().strip().encode()
    params = {k: v[0] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
    signature = twilio_signature(fake.auth_token, _inbound_path(number), params)
    response = asgi_request(
        "POST",
        _inbound_path(number),
        content=raw,
        headers={
            "X-Twilio-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    assert TWIML_EMPTY.match(response.text)

    event = InboundEvent.objects.get()
    assert event.provider_message_id == params["MessageSid"]
    assert (event.from_number, event.processed_at) == (SEEKER, None)
    assert event.organization_id == number.organization_id

    assert inbound_process_pending() == 1
    conversation = Conversation.objects.get()
    assert conversation.status == ConversationStatus.WAITING
    assert (conversation.number_id, conversation.contact.phone) == (number.pk, SEEKER)
    [message] = conversation.messages.all()
    assert message.direction == Direction.INBOUND
    assert message.status == MessageStatus.RECEIVED
    assert message.body == "Hi I don't know who else to talk to 😞"
    assert message.provider_message_id == params["MessageSid"]


def test_media_urls_of_an_mms_are_kept_on_the_event(number: Any, fake: FakeTwilio) -> None:
    params = inbound_params(
        body="",
        NumMedia="2",
        MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
        MediaContentType0="image/jpeg",
        MediaUrl1="https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME2",
        MediaContentType1="image/png",
    )
    assert post_signed(_inbound_path(number), params, fake.auth_token).status_code == 200
    assert InboundEvent.objects.get().media_urls == [params["MediaUrl0"], params["MediaUrl1"]]


def test_same_message_sid_posted_twice_stores_one_event_and_one_message(
    number: Any, fake: FakeTwilio
) -> None:
    params = inbound_params(body="are you there")
    assert post_signed(_inbound_path(number), params, fake.auth_token).status_code == 200
    assert post_signed(_inbound_path(number), params, fake.auth_token).status_code == 200
    inbound_process_pending()
    # Twilio retries after our answer was lost, even once it has been processed.
    assert post_signed(_inbound_path(number), params, fake.auth_token).status_code == 200
    inbound_process_pending()
    assert InboundEvent.objects.count() == 1
    assert Message.objects.count() == 1


def test_concurrent_retries_of_one_message_in_one_write_batch_store_it_once(
    number: Any, fake: FakeTwilio
) -> None:
    from openline.asgi import application

    params = inbound_params(body="hello?")
    signature = twilio_signature(fake.auth_token, _inbound_path(number), params)

    async def burst() -> list[int]:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            requests = [
                c.post(
                    _inbound_path(number), data=params, headers={"X-Twilio-Signature": signature}
                )
                for _ in range(20)
            ]
            return [r.status_code for r in await asyncio.gather(*requests)]

    assert asyncio.run(burst()) == [200] * 20
    assert InboundEvent.objects.count() == 1


# --- who writes: the event loop while the lock is free, the writer thread otherwise -----


def _written_by() -> dict[str, int]:
    from openline.runtime.intake import writer

    return dict(writer.stats)


def test_on_sqlite_the_event_loop_writes_while_the_write_lock_is_free(
    number: Any, fake: FakeTwilio
) -> None:
    from django.db import connection

    before = _written_by()
    assert post_signed(_inbound_path(number), inbound_params(), fake.auth_token).status_code == 200
    after = _written_by()
    inline = after["inline"] - before["inline"]
    thread = after["thread"] - before["thread"]
    if connection.vendor == "sqlite":
        assert (inline, thread) == (1, 0)
    else:  # PostgreSQL: always the writer thread
        assert (inline, thread) == (0, 1)
    assert InboundEvent.objects.count() == 1


class _LockHolder:
    """Another writer (processing, say) holding the write lock until told to let go."""

    def __init__(self) -> None:
        import threading

        self.holding, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._hold)

    def _hold(self) -> None:
        from django.db import connection as db

        from openline.runtime.gate import write_gate

        try:
            with write_gate.background():
                self.holding.set()
                self.release.wait(10)
        finally:
            db.close()

    def __enter__(self) -> _LockHolder:
        self.thread.start()
        assert self.holding.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.thread.join(5)


def test_a_webhook_that_finds_the_write_lock_taken_is_journaled_and_answered_at_once(
    number: Any, fake: FakeTwilio
) -> None:
    """Processing holds the lock: the event loop does not wait for it. On SQLite the event
    goes to the overflow journal and the answer comes at once; processing moves it into
    InboundEvent before its next batch. (PostgreSQL: the writer thread, no lock to wait
    for.)"""
    from openline.runtime.gate import write_gate
    from openline.runtime.journal import journal_count
    from openline.runtime.processing_loop import process_waiting

    params = inbound_params(body="is anyone there")
    before = _written_by()
    with _LockHolder():
        response = post_signed(_inbound_path(number), params, fake.auth_token)
        assert response.status_code == 200
        # Twilio retries while it is still journaled: kept twice there, stored once.
        assert post_signed(_inbound_path(number), params, fake.auth_token).status_code == 200
        after = _written_by()
        if write_gate.shared_file():
            assert after["journal"] - before["journal"] == 2
            assert (journal_count(), InboundEvent.objects.count()) == (2, 0)
            health = asgi_request("GET", "/healthz").json()
            assert health["tasks"]["inbound_pending"] == 2  # journaled ones count as waiting
        else:
            assert after["thread"] - before["thread"] == 2
    assert process_waiting() == 1  # the processing loop's step moves the journal first
    assert journal_count() == 0
    # Once more after it was moved: the intake's own dedup, as always.
    assert post_signed(_inbound_path(number), params, fake.auth_token).status_code == 200
    inbound_process_pending()
    assert InboundEvent.objects.get().provider_message_id == params["MessageSid"]
    assert Message.objects.get().body == "is anyone there"


def test_with_the_journal_off_a_webhook_that_finds_the_lock_taken_waits_for_the_writer(
    number: Any, fake: FakeTwilio
) -> None:
    """OPENLINE_INTAKE_JOURNAL=0 (a switch for measuring): nothing goes to the journal; the
    writer thread waits for the lock, stores the event and only then is it answered."""
    import threading

    from openline.runtime.journal import journal_count

    params = inbound_params()
    before = _written_by()
    with override_settings(OPENLINE_INTAKE_JOURNAL=False), _LockHolder() as holder:
        threading.Timer(0.3, holder.release.set).start()
        assert post_signed(_inbound_path(number), params, fake.auth_token).status_code == 200
    after = _written_by()
    assert (after["journal"] - before["journal"], after["thread"] - before["thread"]) == (0, 1)
    assert journal_count() == 0
    assert InboundEvent.objects.get().provider_message_id == params["MessageSid"]


def test_journaled_events_moved_again_after_a_crash_are_stored_once(
    number: Any, fake: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash between moving journaled events into InboundEvent and deleting them from
    the journal moves them again: the second move stores nothing new."""
    from openline.runtime import journal
    from openline.runtime.gate import write_gate

    if not write_gate.shared_file():
        assert journal.journal_move() == 0  # SQLite's alone: PostgreSQL writers never wait
        return
    with _LockHolder():
        for body in ("one", "two"):
            params = inbound_params(body=body)
            assert post_signed(_inbound_path(number), params, fake.auth_token).status_code == 200
    assert journal.journal_count() == 2

    def crash(self: Any, up_to: int) -> None:
        raise RuntimeError("killed after the commit")

    monkeypatch.setattr(journal.Journal, "forget", crash)
    with pytest.raises(RuntimeError):
        journal.journal_move()
    assert (InboundEvent.objects.count(), journal.journal_count()) == (2, 2)
    monkeypatch.undo()
    assert journal.journal_move() == 2
    assert (InboundEvent.objects.count(), journal.journal_count()) == (2, 0)
    assert inbound_process_pending() == 2
    assert sorted(Message.objects.values_list("body", flat=True)) == ["one", "two"]


def test_with_inline_writes_off_the_writer_thread_writes_everything(
    number: Any, fake: FakeTwilio
) -> None:
    before = _written_by()
    with override_settings(OPENLINE_INTAKE_INLINE=False):
        params = inbound_params()
        assert post_signed(_inbound_path(number), params, fake.auth_token).status_code == 200
    after = _written_by()
    assert (after["inline"] - before["inline"], after["thread"] - before["thread"]) == (0, 1)
    assert InboundEvent.objects.get().provider_message_id == params["MessageSid"]


# --- signatures -------------------------------------------------------------------------


def test_bad_or_missing_signature_is_refused_and_nothing_is_stored(
    number: Any, fake: FakeTwilio
) -> None:
    params = inbound_params()
    path = _inbound_path(number)
    wrong_token = post_signed(path, params, "not-the-auth-token")
    assert wrong_token.status_code == 403
    tampered = dict(params, Body="something else")
    signature = twilio_signature(fake.auth_token, path, params)
    response = asgi_request("POST", path, data=tampered, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403
    missing = asgi_request("POST", path, data=params)
    assert missing.status_code == 403
    assert "X-Twilio-Signature" in missing.text
    assert _nothing_stored()


def test_signature_for_another_public_url_is_refused(number: Any, fake: FakeTwilio) -> None:
    params = inbound_params()
    response = post_signed(
        _inbound_path(number), params, fake.auth_token, base="https://elsewhere.example.com"
    )
    assert response.status_code == 403
    assert _nothing_stored()


def test_behind_a_proxy_the_signature_covers_the_configured_public_url(
    number: Any, fake: FakeTwilio
) -> None:
    params = inbound_params()
    with override_settings(PUBLIC_URL="https://sms.example.org"):
        # The app server sees http://testserver; Twilio called the public https address.
        internal = post_signed(
            _inbound_path(number), params, fake.auth_token, base="http://testserver"
        )
        assert internal.status_code == 403
        public = post_signed(
            _inbound_path(number), params, fake.auth_token, base="https://sms.example.org"
        )
        assert public.status_code == 200, public.text
        # Twilio's SDKs accept the signature with the default port spelled out, so do we.
        again = inbound_params()
        with_port = post_signed(
            _inbound_path(number), again, fake.auth_token, base="https://sms.example.org:443"
        )
        assert with_port.status_code == 200
    assert InboundEvent.objects.count() == 2


def test_query_string_is_part_of_the_signed_url(number: Any, fake: FakeTwilio) -> None:
    params = inbound_params()
    path = _inbound_path(number) + "?inbox=main"
    assert post_signed(path, params, fake.auth_token).status_code == 200
    unsigned_query = twilio_signature(fake.auth_token, _inbound_path(number), inbound_params())
    response = asgi_request(
        "POST", path, data=inbound_params(), headers={"X-Twilio-Signature": unsigned_query}
    )
    assert response.status_code == 403
    assert InboundEvent.objects.count() == 1


# --- addresses and methods --------------------------------------------------------------


def test_unknown_or_malformed_webhook_address_is_404(number: Any, fake: FakeTwilio) -> None:
    params = inbound_params()
    for path in (
        "/hooks/twilio/AAAAAAAAAAAAAAAA/inbound",  # well-formed key that does not exist
        f"/hooks/sandbox/{number.webhook_key}/inbound",  # the number belongs to twilio
        f"/hooks/twilio/{number.webhook_key}/inbound/",  # no normalisation of paths
        f"/hooks/twilio/{number.webhook_key}/outbound",
        "/hooks/twilio/" + "k" * 33 + "/inbound",  # longer than any webhook key
    ):
        response = post_signed(path, params, fake.auth_token)
        assert response.status_code == 404, path
    assert _nothing_stored()


def test_inactive_number_no_longer_receives(number: Any, fake: FakeTwilio) -> None:
    number.is_active = False
    number.save()
    response = post_signed(_inbound_path(number), inbound_params(), fake.auth_token)
    assert response.status_code == 404
    assert _nothing_stored()


def test_get_is_not_allowed(number: Any) -> None:
    response = asgi_request("GET", _inbound_path(number) + "?Body=hi")
    assert response.status_code == 405
    assert _nothing_stored()


# --- malformed texts are refused with a reason, and nothing is stored --------------------


@pytest.mark.parametrize(
    ("fields", "status", "reason"),
    [
        ({"To": "+12025550178"}, 400, "receives texts for +12025550177"),
        ({"From": "+1555"}, 400, "invalid From number"),
        ({"From": ""}, 400, "missing field From"),
        ({"MessageSid": "SM123"}, 400, "MessageSid"),
        ({"MessageSid": "XX" + "a" * 32}, 400, "MessageSid"),
        ({"Body": "x" * 1601}, 413, "the limit is 1600"),
        ({"Body": "nul \x00 byte"}, 400, "NUL"),
    ],
    ids=[
        "to-not-this-number",
        "invalid-from",
        "no-from",
        "short-sid",
        "foreign-sid",
        "body-over-1600",
        "nul-in-body",
    ],
)
def test_malformed_inbound_text_is_refused_and_nothing_is_stored(
    number: Any, fake: FakeTwilio, fields: dict[str, str], status: int, reason: str
) -> None:
    params = inbound_params(**fields)
    if not fields.get("From", "x"):
        del params["From"]
    response = post_signed(_inbound_path(number), params, fake.auth_token)
    assert response.status_code == status
    assert reason in response.text
    assert _nothing_stored()


def test_body_of_exactly_1600_characters_is_accepted(number: Any, fake: FakeTwilio) -> None:
    params = inbound_params(body="é" * 1600)
    assert post_signed(_inbound_path(number), params, fake.auth_token).status_code == 200
    assert len(InboundEvent.objects.get().body) == 1600


def test_non_utf8_body_is_refused(number: Any, fake: FakeTwilio) -> None:
    signature = twilio_signature(fake.auth_token, _inbound_path(number), inbound_params())
    for raw in (b"Body=caf\xe9&From=%2B12025550123", b"Body=caf%E9&From=%2B12025550123"):
        response = asgi_request(
            "POST",
            _inbound_path(number),
            content=raw,
            headers={
                "X-Twilio-Signature": signature,
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        assert response.status_code == 400
        assert "UTF-8" in response.text or "malformed" in response.text
    assert _nothing_stored()


def test_oversize_request_is_refused_before_it_is_read(number: Any, fake: FakeTwilio) -> None:
    from django.conf import settings as django_settings

    limit = django_settings.OPENLINE_MAX_WEBHOOK_BYTES
    params = inbound_params(Padding="p" * limit)
    response = post_signed(_inbound_path(number), params, fake.auth_token)
    assert response.status_code == 413

    async def chunks() -> Any:  # no Content-Length: the limit applies while reading
        for _ in range(limit // 4096 + 2):
            yield b"x" * 4096

    streamed = asgi_request("POST", _inbound_path(number), content=chunks())  # type: ignore[arg-type]
    assert streamed.status_code == 413
    assert _nothing_stored()


def test_num_media_with_non_ascii_digits_is_not_a_server_error(
    number: Any, fake: FakeTwilio
) -> None:
    response = post_signed(_inbound_path(number), inbound_params(NumMedia="²"), fake.auth_token)
    assert response.status_code < 500


# --- fuzz: nothing a sender does produces a 5xx or a half-stored row ---------------------

FIELD_NAMES = [
    "MessageSid",
    "From",
    "To",
    "Body",
    "NumMedia",
    "MediaUrl0",
    "MessageStatus",
    "ErrorCode",
    "AccountSid",
    "SmsSid",
]
_phones = st.sampled_from(
    [
        SEEKER,
        TWILIO_E164,
        "+1555",
        "",
        "2025550123",
        "+44 20 7946 0958",
        "+999999",
        "++1",
        "+12025550123\x00",
        "tel:+12025550123",
        "+1202555012３",
    ]
)
_values = st.one_of(
    st.text(max_size=40),
    _phones,
    st.sampled_from(["delivered", "sent", "undelivered", "21610", "x" * 1601, ""]),
    st.builds(message_sid),
)
# NumMedia reaches int(), including non-ASCII digits such as '²'.
_num_media = st.text(max_size=4)
_fields = st.dictionaries(
    st.one_of(st.sampled_from(FIELD_NAMES), st.text(min_size=1, max_size=12)),
    _values,
    max_size=8,
)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    fields=_fields,
    num_media=st.none() | _num_media,
    raw=st.none() | st.binary(max_size=300),
    signed=st.booleans(),
    kind=st.sampled_from(["inbound", "status"]),
    base_valid=st.booleans(),
)
def test_random_webhooks_never_cause_a_server_error_or_a_half_stored_row(
    number: Any,
    fake: FakeTwilio,
    fields: dict[str, str],
    num_media: str | None,
    raw: bytes | None,
    signed: bool,
    kind: str,
    base_valid: bool,
) -> None:
    path = f"/hooks/twilio/{number.webhook_key}/{kind}"
    params = {**(inbound_params() if base_valid else {}), **fields}
    if num_media is not None:
        params["NumMedia"] = num_media
    body = raw if raw is not None else urlencode(params).encode()
    try:
        parsed = {k: v for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
    except (UnicodeDecodeError, ValueError):
        parsed = {}
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signed:
        headers["X-Twilio-Signature"] = _signature_for(fake.auth_token, path, parsed)
    response = asgi_request("POST", path, content=body, headers=headers)
    assert response.status_code < 500, response.text
    event(f"{kind} {response.status_code}")
    assert response.status_code in (200, 400, 403, 413)
    for row in InboundEvent.objects.all():
        assert normalize_phone(row.from_number) == row.from_number
        assert MESSAGE_SID.match(row.provider_message_id)
        assert len(row.body) <= 1600 and "\x00" not in row.body
        assert row.number_id == number.pk


def _signature_for(token: str, path: str, parsed: dict[str, list[str]]) -> str:
    from django.conf import settings as django_settings
    from twilio.request_validator import RequestValidator

    class _Multi(dict):  # type: ignore[type-arg]
        def getlist(self, name: str) -> list[str]:
            return self[name]

    return RequestValidator(token).compute_signature(
        django_settings.PUBLIC_URL + path, _Multi(parsed)
    )


# --- status callbacks -------------------------------------------------------------------


def _sent_message(org: Any, pipeline: Any, to: str = SEEKER) -> Message:
    message = pipeline.run(
        lambda: message_send(organization_id=org.pk, to=to, body="We're here for you.")
    )
    message.refresh_from_db()
    assert MESSAGE_SID.match(message.provider_message_id)
    return message


def test_status_callbacks_only_move_a_message_forward(
    org: Any, number: Any, fake: FakeTwilio, pipeline: Any
) -> None:
    message = _sent_message(org, pipeline)
    sid = message.provider_message_id
    assert fake.deliver_status(sid, "sent", post=asgi_poster) == 200
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    assert fake.deliver_status(sid, "delivered", post=asgi_poster) == 200
    assert fake.deliver_status(sid, "sent", post=asgi_poster) == 200  # late, out of order
    assert fake.deliver_status(sid, "queued", post=asgi_poster) == 200
    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED


def test_duplicate_status_callback_is_acknowledged_and_ignored(
    org: Any, number: Any, fake: FakeTwilio, pipeline: Any, published: list[dict[str, Any]]
) -> None:
    message = _sent_message(org, pipeline)
    assert fake.deliver_status(message.provider_message_id, "delivered", post=asgi_poster) == 200
    message.refresh_from_db()
    changed_at = message.status_changed_at
    before = len(published)
    assert fake.deliver_status(message.provider_message_id, "delivered", post=asgi_poster) == 200
    message.refresh_from_db()
    assert (message.status, message.status_changed_at) == (MessageStatus.DELIVERED, changed_at)
    assert len(published) == before  # no second "message.status" event


def test_status_callback_for_an_unknown_message_is_acknowledged_and_ignored(
    number: Any, fake: FakeTwilio
) -> None:
    params = {
        "MessageSid": message_sid(),
        "MessageStatus": "delivered",
        "AccountSid": fake.account_sid,
        "To": SEEKER,
        "From": TWILIO_E164,
    }
    response = post_signed(_status_path(number), params, fake.auth_token)
    assert response.status_code == 200
    assert not Message.objects.exists()


def test_undelivered_callback_with_21610_records_an_opt_out(
    org: Any, number: Any, fake: FakeTwilio, pipeline: Any
) -> None:
    message = _sent_message(org, pipeline)
    raw = (FIXTURES / "status_undelivered_21610.txt").read_text().strip()
    params = {k: v[0] for k, v in parse_qs(raw).items()}
    params["MessageSid"] = params["SmsSid"] = message.provider_message_id
    assert post_signed(_status_path(number), params, fake.auth_token).status_code == 200

    message.refresh_from_db()
    assert (message.status, message.error_code) == (MessageStatus.UNDELIVERED, "21610")
    opt_out = ConsentEvent.objects.get(phone=SEEKER)
    assert (opt_out.kind, opt_out.source) == (ConsentKind.OPT_OUT, ConsentSource.PROVIDER)
    assert opt_out.number_id == number.pk
    with pytest.raises(SendRefused) as refused:
        message_send(organization_id=org.pk, to=SEEKER, body="Checking in")
    assert refused.value.code == "opted_out"


def test_undelivered_callback_without_21610_records_no_opt_out(
    org: Any, number: Any, fake: FakeTwilio, pipeline: Any
) -> None:
    message = _sent_message(org, pipeline)
    fake.deliver_status(
        message.provider_message_id, "undelivered", error_code=30003, post=asgi_poster
    )
    message.refresh_from_db()
    assert (message.status, message.error_code) == (MessageStatus.UNDELIVERED, "30003")
    assert not ConsentEvent.objects.exists()


def test_status_callback_with_a_bad_signature_changes_nothing(
    org: Any, number: Any, fake: FakeTwilio, pipeline: Any
) -> None:
    message = _sent_message(org, pipeline)
    url, params, headers = fake.status_callback(message.provider_message_id, "failed")
    headers["X-Twilio-Signature"] = twilio_signature("wrong-token", _status_path(number), params)
    assert asgi_poster(url, params, headers) == 403
    message.refresh_from_db()
    assert message.status != MessageStatus.FAILED


def test_status_callback_at_another_numbers_address_cannot_touch_the_message(
    org: Any, other_org: Any, number: Any, fake: FakeTwilio, pipeline: Any
) -> None:
    message = _sent_message(org, pipeline)
    other_sid, other_token = fake.add_account()
    other = number_add(
        organization=other_org,
        provider="twilio",
        e164="+12125550177",
        config={"account_sid": other_sid, "auth_token": other_token, "api_base": fake.url},
    )
    params = {
        "MessageSid": message.provider_message_id,
        "MessageStatus": "failed",
        "ErrorCode": "21610",
        "AccountSid": other_sid,
    }
    assert post_signed(_status_path(other), params, other_token).status_code == 200
    message.refresh_from_db()
    assert message.status != MessageStatus.FAILED
    assert not ConsentEvent.objects.exists()


def test_status_callback_with_an_unknown_status_is_refused(number: Any, fake: FakeTwilio) -> None:
    params = {"MessageSid": message_sid(), "MessageStatus": "teleported"}
    response = post_signed(_status_path(number), params, fake.auth_token)
    assert response.status_code == 400
    assert "teleported" in response.text


def test_processing_looks_once_more_after_it_says_it_is_no_longer_busy(monkeypatch) -> None:
    """While processing says it is busy, `openline run`'s web process sends no wake-up: an
    event written just after its last look must still be found, by one more look after it
    says it stopped."""
    from openline.messaging.services import inbound
    from openline.runtime import bridge
    from openline.runtime import processing_loop as processing

    said: list[bool] = []
    looks: list[tuple[bool, bool]] = []  # (busy as last said, found work)
    # Work, then none; the event written meanwhile is found on the look after "not busy".
    outcomes = iter([True, False, True, False, False])
    processor = processing.InboundProcessor()

    def process_pending(limit: int) -> bool:
        found = next(outcomes, None)
        if found is None:
            processor.stopping.set()
            return False
        looks.append((said[-1], found))
        return found

    class Gate:
        def intake_busy(self) -> bool:
            return False

        def in_flight(self) -> int:
            return 0

    monkeypatch.setattr(bridge, "set_busy", lambda kind, on: said.append(on))
    monkeypatch.setattr(inbound, "inbound_process_pending", process_pending)
    monkeypatch.setattr(processing, "checkpoint", lambda: None)
    monkeypatch.setattr(processing, "write_gate", Gate())
    processing._wake.set()
    processor.run()

    assert looks[:4] == [(True, True), (True, False), (False, True), (False, False)]
    assert said[-1] is False


@pytest.mark.parametrize(
    ("here", "elsewhere", "pause"),
    [
        (0, 0, None),  # nobody waits: no pause
        (0, 3, None),  # the web process's intake: a few in flight are normal traffic
        (0, 10, 0.5),  # ... a burst: half the batch's time
        (0, 40, 1.0),  # ... a big one: as long as the batch took
        (1, 0, None),  # one in flight in this process: normal
        (3, 0, 2 / 3),  # this process's intake (--one-process) is held up sooner
        (9, 0, 1.0),
    ],
)
def test_processing_yields_to_webhooks_waiting_in_this_process_sooner(
    monkeypatch, here, elsewhere, pause
) -> None:
    from openline.runtime import processing_loop as processing

    class Gate:
        def in_flight(self) -> int:
            return elsewhere

    monkeypatch.setattr(processing, "requests_in_flight", lambda: here)
    monkeypatch.setattr(processing, "write_gate", Gate())
    processor = processing.InboundProcessor()
    waits: list[float] = []
    monkeypatch.setattr(processor.stopping, "wait", lambda seconds: waits.append(seconds))
    processor._yield_to_intake(1.0)
    assert waits == ([] if pause is None else [pytest.approx(pause)])
