"""Dispatch against a local fake Twilio (openline.providers.twilio.tests.fake): one real HTTP
seam, Twilio's documented Messages API, scripted failures. The fake, like Twilio, creates a
second message for a second POST: a blind retry would show here as two texts. (What
happens after an unknown outcome, reconciliation, is in test_reconcile.py.)"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.template.loader import render_to_string
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from conftest import free_port
from openline.contacts.models import ConsentEvent, ConsentKind, ConsentSource
from openline.contacts.services.consent import consent_record_opt_out
from openline.messaging.models import Message, MessageStatus
from openline.messaging.ratelimit import limiter
from openline.messaging.services.dispatch import MAX_ATTEMPTS, status_url
from openline.messaging.services.outbound import SendRefused, message_send
from openline.providers.registry import get_provider
from openline.providers.services import number_add
from openline.providers.twilio.provider import MESSAGE_SID
from openline.providers.twilio.tests.fake import FakeTwilio
from openline.providers.twilio.tests.support import SEEKER, TWILIO_E164

DISPATCH_TASK = "openline.messaging.tasks.dispatch_message"


@pytest.fixture
def short_timeout(monkeypatch: pytest.MonkeyPatch) -> Iterator[float]:
    """The adapter's HTTP client with a 0.5 s timeout, so a scripted hang costs little."""
    timeout = 0.5
    client = httpx.Client(timeout=timeout)
    monkeypatch.setattr(get_provider("twilio"), "_client", client)
    yield timeout
    client.close()


def _send(org: Any, body: str = "Thanks for reaching out.", to: str = SEEKER) -> Message:
    return message_send(organization_id=org.pk, to=to, body=body)


def _dispatch_tasks(message: Message) -> list[DBTaskResult]:
    return list(
        DBTaskResult.objects.filter(
            task_path=DISPATCH_TASK, args_kwargs__args=[message.pk]
        ).order_by("enqueued_at")
    )


def _reload(message: Message) -> Message:
    message.refresh_from_db()
    return message


# --- success ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_sent_message_stores_twilios_sid_and_status(
    org: Any, number: Any, fake: FakeTwilio, pipeline: Any
) -> None:
    message = _reload(pipeline.run(lambda: _send(org, "We're here. Take your time.")))

    [request] = fake.send_requests()
    assert request.authenticated and request.status == 201
    assert request.form == {
        "To": SEEKER,
        "From": TWILIO_E164,
        "Body": "We're here. Take your time.",
        "StatusCallback": status_url(number),
    }
    # Twilio reads no idempotency header on its API: none is sent.
    assert not any("idempotency" in name for name in request.headers)
    [stored] = fake.messages.values()
    assert message.provider_message_id == stored.sid
    assert MESSAGE_SID.match(message.provider_message_id)
    # Twilio answered "queued": the message is with the provider, waiting for callbacks.
    assert message.status == MessageStatus.SENDING
    assert message.attempts == 1
    assert message.sent_at is not None
    assert message.error_code == ""


# --- surely not sent: retried with backoff -------------------------------------------------


@pytest.mark.django_db
def test_connection_refused_is_retried_later_with_backoff_then_sent_once(
    org: Any, number: Any, fake: FakeTwilio, pipeline: Any
) -> None:
    # Nothing listens where the number points: the request surely never arrived.
    config = number.config
    number.config = dict(config, api_base=f"http://127.0.0.1:{free_port()}")
    number.save()
    message = pipeline.run(lambda: _send(org))

    message = _reload(message)
    assert (message.status, message.attempts, message.error_code) == (
        MessageStatus.QUEUED,
        1,
        "network",
    )
    [first, retry] = _dispatch_tasks(message)
    assert retry.status == "READY"
    assert retry.run_after - retry.enqueued_at >= timedelta(seconds=1.9)  # 2 s after try 1
    assert retry.run_after > timezone.now()
    # Its due time is kept on the message too, so the lost-task sweep leaves it alone.
    assert message.next_attempt_at - message.status_changed_at == timedelta(seconds=2)

    number.config = config  # Twilio is reachable again
    number.save()
    pipeline.run(include_deferred=True)
    message = _reload(message)
    assert (message.status, message.attempts) == (MessageStatus.SENDING, 2)
    assert list(fake.messages) == [message.provider_message_id]
    assert (message.error_code, message.error_message) == ("", "")


