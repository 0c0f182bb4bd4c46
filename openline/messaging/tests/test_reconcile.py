"""Reconciliation: a send whose outcome is unknown, or that a crash left half-done, is
settled by asking the provider, and a queued message whose dispatch task was lost is
dispatched again. Against the fake Twilio through the real adapter (which, like Twilio,
makes a second message out of a second POST) and against the sandbox carrier."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from conftest import free_port
from openline.messaging.models import Message, MessageStatus
from openline.messaging.services import reconcile
from openline.messaging.services.dispatch import MAX_ATTEMPTS
from openline.messaging.services.outbound import message_send
from openline.messaging.services.reconcile import (
    GIVE_UP_AFTER,
    LOST_AFTER,
    STUCK_AFTER,
    UNKNOWN_GRACE,
    messages_reconcile,
)
from openline.providers.registry import get_provider
from openline.providers.sandbox.models import SandboxMessage
from openline.providers.services import number_add
from openline.providers.twilio.tests.fake import FakeTwilio
from openline.providers.twilio.tests.support import SEEKER, TWILIO_E164

PERSON = "+12025550111"
BODY = "We're here. Take your time."
DISPATCH_TASK = "openline.messaging.tasks.dispatch_message"

pytestmark = pytest.mark.django_db


@pytest.fixture
def short_timeout(monkeypatch: pytest.MonkeyPatch) -> Iterator[float]:
    """The adapter's HTTP client with a 0.5 s timeout, so a scripted hang costs little."""
    client = httpx.Client(timeout=0.5)
    monkeypatch.setattr(get_provider("twilio"), "_client", client)
    yield 0.5
    client.close()


def _send(org: Any, body: str = BODY) -> Message:
    return message_send(organization_id=org.pk, to=SEEKER, body=body)


def _reload(message: Message) -> Message:
    message.refresh_from_db()
    return message


def _later(delta: timedelta) -> datetime:
    return timezone.now() + delta


def _reconcile(pipeline: Any, after: timedelta = timedelta(0)) -> int:
    """One scheduler round ``after`` from now, then whatever it enqueued runs."""
    return int(pipeline.run(lambda: messages_reconcile(now=_later(after))))


def _accepted_by_twilio(fake: FakeTwilio, body: str = BODY) -> str:
    """A message Twilio holds from our number: accepted, though our worker never heard."""
    response = httpx.post(
        f"{fake.url}/2010-04-01/Accounts/{fake.account_sid}/Messages.json",
        data={"To": SEEKER, "From": TWILIO_E164, "Body": body},
        auth=(fake.account_sid, fake.auth_token),
    )
    return str(response.json()["sid"])


def _crashed_mid_send(message: Message, minutes: float = 10) -> None:
    """As if the worker died after claiming the message and before storing an answer."""
    Message.objects.filter(pk=message.pk).update(
        status=MessageStatus.SENDING,
        attempts=1,
        status_changed_at=timezone.now() - timedelta(minutes=minutes),
    )


def _dispatch_tasks(message: Message) -> list[DBTaskResult]:
    return list(
        DBTaskResult.objects.filter(task_path=DISPATCH_TASK, args_kwargs__args=[message.pk])
    )


# --- unknown outcome: Twilio had it --------------------------------------------------------


def test_timeout_after_twilio_accepted_is_found_and_twilio_keeps_exactly_one_message(
    org: Any, number: Any, fake: FakeTwilio, pipeline: Any, short_timeout: float
) -> None:
    fake.fail_next("hang", hang=short_timeout * 4, accept=True)
    message = _reload(pipeline.run(lambda: _send(org), include_deferred=True))
    assert message.status == MessageStatus.UNKNOWN

    assert _reconcile(pipeline) == 1

    message = _reload(message)
    [stored] = fake.messages.values()
    assert message.provider_message_id == stored.sid
    assert message.status == MessageStatus.SENDING  # with Twilio, which said "queued"
    assert (message.error_code, message.error_message) == ("", "")
    assert message.sent_at is not None
    pipeline.run(include_deferred=True)
    assert len(fake.send_requests()) == 1
    assert len(fake.messages) == 1


