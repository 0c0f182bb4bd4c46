"""The alert sweep, with the clock under the test's control: what each setting sends and
when, who receives it, that it stops on assume, and that it neither loses nor repeats."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from conftest import Clock
from openline.alerts.models import Alert, AlertKind, AlertPolicy
from openline.alerts.services import alert_policy_confirm, alert_policy_set
from openline.alerts.sweep import alert_plan, alerts_sweep
from openline.alerts.tests.conftest import OnShift, texted_codes
from openline.messaging.models import Conversation, Message, MessageKind

pytestmark = pytest.mark.django_db
HELP_SEEKER = "+13125550199"
SECRET = "my husband hurt me again"


def _policy(number: Any, alice: Any, **settings: Any) -> AlertPolicy:
    values = {"enabled": True, "reminder_minutes": 5, "reminders": 2, "escalate_after": 0}
    return alert_policy_set(number=number, actor_id=alice.pk, **{**values, **settings})


def _run(clock: Clock, minutes: int, step_seconds: int = 30) -> list[tuple[int, str, int, str]]:
    """Sweep every ``step_seconds`` for ``minutes``; (minute, kind, attempt, phone) sent."""
    for _ in range(minutes * 60 // step_seconds + 1):
        alerts_sweep()
        clock.advance(seconds=step_seconds)
    return _sent()


def _sent() -> list[tuple[int, str, int, str]]:
    from openline.alerts.tests.conftest import START

    return [
        (int((a.created_at - START).total_seconds() // 60), a.kind, a.attempt, a.phone)
        for a in Alert.objects.order_by("created_at", "kind", "phone")
    ]


def test_every_setting_combination_makes_its_plan() -> None:
    for minutes, reminders, escalate in itertools.product(
        [0, 1, 2, 3, 5, 10, 15, 20, 30], range(6), range(6)
    ):
        plan = alert_plan(
            enabled=True, reminder_minutes=minutes, reminders=reminders, escalate_after=escalate
        )
        staff = [s for s in plan if s.kind != AlertKind.ESCALATION]
        escalations = [s for s in plan if s.kind == AlertKind.ESCALATION]
        assert staff[0].kind == AlertKind.NEW and staff[0].minutes == 0
        assert len(staff) == 1 + (reminders if minutes else 0)
        assert [s.minutes for s in staff] == [n * minutes for n in range(len(staff))]
        assert [s.attempt for s in staff] == list(range(1, len(staff) + 1))
        if minutes and escalate:
            assert [(e.attempt, e.minutes) for e in escalations] == [
                (escalate + 1, escalate * minutes)
            ]
        else:
            assert escalations == []
        assert [s.minutes for s in plan] == sorted(s.minutes for s in plan)
    assert alert_plan(enabled=False, reminder_minutes=5, reminders=5, escalate_after=5) == []


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"reminder_minutes": 0, "reminders": 3}, [(0, "new", 1, "S")]),
        (
            {"reminder_minutes": 5, "reminders": 2},
            [(0, "new", 1, "S"), (5, "reminder", 2, "S"), (10, "reminder", 3, "S")],
        ),
        (
            {"reminder_minutes": 1, "reminders": 1, "escalate_after": 2},
            [(0, "new", 1, "S"), (1, "reminder", 2, "S"), (2, "escalation", 3, "O")],
        ),
        (
            {"reminder_minutes": 3, "reminders": 3, "escalate_after": 1},
            [
                (0, "new", 1, "S"),
                (3, "escalation", 2, "O"),
                (3, "reminder", 2, "S"),
                (6, "reminder", 3, "S"),
                (9, "reminder", 4, "S"),
            ],
        ),
        ({"reminder_minutes": 10, "reminders": 0, "escalate_after": 0}, [(0, "new", 1, "S")]),
    ],
)
def test_each_setting_sends_its_sequence_to_the_right_people(
    settings: dict[str, int],
    expected: list[tuple[int, str, int, str]],
    clock: Clock,
    on_shift: OnShift,
    text_in: Any,
    sandbox_number: Any,
    alice: Any,
    bob: Any,
    sue: Any,
) -> None:
    phones = {"S": on_shift(bob), "O": on_shift(sue, kind="oncall")}
    _policy(sandbox_number, alice, **settings)
    text_in(sandbox_number, HELP_SEEKER, SECRET)
    sent = _run(clock, minutes=40)
    assert sent == [(m, k, a, phones[who]) for m, k, a, who in expected]
    # Every alert is a real text through the send service, with no content in it.
    messages = Message.objects.filter(kind=MessageKind.ALERT)
    assert messages.count() == len(expected)
    for message in messages:
        assert SECRET not in message.body and "5550199" not in message.body
        assert "Main line" in message.body and "/conversations/" in message.body


def test_everything_stops_when_someone_assumes(
    clock: Clock, on_shift: OnShift, text_in: Any, sandbox_number: Any, alice: Any, bob: Any,
    sue: Any,
) -> None:  # fmt: skip
    from openline.core.models import Membership
    from openline.messaging.services.assignment import conversation_assume

    on_shift(bob)
    on_shift(sue, kind="oncall")
    _policy(sandbox_number, alice, reminder_minutes=2, reminders=5, escalate_after=3)
    text_in(sandbox_number, HELP_SEEKER, "hello")
    assert [k for _, k, _, _ in _run(clock, minutes=3)] == ["new", "reminder"]
    conversation = Conversation.objects.get(contact__phone=HELP_SEEKER)
    conversation_assume(conversation=conversation, membership=Membership.objects.get(user=bob))
    _run(clock, minutes=30)
    assert [k for _, k, _, _ in _sent()] == ["new", "reminder"]  # no escalation, no more


def test_only_people_who_permit_texts_on_shift_now_are_alerted(
    clock: Clock, on_shift: OnShift, text_in: Any, sandbox_number: Any, alice: Any, bob: Any,
    dora: Any, sue: Any, pipeline: Any,
) -> None:  # fmt: skip
    from openline.contacts.models import ConsentSource
    from openline.contacts.selectors import consent_state

    bob_phone = on_shift(bob)
    on_shift(dora, permit=False)  # on shift, but never said yes to texts
    on_shift(sue, kind="normal", number=_other_inbox(sandbox_number))  # another inbox
    _policy(sandbox_number, alice, reminder_minutes=1, reminders=3)
    text_in(sandbox_number, HELP_SEEKER, "hello")
    assert {p for *_, p in _run(clock, minutes=1)} == {bob_phone}
    # Bob texts STOP to the alert number: the ledger says so, and nothing more reaches him.
    text_in(sandbox_number, bob_phone, "STOP")
    state = consent_state(organization_id=sandbox_number.organization_id, phone=bob_phone)
    assert state.opted_out and state.last_change.source == ConsentSource.KEYWORD
    before = Message.objects.filter(kind=MessageKind.ALERT).count()
    _run(clock, minutes=5)
    assert Message.objects.filter(kind=MessageKind.ALERT).count() == before


def _other_inbox(number: Any) -> Any:
    from openline.providers.services import number_add

    return number_add(
        organization=number.organization, provider="sandbox", e164="+12025550143", name="Youth"
    )


def test_the_send_service_refuses_an_opted_out_alert_phone_even_if_the_roster_raced(
    clock: Clock, on_shift: OnShift, text_in: Any, sandbox_number: Any, alice: Any, bob: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The roster is read at the start of a sweep; a STOP that lands after it is still
    honoured, by the one send service, and the alert is recorded as refused."""
    from openline.alerts import sweep
    from openline.contacts.services.consent import consent_record_opt_out

    phone = on_shift(bob)
    _policy(sandbox_number, alice)
    text_in(sandbox_number, HELP_SEEKER, "hello")
    consent_record_opt_out(
        organization_id=sandbox_number.organization_id, phone=phone, source="keyword", text="STOP"
    )
    monkeypatch.setattr(sweep, "opted_in_phones", lambda org, phones: set(phones))  # stale
    result = alerts_sweep()
    assert (result.sent, result.refused) == (0, 1)
    alert = Alert.objects.get()
    assert alert.message is None and "opted out" in alert.refused
    assert not Message.objects.filter(kind=MessageKind.ALERT).exists()