@pytest.mark.django_db
def test_rate_limited_429_waits_as_long_as_retry_after_says(
    org: Any, number: Any, fake: FakeTwilio, pipeline: Any
) -> None:
    fake.fail_next("rate_limited", retry_after="7")
    message = pipeline.run(lambda: _send(org))

    message = _reload(message)
    assert (message.status, message.error_code) == (MessageStatus.QUEUED, "20429")
    retry = _dispatch_tasks(message)[-1]
    waited = retry.run_after - retry.enqueued_at
    assert timedelta(seconds=6.5) <= waited <= timedelta(seconds=8)

    pipeline.run(include_deferred=True)
    assert _reload(message).attempts == 2
    assert [r.status for r in fake.send_requests()] == [429, 201]
    assert len(fake.messages) == 1


@pytest.mark.django_db
def test_backoff_grows_and_the_message_fails_after_the_last_attempt(
    org: Any, number: Any, fake: FakeTwilio, pipeline: Any
) -> None:
    fake.fail_next("rate_limited", times=MAX_ATTEMPTS, retry_after="")
    message = pipeline.run(lambda: _send(org), include_deferred=True)

    message = _reload(message)
    assert (message.status, message.attempts) == (MessageStatus.FAILED, MAX_ATTEMPTS)
    assert message.error_code == "20429"
    tasks = _dispatch_tasks(message)
    assert len(tasks) == MAX_ATTEMPTS
    waits = [(t.run_after - t.enqueued_at).total_seconds() for t in tasks[1:]]
    assert waits == sorted(waits) and waits[0] >= 1.9 and waits[-1] >= 2 * waits[-2] - 0.5
    assert len(fake.send_requests()) == MAX_ATTEMPTS
    assert fake.messages == {}


# --- outcome unknown: never sent again blindly ------------------------------------------------


@pytest.mark.django_db
def test_timeout_after_twilio_accepted_marks_the_message_unknown_and_sends_nothing_again(
    org: Any, number: Any, fake: FakeTwilio, pipeline: Any, short_timeout: float
) -> None:
    # Twilio accepted the request but the answer never came back in time.
    fake.fail_next("hang", hang=short_timeout * 4, accept=True)
    message = pipeline.run(lambda: _send(org), include_deferred=True)

    message = _reload(message)
    assert (message.status, message.error_code, message.attempts) == (
        MessageStatus.UNKNOWN,
        "timeout",
        1,
    )
    assert message.provider_message_id == ""
    assert "checking whether it went out" in message.error_message
    assert len(_dispatch_tasks(message)) == 1  # no retry was queued
    assert len(fake.send_requests()) == 1
    assert len(fake.messages) == 1


@pytest.mark.django_db
@pytest.mark.parametrize(("kind", "code"), [("server_error", "20500"), ("unavailable", "20503")])
def test_server_error_marks_the_message_unknown_without_a_retry(
    org: Any, number: Any, fake: FakeTwilio, pipeline: Any, kind: str, code: str
) -> None:
    fake.fail_next(kind)
    message = _reload(pipeline.run(lambda: _send(org), include_deferred=True))
    assert (message.status, message.error_code) == (MessageStatus.UNKNOWN, code)
    assert len(_dispatch_tasks(message)) == 1
    assert len(fake.send_requests()) == 1


@pytest.mark.django_db
def test_connection_dropped_mid_request_marks_the_message_unknown(
    org: Any, number: Any, fake: FakeTwilio, pipeline: Any
) -> None:
    fake.fail_next("drop", accept=True)
    message = _reload(pipeline.run(lambda: _send(org), include_deferred=True))
    assert (message.status, message.error_code) == (MessageStatus.UNKNOWN, "network")
    assert len(fake.send_requests()) == 1 and len(fake.messages) == 1


