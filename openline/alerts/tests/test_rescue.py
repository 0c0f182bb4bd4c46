"""The imminent-risk alert: starting the rescue checklist texts each supervisor and admin
on shift (and on call) once, nobody else, without the person's words, name or number."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings

from conftest import Clock, Pipeline
from openline.alerts.models import Alert, AlertKind
from openline.alerts.rescue import rescue_alerts_send
from openline.alerts.tests.conftest import OnShift, give_confirmed_phone
from openline.contacts.services.consent import consent_record
from openline.core.models import Membership
from openline.core.services import user_create
from openline.forms import rescue
from openline.messaging.models import Conversation, Message, MessageKind
from openline.messaging.services import assignment

pytestmark = pytest.mark.django_db
TEXTER = "+13125550166"
SECRET = "plover-42 has the pills counted out"


def _member(user: Any, org: Any) -> Membership:
    return Membership.objects.get(user=user, organization=org)


def _alert_texts(phone: str) -> list[str]:
    return list(
        Message.objects.filter(
            kind=MessageKind.ALERT, conversation__contact__phone=phone
        ).values_list("body", flat=True)
    )


@pytest.fixture
def held(
    clock: Clock, text_in: Callable[..., Any], sandbox_number: Any, org: Any, bob: Any
) -> Conversation:
    bob.first_name = "Robert"
    bob.save(update_fields=["first_name"])
    conversation = Conversation.objects.get(
        pk=text_in(sandbox_number, TEXTER, SECRET).conversation_id
    )
    return assignment.conversation_assume(membership=_member(bob, org), conversation=conversation)


def _start(pipeline: Pipeline, user: Any, org: Any, conversation: Conversation) -> Any:
    return pipeline.run(
        lambda: rescue.risk_checklist_start(
            membership=_member(user, org), conversation=conversation
        )
    )


def test_supervisors_and_admins_on_shift_and_on_call_get_one_text_each(
    pipeline: Pipeline,
    on_shift: OnShift,
    org: Any,
    alice: Any,
    bob: Any,
    sue: Any,
    dora: Any,
    sandbox_number: Any,
    held: Conversation,
) -> None:
    def member(email: str, role: str) -> Any:
        return user_create(organization=org, email=email, role=role, password="pass-12345").user

    sue_phone = on_shift(sue)
    alice_phone = on_shift(alice, kind="oncall")
    dora_phone = on_shift(dora)  # a counselor on shift: not texted
    bob_phone = on_shift(bob)  # the one who starts it knows
    away = member("away@example.org", "supervisor")
    away_phone = "+13125559001"
    give_confirmed_phone(org, away, away_phone)  # a supervisor off shift
    gone = member("gone@example.org", "supervisor")
    gone_phone = on_shift(gone)
    Membership.objects.filter(user=gone, organization=org).update(is_active=False)
    unwilling = member("unwilling@example.org", "admin")
    unwilling_phone = on_shift(unwilling, permit=False)  # never permitted texts

    _start(pipeline, bob, org, held)

    texted = Alert.objects.filter(kind=AlertKind.RESCUE)
    assert sorted(texted.values_list("user_id", "phone", "attempt", "refused")) == sorted(
        [(sue.pk, sue_phone, 1, ""), (alice.pk, alice_phone, 1, "")]
    )
    expected = (
        f"OpenLine: imminent risk in a conversation in {sandbox_number.label}, Robert started "
        f"the rescue checklist. {settings.PUBLIC_URL}/conversations/{held.pk}/"
    )
    for phone in (sue_phone, alice_phone):
        assert _alert_texts(phone) == [expected]
    for phone in (dora_phone, bob_phone, away_phone, gone_phone, unwilling_phone):
        assert _alert_texts(phone) == []
    for body in _alert_texts(sue_phone):
        assert SECRET not in body and "555-0166" not in body and TEXTER not in body


def test_a_second_start_and_a_new_checklist_text_nobody_again(
    pipeline: Pipeline, on_shift: OnShift, org: Any, bob: Any, sue: Any, held: Conversation
) -> None:
    phone = on_shift(sue)
    first = _start(pipeline, bob, org, held)
    _start(pipeline, bob, org, held)
    assert len(_alert_texts(phone)) == 1
    rescue.risk_checklist_end(membership=_member(bob, org), checklist=first)
    _start(pipeline, bob, org, held)
    assert len(_alert_texts(phone)) == 1
    assert Alert.objects.filter(kind=AlertKind.RESCUE).count() == 1


def test_a_phone_that_texted_stop_is_refused_by_the_send_service(
    pipeline: Pipeline,
    on_shift: OnShift,
    monkeypatch: pytest.MonkeyPatch,
    org: Any,
    bob: Any,
    sue: Any,
    held: Conversation,
) -> None:
    phone = on_shift(sue)
    consent_record(
        organization_id=org.pk, phone=phone, kind="opt_out", source="keyword", evidence="STOP"
    )
    # As if the STOP arrived between choosing the people and sending: the roster's check is
    # skipped, and the send service refuses on its own.
    monkeypatch.setattr(
        "openline.alerts.sweep.opted_in_phones", lambda organization_id, phones: set(phones)
    )
    result = rescue_alerts_send(conversation_id=held.pk, started_by_id=bob.pk)
    assert (result.sent, result.refused) == (0, 1)
    alert = Alert.objects.get(kind=AlertKind.RESCUE)
    assert alert.phone == phone and alert.refused and alert.message_id is None
    assert _alert_texts(phone) == []
    again = rescue_alerts_send(conversation_id=held.pk, started_by_id=bob.pk)
    assert (again.sent, again.refused, again.skipped) == (0, 0, 1)


def test_nobody_on_shift_means_no_text_and_the_checklist_still_starts(
    pipeline: Pipeline, org: Any, bob: Any, sue: Any, held: Conversation
) -> None:
    give_confirmed_phone(org, sue, "+13125559002")  # a phone, but no shift
    checklist = _start(pipeline, bob, org, held)
    assert checklist.pk is not None
    assert not Alert.objects.exists() and _alert_texts("+13125559002") == []


def test_a_supervisor_who_starts_it_is_not_texted_about_it(
    pipeline: Pipeline,
    on_shift: OnShift,
    org: Any,
    alice: Any,
    sue: Any,
    held: Conversation,
) -> None:
    sue_phone, alice_phone = on_shift(sue), on_shift(alice)
    assignment.conversation_join(membership=_member(sue, org), conversation=held)
    _start(pipeline, sue, org, held)
    assert _alert_texts(sue_phone) == []
    assert len(_alert_texts(alice_phone)) == 1
    # No first name on file: never the e-mail address in its place.
    assert ", a team member started the rescue checklist" in _alert_texts(alice_phone)[0]
    assert "sue@" not in _alert_texts(alice_phone)[0]