def test_no_alerts_while_the_inbox_is_offline_or_alerts_are_off(
    clock: Clock, on_shift: OnShift, text_in: Any, sandbox_number: Any, alice: Any, bob: Any,
) -> None:  # fmt: skip
    from openline.availability.services import availability_set

    text_in(sandbox_number, HELP_SEEKER, "hello")  # nobody on shift: offline
    _policy(sandbox_number, alice)
    assert _run(clock, minutes=2) == []
    on_shift(bob)
    _policy(sandbox_number, alice, enabled=False)
    assert _run(clock, minutes=2) == []
    _policy(sandbox_number, alice)
    availability_set(
        organization_id=sandbox_number.organization_id,
        actor_id=alice.pk,
        number_id=sandbox_number.pk,
        mode="offline",
    )
    assert _run(clock, minutes=2) == []


def test_a_late_sweep_sends_one_catch_up_not_every_missed_reminder(
    clock: Clock, on_shift: OnShift, text_in: Any, sandbox_number: Any, alice: Any, bob: Any,
) -> None:  # fmt: skip
    on_shift(bob)
    _policy(sandbox_number, alice, reminder_minutes=2, reminders=5)
    text_in(sandbox_number, HELP_SEEKER, "hello")
    clock.advance(minutes=7)  # the worker was down: new, reminders 2 and 3 were missed
    alerts_sweep()
    alerts_sweep()
    assert [(k, a) for _, k, a, _ in _sent()] == [("reminder", 4)]