@pytest.mark.django_db
def test_an_unknown_outcome_on_the_last_attempt_is_not_failed(
    org: Any, number: Any, fake: FakeTwilio, pipeline: Any
) -> None:
    """Failing it would tell staff it was not sent, when it may have been."""
    fake.fail_next("rate_limited", times=MAX_ATTEMPTS - 1, retry_after="")
    fake.fail_next("server_error", accept=True)
    message = _reload(pipeline.run(lambda: _send(org), include_deferred=True))
    assert (message.status, message.attempts) == (MessageStatus.UNKNOWN, MAX_ATTEMPTS)


@pytest.mark.django_db
def test_unknown_message_is_shown_as_being_checked_in_the_thread(
    org: Any, number: Any, fake: FakeTwilio, pipeline: Any, published: list[dict[str, Any]]
) -> None:
    fake.fail_next("server_error")
    message = _reload(pipeline.run(lambda: _send(org), include_deferred=True))
    assert {"type": "message.status", "status": "unknown"}.items() <= published[-1].items()
    html = render_to_string(
        "console/_message.html", {"m": message, "contact": message.conversation.contact}
    )
    assert '<span class="status status-unknown" data-status="unknown">checking if sent</span>' in (
        html
    )


# --- permanent errors -------------------------------------------------------------------


@pytest.mark.django_db
def test_permanent_error_fails_at_once_with_twilios_code(
    org: Any, number: Any, fake: FakeTwilio, pipeline: Any
) -> None:
    fake.fail_next("invalid_to")
    message = _reload(pipeline.run(lambda: _send(org), include_deferred=True))
    assert (message.status, message.error_code, message.attempts) == (
        MessageStatus.FAILED,
        "21211",
        1,
    )
    assert "not a valid phone number" in message.error_message
    assert len(_dispatch_tasks(message)) == 1
    assert len(fake.send_requests()) == 1


@pytest.mark.django_db
def test_wrong_credentials_fail_the_message_without_retrying(
    org: Any, fake: FakeTwilio, pipeline: Any
) -> None:
    config = dict(fake.config(), auth_token="not-the-token")
    number_add(organization=org, provider="twilio", e164=TWILIO_E164, config=config)
    message = _reload(pipeline.run(lambda: _send(org), include_deferred=True))
    assert (message.status, message.error_code) == (MessageStatus.FAILED, "20003")
    [request] = fake.send_requests()
    assert (request.authenticated, request.status) == (False, 401)


@pytest.mark.django_db
def test_unsubscribed_recipient_21610_fails_records_opt_out_and_refuses_the_next_send(
    org: Any, number: Any, fake: FakeTwilio, pipeline: Any
) -> None:
    fake.opt_out(SEEKER)  # they texted STOP to the carrier, not to us
    message = _reload(pipeline.run(lambda: _send(org), include_deferred=True))

    assert (message.status, message.error_code) == (MessageStatus.FAILED, "21610")
    opt_out = ConsentEvent.objects.get(organization=org, phone=SEEKER)
    assert (opt_out.kind, opt_out.source) == (ConsentKind.OPT_OUT, ConsentSource.PROVIDER)
    assert opt_out.number_id == number.pk
    with pytest.raises(SendRefused) as refused:
        _send(org, "Are you okay?")
    assert refused.value.code == "opted_out"
    assert len(fake.send_requests()) == 1


# --- consent at the last moment ------------------------------------------------------------


