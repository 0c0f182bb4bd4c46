"""High-risk wait alerts: a waiting conversation at high or urgent priority that has waited
its inbox's high_risk_minutes texts the supervisors and admins on shift and the on-call
people, once; never for held conversations or normal priorities; refused for opted-out alert
phones like every alert. Held conversations get no alert of any kind until released."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from conftest import Clock
from openline.alerts.models import Alert, AlertKind, AlertPolicy
from openline.alerts.services import alert_policy_set
from openline.alerts.sweep import alerts_sweep
from openline.alerts.tests.conftest import OnShift
from openline.messaging.models import Conversation, Message, MessageKind, Priority

pytestmark = pytest.mark.django_db
PERSON = "+13125550199"
URGENT_TEXT = "I want to kill myself tonight"


def _policy(number: Any, alice: Any, **settings: Any) -> AlertPolicy:
    values = {"enabled": True, "reminder_minutes": 0, "reminders": 0, "escalate_after": 0}
    return alert_policy_set(
        number=number, actor_id=alice.pk, **{"high_risk_minutes": 3, **values, **settings}
    )


def _high_risk() -> list[tuple[str, int]]:
    return sorted((a.phone, a.attempt) for a in Alert.objects.filter(kind=AlertKind.HIGH_RISK))


def _sweep_each_minute(clock: Clock, minutes: int) -> dict[int, list[str]]:
    """Sweep once a minute; the high-risk phones first alerted at each minute."""
    seen: set[str] = set()
    firsts: dict[int, list[str]] = {}
    for minute in range(minutes + 1):
        alerts_sweep()
        now = {phone for phone, _ in _high_risk()}
        if now - seen:
            firsts[minute] = sorted(now - seen)
        seen = now
        clock.advance(minutes=1)
    return firsts


def test_an_urgent_wait_alerts_supervisors_admins_and_on_call_once_after_the_set_time(
    clock: Clock, on_shift: OnShift, text_in: Any, sandbox_number: Any, alice: Any, bob: Any,
    sue: Any, dora: Any,
) -> None:  # fmt: skip
    admin, supervisor = on_shift(alice), on_shift(sue)
    counselor = on_shift(bob)  # a counselor on shift: new-conversation texts only
    on_call = on_shift(dora, kind="oncall")  # on call, whatever their role
    _policy(sandbox_number, alice, high_risk_minutes=3)
    text_in(sandbox_number, PERSON, URGENT_TEXT)
    firsts = _sweep_each_minute(clock, 10)
    assert firsts == {3: sorted([admin, supervisor, on_call])}
    assert _high_risk() == sorted([(admin, 1), (supervisor, 1), (on_call, 1)])
    assert counselor not in {phone for phone, _ in _high_risk()}
    texts = Message.objects.filter(kind=MessageKind.ALERT, body__contains="high-risk")
    assert texts.count() == 3
    for body in texts.values_list("body", flat=True):
        assert body.startswith("OpenLine: a high-risk text conversation has waited 3 min in Main")
        assert "/conversations/" in body
        assert "kill" not in body and "5550199" not in body


def test_a_supervisor_on_shift_in_another_inbox_is_alerted_too(
    clock: Clock, on_shift: OnShift, text_in: Any, sandbox_number: Any, alice: Any, bob: Any,
    sue: Any,
) -> None:  # fmt: skip
    from openline.providers.services import number_add

    youth = number_add(
        organization=sandbox_number.organization,
        provider="sandbox",
        e164="+12025550143",
        name="Youth",
    )
    on_shift(bob)  # keeps the main inbox online
    supervisor = on_shift(sue, number=youth)
    _policy(sandbox_number, alice, high_risk_minutes=1)
    text_in(sandbox_number, PERSON, "i have pills")  # high
    assert _sweep_each_minute(clock, 3) == {1: [supervisor]}


@pytest.mark.parametrize("priority", [Priority.NORMAL, Priority.ELEVATED])
def test_no_high_risk_alert_below_high_priority(
    priority: int, clock: Clock, on_shift: OnShift, text_in: Any, sandbox_number: Any,
    alice: Any, sue: Any,
) -> None:  # fmt: skip
    on_shift(sue)
    _policy(sandbox_number, alice, high_risk_minutes=1)
    conversation = text_in(sandbox_number, PERSON, "hello").conversation
    Conversation.objects.filter(pk=conversation.pk).update(priority=priority)
    assert _sweep_each_minute(clock, 5) == {}
    # The usual new-conversation alert still went out.
    assert Alert.objects.filter(kind=AlertKind.NEW).count() == 1


def test_a_priority_raised_later_alerts_at_the_next_sweep(
    clock: Clock, on_shift: OnShift, text_in: Any, sandbox_number: Any, alice: Any, sue: Any,
) -> None:  # fmt: skip
    supervisor = on_shift(sue)
    _policy(sandbox_number, alice, high_risk_minutes=3)
    text_in(sandbox_number, PERSON, "hello")
    assert _sweep_each_minute(clock, 5) == {}
    text_in(sandbox_number, PERSON, URGENT_TEXT)  # waited 6 minutes already
    assert _sweep_each_minute(clock, 3) == {0: [supervisor]}


def test_held_conversations_alert_nobody_until_they_reach_the_queue(
    clock: Clock, on_shift: OnShift, text_in: Any, sandbox_number: Any, alice: Any, bob: Any,
    sue: Any,
) -> None:  # fmt: skip
    on_shift(bob)
    supervisor = on_shift(sue)
    _policy(sandbox_number, alice, high_risk_minutes=1)
    conversation = text_in(sandbox_number, PERSON, "hello").conversation
    # In its pre-conversation survey, and (say, from a survey answer) high priority.
    Conversation.objects.filter(pk=conversation.pk).update(
        held_until=clock() + timedelta(minutes=5), priority=Priority.HIGH
    )
    for _ in range(4):
        alerts_sweep()
        clock.advance(minutes=1)
    assert not Alert.objects.exists()  # neither new-conversation nor high-risk
    clock.advance(minutes=2)  # the hold has ended: it is in the queue, waited 6 minutes
    alerts_sweep()
    assert _high_risk() == [(supervisor, 1)]
    assert Alert.objects.filter(kind=AlertKind.NEW).count() == 2  # bob and sue


def test_zero_minutes_alerts_off_or_someone_assumed_means_no_high_risk_alert(
    clock: Clock, on_shift: OnShift, text_in: Any, sandbox_number: Any, alice: Any, bob: Any,
    sue: Any,
) -> None:  # fmt: skip
    from openline.core.models import Membership
    from openline.messaging.services.assignment import conversation_assume

    on_shift(sue)
    _policy(sandbox_number, alice, high_risk_minutes=0)
    text_in(sandbox_number, PERSON, URGENT_TEXT)
    assert _sweep_each_minute(clock, 4) == {}
    _policy(sandbox_number, alice, enabled=False, high_risk_minutes=1)
    assert _sweep_each_minute(clock, 2) == {}
    conversation = Conversation.objects.get(contact__phone=PERSON)
    conversation_assume(conversation=conversation, membership=Membership.objects.get(user=bob))
    _policy(sandbox_number, alice, high_risk_minutes=1)
    assert _sweep_each_minute(clock, 3) == {}


def test_opted_out_alert_phones_get_no_high_risk_alert(
    clock: Clock, on_shift: OnShift, text_in: Any, sandbox_number: Any, alice: Any, sue: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from openline.alerts import sweep
    from openline.contacts.services.consent import consent_record_opt_out

    admin = on_shift(alice)
    never_permitted = on_shift(sue, permit=False)
    _policy(sandbox_number, alice, high_risk_minutes=1)
    text_in(sandbox_number, PERSON, URGENT_TEXT)
    clock.advance(minutes=1)
    # The admin texted STOP after the roster was read: the send service refuses, recorded.
    consent_record_opt_out(
        organization_id=sandbox_number.organization_id, phone=admin, source="keyword", text="STOP"
    )
    monkeypatch.setattr(
        sweep, "opted_in_phones", lambda org, phones: set(phones) - {never_permitted}
    )
    result = alerts_sweep()
    alerts = list(Alert.objects.filter(kind=AlertKind.HIGH_RISK))
    assert [(a.phone, a.message_id, bool(a.refused)) for a in alerts] == [(admin, None, True)]
    assert "opted out" in alerts[0].refused and result.refused >= 1
    assert not Message.objects.filter(kind=MessageKind.ALERT, body__contains="high-risk").exists()


def test_the_policy_page_sets_the_high_risk_time(
    sandbox_number: Any, alice: Any, clock: Clock
) -> None:
    admin = Client()
    admin.force_login(alice)
    policy = {
        "enabled": "on",
        "reminder_minutes": "5",
        "reminders": "2",
        "escalate_after": "0",
        "after_hours_phone": "",
    }
    page = admin.get(f"/alerts/?inbox={sandbox_number.pk}").content.decode()
    assert 'name="high_risk_minutes"' in page and "High-risk wait alert after" in page
    saved = admin.post(f"/alerts/?inbox={sandbox_number.pk}", {**policy, "high_risk_minutes": "7"})
    assert saved.status_code == 302
    assert AlertPolicy.objects.get(number=sandbox_number).high_risk_minutes == 7
    # Left out (an older form): unchanged.
    admin.post(f"/alerts/?inbox={sandbox_number.pk}", policy)
    assert AlertPolicy.objects.get(number=sandbox_number).high_risk_minutes == 7
    for bad in ("-1", "121", "soon"):
        refused = admin.post(
            f"/alerts/?inbox={sandbox_number.pk}", {**policy, "high_risk_minutes": bad}
        )
        assert refused.status_code == 422, bad
        body = refused.content.decode()
        field = body[body.index('name="high_risk_minutes"') :]
        assert 'class="form-error"' in field[: field.index("</div>")], bad
    assert AlertPolicy.objects.get(number=sandbox_number).high_risk_minutes == 7
