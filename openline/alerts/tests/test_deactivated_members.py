"""A deactivated member is never texted an alert, even if a sign-up of theirs is left."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import Clock
from openline.alerts.models import Alert
from openline.alerts.selectors import calculator
from openline.alerts.services import alert_policy_set
from openline.alerts.sweep import alert_plan, alerts_sweep
from openline.alerts.tests.conftest import OnShift
from openline.core.models import Membership
from openline.messaging.models import Message, MessageKind

pytestmark = pytest.mark.django_db


def test_the_sweep_texts_the_others_on_shift_never_a_deactivated_member(
    clock: Clock,
    on_shift: OnShift,
    text_in: Any,
    sandbox_number: Any,
    org: Any,
    alice: Any,
    bob: Any,
    dora: Any,
    sue: Any,
) -> None:
    bobs, doras = on_shift(bob), on_shift(dora)
    sues = on_shift(sue, kind="oncall")
    alert_policy_set(
        number=sandbox_number,
        actor_id=alice.pk,
        enabled=True,
        reminder_minutes=1,
        reminders=1,
        escalate_after=1,
    )
    # Deactivated without the console's offboarding: his sign-up and phone are still there.
    Membership.objects.filter(user__in=[bob, sue]).update(is_active=False)
    text_in(sandbox_number, "+13125550199", "hello?")
    for _ in range(4):
        alerts_sweep()
        clock.advance(seconds=30)
    phones = set(Alert.objects.values_list("phone", flat=True))
    assert phones == {doras}  # the escalation to sue (on call) found nobody either
    texted = Message.objects.filter(kind=MessageKind.ALERT)
    assert not texted.filter(conversation__contact__phone__in=[bobs, sues]).exists()
    plan = alert_plan(enabled=True, reminder_minutes=1, reminders=1, escalate_after=1)
    _, staff, oncall = calculator(organization_id=org.pk, number_id=sandbox_number.pk, plan=plan)
    assert (staff, oncall) == (1, 0)  # the calculator counts the same people


def test_nobody_left_means_no_alert_text(
    clock: Clock, on_shift: OnShift, text_in: Any, sandbox_number: Any, alice: Any, bob: Any
) -> None:
    on_shift(bob)
    alert_policy_set(
        number=sandbox_number,
        actor_id=alice.pk,
        enabled=True,
        reminder_minutes=0,
        reminders=0,
        escalate_after=0,
    )
    Membership.objects.filter(user=bob).update(is_active=False)
    text_in(sandbox_number, "+13125550199", "hello?")
    alerts_sweep()
    assert not Alert.objects.exists()
    assert not Message.objects.filter(kind=MessageKind.ALERT).exists()