@pytest.mark.django_db
def test_opt_out_after_queueing_means_nothing_reaches_twilio(
    org: Any,
    number: Any,
    fake: FakeTwilio,
    pipeline: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        message = _send(org)  # queued; its dispatch task waits in the queue
    assert _reload(message).status == MessageStatus.QUEUED
    consent_record_opt_out(
        organization_id=org.pk, phone=SEEKER, source=ConsentSource.STAFF, text="asked by phone"
    )
    pipeline.run(include_deferred=True)

    message = _reload(message)
    assert (message.status, message.error_code) == (MessageStatus.FAILED, "opted_out")
    assert fake.requests == []


# --- throughput ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_limiter_spaces_reservations_by_segments_per_second() -> None:
    reserve = limiter().reserve
    started = time.monotonic()
    waits = [reserve("number:test", units=1, per_second=2)[1] for _ in range(6)]
    other = reserve("number:other", units=1, per_second=2)[1]
    elapsed = time.monotonic() - started  # the clock moves between calls, under load too
    assert 0 <= waits[0] <= 0.005
    assert 2.5 - elapsed - 0.005 <= waits[-1] <= 2.5 + 0.005
    assert 0 <= other <= 0.005


def _run_until_sent(pipeline: Any, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pipeline.run()
        if Message.objects.filter(status=MessageStatus.SENDING).count() >= count:
            return
        time.sleep(0.05)


@pytest.mark.django_db
def test_sender_rate_limit_spaces_sends_at_segments_per_second(
    org: Any, fake: FakeTwilio, pipeline: Any
) -> None:
    number_add(
        organization=org,
        provider="twilio",
        e164=TWILIO_E164,
        config=fake.config(),
        segments_per_second=2,
    )
    started = time.monotonic()
    pipeline.run(lambda: [_send(org, f"Reminder {i}", to=f"+120255501{i:02d}") for i in range(6)])
    _run_until_sent(pipeline, 6, timeout=15)

    times = [r.at for r in fake.send_requests()]
    assert len(times) == 6
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert times[-1] - times[0] >= 2.5 - 0.15  # 5 gaps of 1/2 s
    assert min(gaps) >= 0.5 - 0.1
    assert time.monotonic() - started < 10


@pytest.mark.django_db
def test_messages_behind_a_long_one_are_not_starved_by_the_rate_limit(
    org: Any, fake: FakeTwilio, pipeline: Any
) -> None:
    number_add(
        organization=org,
        provider="twilio",
        e164=TWILIO_E164,
        config=fake.config(),
        segments_per_second=2,
    )

    def queue_them() -> None:
        _send(org, "A long reminder. " * 24)  # 3 segments = 1.5 s of this sender's time
        for i in range(3):
            _send(org, f"Reminder {i}", to=f"+120255501{i:02d}")

    pipeline.run(queue_them)
    _run_until_sent(pipeline, 4, timeout=8)
    assert len(fake.send_requests()) == 4


@pytest.mark.django_db
def test_sandbox_numbers_are_held_to_the_same_rate_limit(org: Any, pipeline: Any) -> None:
    """The sandbox is a real provider: its sends go through the same dispatch, so a slow
    sandbox number is spaced just like a Twilio one."""
    from openline.providers.sandbox.models import SandboxMessage

    number_add(organization=org, provider="sandbox", e164="+12025550142", segments_per_second=2)
    started = time.monotonic()
    pipeline.run(lambda: [_send(org, f"Reminder {i}", to=f"+120255501{i:02d}") for i in range(6)])
    deadline = time.monotonic() + 15
    while SandboxMessage.objects.count() < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
        pipeline.run()

    times = sorted(SandboxMessage.objects.values_list("created_at", flat=True))
    assert len(times) == 6
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
    assert (times[-1] - times[0]).total_seconds() >= 2.5 - 0.15  # 5 gaps of 1/2 s
    assert min(gaps) >= 0.5 - 0.1
    assert time.monotonic() - started < 10
    assert Message.objects.filter(status=MessageStatus.DELIVERED).count() == 6


@pytest.mark.django_db
def test_a_reply_is_dispatched_before_broadcast_texts_queued_earlier(
    org: Any, number: Any, fake: FakeTwilio, django_capture_on_commit_callbacks: Any
) -> None:
    from openline.messaging.models import MessageKind

    with django_capture_on_commit_callbacks(execute=True):
        bulk = [
            message_send(organization_id=org.pk, to=f"+1202555013{i}", body="Pool closed",
                         kind=MessageKind.BULK)
            for i in range(3)
        ]  # fmt: skip
        reply = _send(org, "We're here.")
    first = DBTaskResult.objects.ready().get_locked()
    assert first is not None and first.args_kwargs["args"] == [reply.pk]
    priorities = {t.args_kwargs["args"][0]: t.priority for t in DBTaskResult.objects.all()}
    assert priorities == {**{m.pk: 0 for m in bulk}, reply.pk: 10}
