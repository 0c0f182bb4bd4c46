"""Deactivating a member, across the apps: sessions end, their sign-ups go (listing the
dates left with nobody), their conversations go back to the queue with a note, their
consoles are told, and no alert text reaches them any more."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from openline.alerts.models import Alert
from openline.alerts.services import alert_policy_set
from openline.alerts.sweep import alerts_sweep
from openline.alerts.tests.conftest import give_confirmed_phone
from openline.availability.models import ShiftSignUp
from openline.availability.services import shift_create, shift_sign_up
from openline.console.offboarding import member_offboard, offboarding_plan
from openline.core.models import AuditEvent, Membership
from openline.messaging.models import Conversation, ConversationNote, Message, MessageKind
from openline.messaging.services.assignment import conversation_assume


def _m(user: Any) -> Membership:
    return Membership.objects.select_related("user").get(user=user)


def _tomorrow_shift(org: Any, alice: Any, number: Any, title: str, places: int = 2) -> Any:
    start = (timezone.now() + timedelta(days=1)).astimezone(ZoneInfo(org.timezone))
    return shift_create(
        organization_id=org.pk,
        actor_id=alice.pk,
        number_id=number.pk,
        kind="normal",
        start_date=start.date(),
        start_time=start.time().replace(second=0, microsecond=0),
        duration_minutes=120,
        places=places,
        title=title,
    )


def _sign_up(org: Any, alice: Any, shift: Any, user: Any) -> None:
    shift_sign_up(
        organization_id=org.pk,
        actor_id=alice.pk,
        shift_id=shift.pk,
        occurrence_start=shift.first_start,
        user_id=user.pk,
    )


def test_offboarding_does_everything_in_one_go(
    org: Any,
    alice: Any,
    bob: Any,
    dora: Any,
    sandbox_number: Any,
    put_online: Any,
    text_in: Any,
    pipeline: Any,
    published: list[dict[str, Any]],
) -> None:
    now_shift = put_online(sandbox_number, bob)
    alone = _tomorrow_shift(org, alice, sandbox_number, "Tomorrow, alone")
    shared = _tomorrow_shift(org, alice, sandbox_number, "Tomorrow, with dora")
    for shift in (alone, shared):
        _sign_up(org, alice, shift, bob)
    _sign_up(org, alice, shared, dora)
    conversation = text_in("hello?")
    conversation_assume(membership=_m(bob), conversation=conversation)
    bob_client = Client()
    bob_client.force_login(bob)
    assert bob_client.get(reverse("console:home")).status_code == 200

    plan = offboarding_plan(organization=org, membership_id=_m(bob).pk)
    assert (plan.conversations, plan.signups) == (1, 3)
    done = pipeline.run(
        lambda: member_offboard(organization=org, membership_id=_m(bob).pk, actor_id=alice.pk)
    )

    # Sessions: his next request is sent to sign in.
    response = bob_client.get(reverse("console:home"))
    assert response.status_code == 302 and reverse("login") in response["Location"]
    # Shifts: all of his that are not over are gone; two dates now have nobody.
    assert not ShiftSignUp.objects.filter(user=bob).exists()
    assert ShiftSignUp.objects.filter(user=dora, shift=shared).count() == 1
    assert done.signups_removed == 3
    assert [(u.shift_id, u.title) for u in done.uncovered] == [
        (now_shift.pk, "On now"),
        (alone.pk, "Tomorrow, alone"),
    ]
    # The conversation: back in the queue, with the note, and the consoles told.
    fresh = Conversation.objects.get(pk=conversation.pk)
    assert (fresh.status, fresh.assigned_to_id) == ("waiting", None)
    assert done.conversation_ids == [conversation.pk]
    note = ConversationNote.objects.get(conversation=conversation, author=None)
    assert note.body == "bob@example.org was deactivated; this conversation is back in the queue"
    assert {"type": "member.signed_out", "user_id": bob.pk, "organization_id": org.pk} in published
    moved = [e for e in published if e["type"] == "conversation.assigned"][-1]
    assert (moved["conversation_id"], moved["assigned_to_id"]) == (conversation.pk, None)
    assert moved["previous_assigned_to_id"] == bob.pk
    # The membership and the audit log.
    assert not _m(bob).is_active
    assert AuditEvent.objects.filter(action="member.deactivated", actor=alice).count() == 1


def test_after_offboarding_alerts_text_the_others_never_them(
    org: Any,
    alice: Any,
    bob: Any,
    dora: Any,
    sandbox_number: Any,
    put_online: Any,
    text_in: Any,
) -> None:
    put_online(sandbox_number, bob)
    put_online(sandbox_number, dora)
    give_confirmed_phone(org, bob, "+13125550101")
    give_confirmed_phone(org, dora, "+13125550102")
    alert_policy_set(
        number=sandbox_number,
        actor_id=alice.pk,
        enabled=True,
        reminder_minutes=0,
        reminders=0,
        escalate_after=0,
    )
    member_offboard(organization=org, membership_id=_m(bob).pk, actor_id=alice.pk)
    text_in("is anyone there?")
    alerts_sweep()
    assert list(Alert.objects.values_list("phone", flat=True)) == ["+13125550102"]
    texted = Message.objects.filter(
        kind=MessageKind.ALERT, conversation__contact__phone="+13125550101"
    )
    assert not texted.exists()


def test_the_last_admin_cannot_be_offboarded_and_nothing_changes(
    org: Any, alice: Any, sandbox_number: Any, put_online: Any, published: list[Any]
) -> None:
    put_online(sandbox_number, alice)
    with pytest.raises(ValidationError, match="last active admin"):
        member_offboard(organization=org, membership_id=_m(alice).pk, actor_id=alice.pk)
    assert _m(alice).is_active
    assert ShiftSignUp.objects.filter(user=alice).count() == 1
    assert published == []


def test_reactivation_brings_back_the_membership_only(
    org: Any, alice: Any, bob: Any, sandbox_number: Any, put_online: Any, text_in: Any
) -> None:
    from openline.core.team import member_reactivate

    put_online(sandbox_number, bob)
    conversation = text_in("hello?")
    conversation_assume(membership=_m(bob), conversation=conversation)
    member_offboard(organization=org, membership_id=_m(bob).pk, actor_id=alice.pk)
    member_reactivate(organization=org, membership_id=_m(bob).pk, actor_id=alice.pk)
    assert _m(bob).is_active
    assert not ShiftSignUp.objects.filter(user=bob).exists()
    assert Conversation.objects.get(pk=conversation.pk).assigned_to_id is None