def test_server_error_after_twilio_accepted_is_found_with_twilios_status(
    org: Any, number: Any, fake: FakeTwilio, pipeline: Any
) -> None:
    fake.fail_next("server_error", accept=True)
    message = pipeline.run(lambda: _send(org), include_deferred=True)
    [stored] = fake.messages.values()
    fake.status_callback(stored.sid, "delivered")  # Twilio's record moved on meanwhile

    assert _reconcile(pipeline) == 1

    message = _reload(message)
    assert (message.provider_message_id, message.status) == (stored.sid, MessageStatus.DELIVERED)
    assert len(fake.send_requests()) == 1 and len(fake.messages) == 1
    assert _reconcile(pipeline, after=timedelta(hours=1)) == 0  # settled for good


# --- unknown outcome: Twilio had nothing ----------------------------------------------------


def test_server_error_without_a_twilio_record_is_sent_again_once_after_the_grace(
    org: Any, number: Any, fake: FakeTwilio, pipeline: Any
) -> None:
    fake.fail_next("server_error")  # refused before creating anything
    message = pipeline.run(lambda: _send(org), include_deferred=True)
    assert _reload(message).status == MessageStatus.UNKNOWN

    # Twilio may list a new message a little late: no resend inside the grace.
    assert _reconcile(pipeline, after=UNKNOWN_GRACE / 2) == 0
    assert _reload(message).status == MessageStatus.UNKNOWN
    assert len(fake.send_requests()) == 1

    assert _reconcile(pipeline, after=UNKNOWN_GRACE + timedelta(seconds=1)) == 1
    pipeline.run(include_deferred=True)

    message = _reload(message)
    assert message.status == MessageStatus.SENDING
    assert [r.status for r in fake.send_requests()] == [500, 201]
    assert list(fake.messages) == [message.provider_message_id]
    assert message.attempts == 2
    assert _reconcile(pipeline, after=timedelta(hours=1)) == 0
    assert len(fake.messages) == 1


def test_no_record_after_the_last_attempt_fails_the_message_instead(
    org: Any, number: Any, fake: FakeTwilio, pipeline: Any
) -> None:
    fake.fail_next("server_error")
    message = pipeline.run(lambda: _send(org), include_deferred=True)
    Message.objects.filter(pk=message.pk).update(attempts=MAX_ATTEMPTS)

    _reconcile(pipeline, after=UNKNOWN_GRACE * 2)

    message = _reload(message)
    assert (message.status, message.error_code) == (MessageStatus.FAILED, "20500")
    assert f"in {MAX_ATTEMPTS} attempts" in message.error_message
    assert len(fake.send_requests()) == 1


# --- the provider cannot be asked --------------------------------------------------------------


def test_unknown_stays_unknown_while_twilio_cannot_be_asked_then_is_found(
    org: Any, number: Any, fake: FakeTwilio, pipeline: Any
) -> None:
    fake.fail_next("server_error", accept=True)
    message = pipeline.run(lambda: _send(org), include_deferred=True)
    config = number.config
    number.config = dict(config, api_base=f"http://127.0.0.1:{free_port()}")  # Twilio is down
    number.save()

    assert _reconcile(pipeline, after=UNKNOWN_GRACE * 3) == 0
    assert _reload(message).status == MessageStatus.UNKNOWN  # never resent on a guess

    number.config = config
    number.save()
    assert _reconcile(pipeline, after=UNKNOWN_GRACE * 3) == 1
    assert _reload(message).provider_message_id in fake.messages
    assert len(fake.messages) == 1


def test_a_provider_that_cannot_be_asked_holds_up_no_other_number(
    org: Any, number: Any, fake: FakeTwilio, pipeline: Any
) -> None:
    other = number_add(
        organization=org, provider="twilio", e164="+12025550178", config=fake.config()
    )
    fake.fail_next("server_error", times=2, accept=True)
    stuck = pipeline.run(lambda: _send(org), include_deferred=True)  # the older one
    fine = pipeline.run(
        lambda: message_send(organization_id=org.pk, to=SEEKER, body=BODY, number_id=other.pk),
        include_deferred=True,
    )
    number.config = dict(number.config, api_base=f"http://127.0.0.1:{free_port()}")
    number.save()

    assert _reconcile(pipeline) == 1

    assert _reload(stuck).status == MessageStatus.UNKNOWN
    assert _reload(fine).provider_message_id in fake.messages


