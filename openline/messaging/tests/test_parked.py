"""A STOP whose processing hits a bug is parked after MAX_ATTEMPTS failures, shows on
/healthz, and is applied once the bug is fixed and it is retried: by the scheduler, by
`openline inbound retry`, and when a worker starts."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from openline.contacts.models import ConsentEvent, ConsentKind
from openline.core.models import AuditEvent
from openline.messaging.models import InboundEvent, Message, MessageKind
from openline.messaging.services import inbound, parked
from openline.messaging.services.inbound import MAX_ATTEMPTS, inbound_process_pending
from openline.runtime.cli import main

PERSON = "+12025550111"


class KeywordBug:
    """Keyword handling raising, as a bug in it would, until it is "fixed"."""

    def __init__(self) -> None:
        self.real = inbound.apply_keyword
        self.fixed = False
        self.failures = 0

    def __call__(self, **kwargs: Any) -> Any:
        if self.fixed:
            return self.real(**kwargs)
        self.failures += 1
        raise RuntimeError("a bug in keyword handling")


@pytest.fixture
def bug(monkeypatch: pytest.MonkeyPatch) -> KeywordBug:
    fault = KeywordBug()
    monkeypatch.setattr(inbound, "apply_keyword", fault)
    return fault


@pytest.fixture
def parked_stop(sandbox_number: Any, text_in: Any, pipeline: Any, bug: KeywordBug) -> Any:
    """The person texts, then texts STOP; processing STOP fails every time until parked."""
    text_in(sandbox_number, PERSON, "hello")
    event = InboundEvent.objects.create(
        organization_id=sandbox_number.organization_id,
        number=sandbox_number,
        provider=sandbox_number.provider,
        provider_message_id="SMstop0000000001",
        from_number=PERSON,
        body="STOP",
        received_at=timezone.now() - timedelta(hours=2),
    )
    pipeline.run()
    event.refresh_from_db()
    return event


def _opted_out(sandbox_number: Any) -> bool:
    return ConsentEvent.objects.filter(
        organization_id=sandbox_number.organization_id, phone=PERSON, kind=ConsentKind.OPT_OUT
    ).exists()


def _confirmations() -> int:
    return Message.objects.filter(kind=MessageKind.CONSENT).count()


def _assert_stop_applied_once(sandbox_number: Any, event: InboundEvent) -> None:
    event.refresh_from_db()
    assert event.processed_at is not None
    assert _opted_out(sandbox_number)
    assert _confirmations() == 1
    assert Message.objects.filter(inbound_event=event).count() == 1


def test_stop_that_fails_every_time_is_parked_after_max_attempts(parked_stop, bug, sandbox_number):
    assert (parked_stop.processed_at, parked_stop.attempts) == (None, MAX_ATTEMPTS)
    failures = bug.failures
    assert failures >= MAX_ATTEMPTS
    assert inbound_process_pending() == 0  # processing no longer looks at it
    assert bug.failures == failures
    assert not _opted_out(sandbox_number) and _confirmations() == 0


def test_healthz_shows_parked_event_as_degraded_but_keeps_200(parked_stop, client):
    response = client.get("/healthz")

    body = response.json()
    assert response.status_code == 200  # a load balancer keeps the node
    assert body["status"] == "degraded"
    assert body["inbound_parked"]["count"] == 1
    assert 2 * 3600 <= body["inbound_parked"]["oldest_age_seconds"] < 3 * 3600
    assert body["tasks"]["inbound_pending"] == 1  # the shape others read is unchanged
    assert body["database"]["ok"] is True
    assert "STOP" not in response.content.decode()
    assert "0111" not in response.content.decode()


def test_healthz_is_ok_without_parked_events(sandbox_number, text_in, client):
    text_in(sandbox_number, PERSON, "hello")
    InboundEvent.objects.create(  # failed a few times, still being tried: not parked
        organization_id=sandbox_number.organization_id,
        number=sandbox_number,
        provider="sandbox",
        provider_message_id="SMtrying00000001",
        from_number=PERSON,
        body="hi",
        received_at=timezone.now(),
        attempts=MAX_ATTEMPTS - 1,
    )

    body = client.get("/healthz").json()

    assert body["status"] == "ok"
    assert body["inbound_parked"] == {"count": 0, "oldest_age_seconds": None}


def test_scheduler_retries_parked_stop_hourly_and_it_is_applied_after_the_fix(
    parked_stop, bug, sandbox_number, pipeline, monkeypatch
):
    from openline.runtime import scheduler

    monkeypatch.setattr(scheduler, "close_old_connections", lambda: None)  # the test's own
    monkeypatch.setattr(parked, "periodic", parked._Every(parked.RETRY_EVERY_SECONDS))
    bug.fixed = True

    pipeline.run(scheduler.run_periodic)  # the first run after start only sets the clock
    assert InboundEvent.objects.get(pk=parked_stop.pk).processed_at is None
    parked.periodic.due_at = 0.0  # an hour later
    pipeline.run(scheduler.run_periodic)

    _assert_stop_applied_once(sandbox_number, parked_stop)
    assert not AuditEvent.objects.filter(action=parked.AUDIT_ACTION).exists()  # nobody did it


def test_cli_retries_parked_stop_and_it_is_applied_after_the_fix(
    parked_stop, bug, sandbox_number, pipeline, capsys
):
    bug.fixed = True

    code = main(["inbound", "retry", "--json"])

    assert code == 0
    assert json.loads(capsys.readouterr().out) == {"retried": 1, "event_ids": [parked_stop.pk]}
    pipeline.run()
    _assert_stop_applied_once(sandbox_number, parked_stop)
    audit = AuditEvent.objects.get(action=parked.AUDIT_ACTION)
    assert (audit.organization_id, audit.actor_id, audit.object_id) == (
        sandbox_number.organization_id,
        None,  # an operator, not a member
        str(parked_stop.pk),
    )


def test_cli_says_when_there_is_nothing_to_retry(db, capsys):
    assert main(["inbound", "retry"]) == 0
    assert "No parked inbound events" in capsys.readouterr().out


class _Idle:
    """Stands in for the processing, task and scheduler threads: started and stopped."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def join(self, timeout: float | None = None) -> None:
        pass