def test_after_hours_notice_goes_once_to_the_designated_phone(
    clock: Clock, text_in: Any, sandbox_number: Any, alice: Any
) -> None:
    alert_policy_set(
        number=sandbox_number,
        actor_id=alice.pk,
        enabled=False,
        reminder_minutes=5,
        reminders=0,
        escalate_after=0,
        after_hours_phone="(312) 555-0777",
    )
    alert_policy_confirm(  # whoever holds that phone reads the code texted to it out
        number=sandbox_number, actor_id=alice.pk, code=texted_codes("+13125550777")[-1]
    )
    text_in(sandbox_number, HELP_SEEKER, SECRET)
    # What processing marks while offline.
    Conversation.objects.filter(contact__phone=HELP_SEEKER).update(opened_offline=True)
    alerts_sweep()
    alerts_sweep()
    notice = Alert.objects.get()  # the code text is no alert record
    assert (notice.kind, notice.phone, notice.user) == ("after_hours", "+13125550777", None)
    assert notice.message is not None
    assert SECRET not in notice.message.body and "while it is offline" in notice.message.body
    clock.advance(hours=2)
    text_in(sandbox_number, "+13125550188", "another")
    Conversation.objects.filter(contact__phone="+13125550188").update(opened_offline=True)
    alerts_sweep()
    assert Alert.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_sweep_killed_half_way_neither_loses_nor_repeats_an_alert(
    clock: Clock, on_shift: OnShift, org: Any, sandbox_number: Any, alice: Any, bob: Any
) -> None:
    """A worker process is killed (SIGKILL) in the middle of a sweep; the next sweep sends
    exactly the alerts that were not sent, and every record has its text."""
    import multiprocessing
    import os
    import signal
    import time

    from django.db import connections

    from openline.contacts.models import Contact

    on_shift(bob)
    _policy(sandbox_number, alice)
    count = 120
    contacts = Contact.objects.bulk_create(
        Contact(organization=org, phone=f"+1312556{n:04d}") for n in range(count)
    )
    Conversation.objects.bulk_create(
        Conversation(organization=org, number=sandbox_number, contact=c, last_message_at=clock())
        for c in contacts
    )
    connections.close_all()  # the child opens its own

    def slow_sweep() -> None:  # runs in the child: each text takes a little while
        from openline.messaging.services import outbound

        real = outbound.message_send

        def slow(**kwargs: Any) -> Any:
            time.sleep(0.01)
            return real(**kwargs)

        outbound.message_send = slow  # type: ignore[assignment]
        alerts_sweep()
        os._exit(0)

    child = multiprocessing.get_context("fork").Process(target=slow_sweep)
    child.start()
    deadline = time.monotonic() + 30
    while Alert.objects.count() < 10 and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    connections.close_all()
    sent_before = Alert.objects.count()
    assert 10 <= sent_before < count, "the worker was not killed half-way"
    assert Alert.objects.filter(message__isnull=True).count() == 0  # no record without text
    assert Message.objects.filter(kind=MessageKind.ALERT).count() == sent_before

    result = alerts_sweep()  # the restarted worker
    assert result.sent == count - sent_before
    assert Alert.objects.count() == count
    assert Alert.objects.values("conversation_id").distinct().count() == count
    assert Message.objects.filter(kind=MessageKind.ALERT).count() == count
    assert alerts_sweep().sent == 0


def test_the_batch_consent_check_agrees_with_the_ledger_state(
    org: Any, alice: Any, clock: Clock
) -> None:
    """The sweep reads many phones' consent at once; it must say what consent_state says."""
    from openline.contacts.selectors import consent_opted_in, consent_state
    from openline.contacts.services.consent import consent_record_opt_in, consent_record_opt_out

    phones = {f"+1312555{n:04d}" for n in range(300, 306)}
    a, b, c, d, e, _ = sorted(phones)
    for phone in (a, b, c, d):
        consent_record_opt_in(
            organization_id=org.pk, phone=phone, source="staff", evidence="x", actor_id=alice.pk
        )
        clock.advance(seconds=1)
    consent_record_opt_out(organization_id=org.pk, phone=b, source="keyword", text="STOP")
    clock.advance(seconds=1)
    consent_record_opt_out(organization_id=org.pk, phone=c, source="staff", evidence="left")
    clock.advance(seconds=1)
    consent_record_opt_in(
        organization_id=org.pk, phone=c, source="staff", evidence="back", actor_id=alice.pk
    )
    consent_record_opt_out(organization_id=org.pk, phone=e, source="keyword", text="STOP")
    expected = {
        p for p in phones if consent_state(organization_id=org.pk, phone=p).status == "opted_in"
    }
    assert expected == {a, c, d}
    assert consent_opted_in(organization_id=org.pk, phones=phones) == expected


@pytest.mark.parametrize("body", ["Help", "START"])
def test_a_first_text_that_is_only_a_keyword_alerts_the_people_on_shift(
    clock: Clock, on_shift: OnShift, text_in: Any, sandbox_number: Any, alice: Any, bob: Any,
    body: str,
) -> None:  # fmt: skip
    """Issue 13: "Help" to a crisis line waits in the queue like any text, alerts included."""
    on_shift(bob)
    _policy(sandbox_number, alice)
    text_in(sandbox_number, HELP_SEEKER, body)

    assert [k for _, k, _, _ in _run(clock, minutes=1)] == ["new"]