def test_after_a_day_of_not_being_able_to_ask_a_person_decides(
    org: Any, number: Any, fake: FakeTwilio, pipeline: Any
) -> None:
    fake.fail_next("server_error")
    message = pipeline.run(lambda: _send(org), include_deferred=True)
    number.config = dict(number.config, api_base=f"http://127.0.0.1:{free_port()}")
    number.save()

    assert _reconcile(pipeline, after=GIVE_UP_AFTER + timedelta(minutes=1)) == 1

    message = _reload(message)
    assert (message.status, message.error_code) == (MessageStatus.FAILED, "outcome_unknown")
    assert "check with them before sending it again" in message.error_message
    assert len(fake.send_requests()) == 1


# --- identical texts ---------------------------------------------------------------------------


def test_identical_texts_each_claim_their_own_twilio_message(
    org: Any, number: Any, fake: FakeTwilio, pipeline: Any
) -> None:
    fake.fail_next("server_error", times=2, accept=True)
    first = pipeline.run(lambda: _send(org, "Okay"), include_deferred=True)
    second = pipeline.run(lambda: _send(org, "Okay"), include_deferred=True)

    assert _reconcile(pipeline) == 2

    first, second = _reload(first), _reload(second)
    assert {first.provider_message_id, second.provider_message_id} == set(fake.messages)
    oldest = min(fake.messages.values(), key=lambda m: m.seq)
    assert first.provider_message_id == oldest.sid  # paired in the order they were sent
    assert len(fake.messages) == 2


def test_identical_text_already_claimed_is_not_taken_for_a_lost_one(
    org: Any, number: Any, fake: FakeTwilio, pipeline: Any
) -> None:
    delivered = _reload(pipeline.run(lambda: _send(org, "Okay")))
    fake.fail_next("server_error")  # this one never reached Twilio
    lost = pipeline.run(lambda: _send(org, "Okay"), include_deferred=True)

    _reconcile(pipeline, after=UNKNOWN_GRACE * 2)
    pipeline.run(include_deferred=True)

    lost = _reload(lost)
    assert lost.provider_message_id not in ("", delivered.provider_message_id)
    assert len(fake.messages) == 2  # the person gets the second "Okay" exactly once


def test_a_twin_being_sent_right_now_defers_the_look_up(
    org: Any, number: Any, fake: FakeTwilio, pipeline: Any
) -> None:
    fake.fail_next("server_error")
    unknown = pipeline.run(lambda: _send(org, "Okay"), include_deferred=True)
    twin = _send(org, "Okay")  # claimed by a worker that has not heard back yet
    Message.objects.filter(pk=twin.pk).update(
        status=MessageStatus.SENDING, status_changed_at=timezone.now()
    )
    _accepted_by_twilio(fake, "Okay")  # the twin's, at Twilio

    assert messages_reconcile(now=_later(UNKNOWN_GRACE * 2)) == 0
    assert _reload(unknown).status == MessageStatus.UNKNOWN
    assert not [r for r in fake.requests if r.method == "GET"]


# --- a crash between claim and answer --------------------------------------------------------


def test_stuck_sending_that_twilio_accepted_is_found_not_failed_or_resent(
    org: Any, number: Any, fake: FakeTwilio, pipeline: Any
) -> None:
    message = _send(org)
    _crashed_mid_send(message)
    sid = _accepted_by_twilio(fake)

    assert _reconcile(pipeline) == 1

    message = _reload(message)
    assert (message.status, message.provider_message_id) == (MessageStatus.SENDING, sid)
    assert len(fake.messages) == 1


def test_stuck_sending_that_twilio_never_got_is_sent_once(
    org: Any, number: Any, fake: FakeTwilio, pipeline: Any
) -> None:
    message = _send(org)
    _crashed_mid_send(message)

    assert _reconcile(pipeline) == 1

    message = _reload(message)
    assert message.status == MessageStatus.SENDING
    assert list(fake.messages) == [message.provider_message_id]
    assert len(fake.send_requests()) == 1


def test_recent_sending_messages_are_left_alone(
    org: Any, number: Any, fake: FakeTwilio, pipeline: Any
) -> None:
    message = _send(org)
    _crashed_mid_send(message, minutes=0)
    assert messages_reconcile(now=_later(STUCK_AFTER / 2)) == 0
    assert fake.requests == []