@pytest.mark.parametrize("argv", [["worker"], ["run", "--one-process", "--json"]])
def test_parked_stop_is_retried_when_a_worker_starts(
    parked_stop, bug, sandbox_number, pipeline, monkeypatch, argv
):
    """`openline worker` (also the worker child of `openline run`) and the one-process
    layout retry parked events as they start: a new deploy may carry the fix."""
    import uvicorn

    from openline.runtime import cli, scheduler, worker
    from openline.runtime import processing_loop as processing

    monkeypatch.setattr(cli, "_wait_forever", lambda *args, **kwargs: 0)
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: None)
    monkeypatch.setattr(cli, "_quiet_gc", lambda: None)
    monkeypatch.setattr(sys, "setswitchinterval", lambda interval: None)
    for module, name in (
        (processing, "InboundProcessor"),
        (worker, "TaskWorker"),
        (scheduler, "Scheduler"),
    ):
        monkeypatch.setattr(module, name, _Idle)
    bug.fixed = True  # the new version

    assert main(argv) == 0

    pipeline.run()
    _assert_stop_applied_once(sandbox_number, parked_stop)


def test_retry_that_fails_again_parks_again_without_looping(parked_stop, bug, pipeline):
    first_round = bug.failures

    retried = parked.inbound_parked_retry()
    pipeline.run()  # processes until nothing is left: it must stop on its own

    assert retried == [parked_stop.pk]
    assert bug.failures == 2 * first_round  # the same number of tries again, no more
    parked_stop.refresh_from_db()
    assert (parked_stop.processed_at, parked_stop.attempts) == (None, MAX_ATTEMPTS)
    assert inbound_process_pending() == 0


def test_periodic_retry_waits_an_hour_between_retries(parked_stop, bug, monkeypatch):
    monkeypatch.setattr(parked, "periodic", parked._Every(parked.RETRY_EVERY_SECONDS))

    assert parked.inbound_parked_retry_periodic() == 0  # just started: the worker did it
    parked.periodic.due_at = 0.0
    assert parked.inbound_parked_retry_periodic() == 1
    InboundEvent.objects.filter(pk=parked_stop.pk).update(attempts=MAX_ATTEMPTS)  # failed
    assert parked.inbound_parked_retry_periodic() == 0  # not again for an hour
    assert InboundEvent.objects.get(pk=parked_stop.pk).attempts == MAX_ATTEMPTS


def test_retry_of_one_organization_leaves_another_alone(parked_stop, other_number):
    theirs = InboundEvent.objects.create(
        organization_id=other_number.organization_id,
        number=other_number,
        provider="sandbox",
        provider_message_id="SMother000000001",
        from_number=PERSON,
        body="STOP",
        received_at=timezone.now(),
        attempts=MAX_ATTEMPTS,
    )

    retried = parked.inbound_parked_retry(organization_id=other_number.organization_id)

    assert retried == [theirs.pk]
    assert InboundEvent.objects.get(pk=parked_stop.pk).attempts == MAX_ATTEMPTS