# --- the sandbox carrier ------------------------------------------------------------------------


def test_sandbox_send_interrupted_before_the_carrier_took_it_is_sent_once(
    sandbox_number: Any, pipeline: Any
) -> None:
    message = message_send(organization_id=sandbox_number.organization_id, to=PERSON, body="hi")
    _crashed_mid_send(message)

    assert _reconcile(pipeline) == 1

    [sandbox] = SandboxMessage.objects.all()
    assert _reload(message).provider_message_id == sandbox.provider_message_id


def test_sandbox_send_interrupted_after_the_carrier_took_it_is_not_resent(
    sandbox_number: Any, pipeline: Any
) -> None:
    message = message_send(organization_id=sandbox_number.organization_id, to=PERSON, body="hi")
    _crashed_mid_send(message)
    SandboxMessage.objects.create(
        organization_id=sandbox_number.organization_id,
        number=sandbox_number,
        to=PERSON,
        body="hi",
        provider_message_id="SB-taken",
        status="delivered",
    )

    assert _reconcile(pipeline) == 1

    message = _reload(message)
    assert (message.provider_message_id, message.status) == ("SB-taken", MessageStatus.DELIVERED)
    assert SandboxMessage.objects.count() == 1


def test_stuck_message_with_provider_id_takes_the_providers_status(sandbox_number: Any) -> None:
    org = sandbox_number.organization
    message = message_send(organization_id=org.pk, to=PERSON, body="Group is at 6pm")
    _crashed_mid_send(message)
    Message.objects.filter(pk=message.pk).update(provider_message_id="SB-known")
    SandboxMessage.objects.create(
        organization=org,
        number=sandbox_number,
        to=PERSON,
        body="x",
        provider_message_id="SB-known",
        status="delivered",
    )

    assert messages_reconcile() == 1

    assert _reload(message).status == MessageStatus.DELIVERED


# --- lost dispatch tasks ------------------------------------------------------------------------


def test_queued_message_whose_task_was_lost_is_dispatched_once(
    org: Any, number: Any, fake: FakeTwilio, pipeline: Any
) -> None:
    # Without the commit hooks running, the enqueue never happens: a crash at that point.
    message = _send(org)
    assert _dispatch_tasks(message) == []

    assert messages_reconcile(now=_later(LOST_AFTER / 2)) == 0  # maybe just slow
    assert _reconcile(pipeline, after=LOST_AFTER + timedelta(seconds=1)) == 1
    pipeline.run(include_deferred=True)

    message = _reload(message)
    assert message.status == MessageStatus.SENDING
    assert list(fake.messages) == [message.provider_message_id]
    assert _reconcile(pipeline, after=timedelta(hours=1)) == 0
    assert len(fake.send_requests()) == 1


def test_sweep_leaves_a_queued_message_whose_task_is_waiting(
    org: Any, number: Any, pipeline: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        message = _send(org)  # its task waits in the queue (no worker ran)
    assert len(_dispatch_tasks(message)) == 1

    with django_capture_on_commit_callbacks(execute=True):
        assert messages_reconcile(now=_later(timedelta(hours=1))) == 0
    assert len(_dispatch_tasks(message)) == 1


def test_sweep_twice_enqueues_one_task(org: Any, number: Any, pipeline: Any) -> None:
    message = _send(org)
    for _ in range(2):
        with pipeline._capture(execute=True):
            messages_reconcile(now=_later(LOST_AFTER * 2))
    assert len(_dispatch_tasks(message)) == 1


def test_without_a_readable_queue_a_scheduled_retry_is_not_swept_early(
    org: Any,
    number: Any,
    fake: FakeTwilio,
    pipeline: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A task backend whose queue cannot be read: the message's own due time decides."""
    monkeypatch.setattr(reconcile, "_with_pending_dispatch", lambda ids, running_since: set())
    fake.fail_next("rate_limited", retry_after="300")  # retried in five minutes
    message = pipeline.run(lambda: _send(org))
    assert _reload(message).status == MessageStatus.QUEUED

    assert messages_reconcile(now=_later(timedelta(minutes=5) + LOST_AFTER / 2)) == 0
    assert messages_reconcile(now=_later(timedelta(minutes=5) + LOST_AFTER * 2)) == 1
