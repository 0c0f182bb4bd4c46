"""Take next: the first conversation in the Waiting view's order (priority, then the longest
wait), never a held one, within the member's limit; people clicking at once each get a
different conversation."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import close_old_connections
from django.utils import timezone

from openline.core.models import Membership
from openline.messaging import selectors
from openline.messaging.models import Conversation, ConversationNote, Priority
from openline.messaging.services import assignment
from openline.messaging.services.assignment import AssignmentError

pytestmark = pytest.mark.django_db


def _m(user: Any) -> Membership:
    return Membership.objects.select_related("organization").get(user=user)


def _waiting(text_in: Any, number: Any, n: int, body: str = "hello") -> Conversation:
    return text_in(number, f"+1202555{n:04d}", body).conversation


def test_take_next_follows_the_waiting_views_order(
    bob: Any, text_in: Any, sandbox_number: Any
) -> None:
    first = _waiting(text_in, sandbox_number, 301)
    second = _waiting(text_in, sandbox_number, 302)
    urgent = _waiting(text_in, sandbox_number, 303, "I want to kill myself")
    high = _waiting(text_in, sandbox_number, 304, "i have pills")
    # The oldest first among equals, whatever their ids.
    Conversation.objects.filter(pk=second.pk).update(
        created_at=first.created_at - timedelta(minutes=1)
    )
    expected = [urgent.pk, high.pk, second.pk, first.pk]
    waiting_view = selectors.queue_conversations(
        membership=_m(bob), filters=selectors.QueueFilter()
    )
    assert [c.pk for c in waiting_view] == expected
    taken = []
    for _ in expected:
        conversation = assignment.conversation_assume_next(membership=_m(bob))
        assert conversation is not None and conversation.assigned_to_id == bob.pk
        taken.append(conversation.pk)
    assert taken == expected
    assert assignment.conversation_assume_next(membership=_m(bob)) is None
    notes = ConversationNote.objects.filter(body="assumed the conversation")
    assert notes.count() == 4


def test_take_next_skips_held_conversations_until_their_hold_ends(
    bob: Any, text_in: Any, sandbox_number: Any
) -> None:
    held = _waiting(text_in, sandbox_number, 311)
    Conversation.objects.filter(pk=held.pk).update(
        held_until=timezone.now() + timedelta(minutes=5), priority=Priority.URGENT
    )
    calm = _waiting(text_in, sandbox_number, 312)
    assert assignment.conversation_assume_next(membership=_m(bob)).pk == calm.pk  # type: ignore[union-attr]
    assert assignment.conversation_assume_next(membership=_m(bob)) is None
    Conversation.objects.filter(pk=held.pk).update(held_until=timezone.now())
    assert assignment.conversation_assume_next(membership=_m(bob)).pk == held.pk  # type: ignore[union-attr]


def test_take_next_respects_the_members_limit(
    bob: Any, org: Any, text_in: Any, sandbox_number: Any
) -> None:
    Membership.objects.filter(user=bob).update(max_conversations=1)
    _waiting(text_in, sandbox_number, 321)
    later = _waiting(text_in, sandbox_number, 322)
    assert assignment.conversation_assume_next(membership=_m(bob)) is not None
    with pytest.raises(AssignmentError, match="limit is 1") as refused:
        assignment.conversation_assume_next(membership=_m(bob))
    assert refused.value.code == "limit"
    assert Conversation.objects.get(pk=later.pk).status == "waiting"


def test_take_next_stays_in_the_members_organization_and_the_chosen_inbox(
    bob: Any, charlie: Any, text_in: Any, sandbox_number: Any, other_number: Any, org: Any
) -> None:
    from openline.providers.services import number_add

    ours = _waiting(text_in, sandbox_number, 331)
    second_inbox = number_add(
        organization=org, provider="sandbox", e164="+12025550143", name="Youth line"
    )
    youth = _waiting(text_in, second_inbox, 332, "i have pills")
    _waiting(text_in, other_number, 333, "I want to kill myself")
    taken = assignment.conversation_assume_next(membership=_m(bob), number_id=sandbox_number.pk)
    assert taken is not None and taken.pk == ours.pk
    taken = assignment.conversation_assume_next(membership=_m(bob))
    assert taken is not None and taken.pk == youth.pk
    assert assignment.conversation_assume_next(membership=_m(bob)) is None
    other = assignment.conversation_assume_next(membership=_m(charlie))
    assert other is not None and other.organization_id == charlie.memberships.get().organization_id


def test_a_conversation_assumed_by_someone_else_is_passed_over(
    bob: Any, dora: Any, text_in: Any, sandbox_number: Any, monkeypatch: Any
) -> None:
    """Lost to a plain Assume between choosing and claiming: the next one is taken."""
    first = _waiting(text_in, sandbox_number, 341, "i have pills")
    second = _waiting(text_in, sandbox_number, 342)
    real = assignment.conversation_assume
    calls: list[int] = []

    def racing(*, membership: Membership, conversation: Conversation) -> Conversation:
        calls.append(conversation.pk)
        if len(calls) == 1:  # dora gets there first
            real(membership=_m(dora), conversation=Conversation.objects.get(pk=conversation.pk))
        return real(membership=membership, conversation=conversation)

    monkeypatch.setattr(assignment, "conversation_assume", racing)
    taken = assignment.conversation_assume_next(membership=_m(bob))
    assert calls == [first.pk, second.pk]
    assert taken is not None and (taken.pk, taken.assigned_to_id) == (second.pk, bob.pk)
    assert Conversation.objects.get(pk=first.pk).assigned_to_id == dora.pk


@pytest.mark.django_db(transaction=True)
def test_people_taking_next_at_once_each_get_a_different_conversation(
    org: Any, sandbox_number: Any, monkeypatch: Any
) -> None:
    """On PostgreSQL the candidate row is locked with SKIP LOCKED: nobody waits behind
    another's row (a plain FOR UPDATE would wait, then find that row taken and, with its
    LIMIT 1, nothing at all). Each claim is slowed down so that the claims overlap. On
    SQLite writes take turns."""
    import time

    from django.utils import timezone as tz

    real_note = assignment._note

    def slow_note(*args: Any) -> None:
        real_note(*args)
        time.sleep(0.3)  # the claim's transaction stays open: the others overlap it

    monkeypatch.setattr(assignment, "_note", slow_note)

    from openline.core.services import user_create
    from openline.messaging.models import InboundEvent
    from openline.messaging.services.inbound import inbound_process_pending

    for n in range(5):
        InboundEvent.objects.create(
            organization=org,
            number=sandbox_number,
            provider="sandbox",
            provider_message_id=f"NEXT{n}",
            from_number=f"+1202555{400 + n:04d}",
            body="I want to kill myself" if n == 4 else "hello",
            received_at=tz.now(),
        )
    inbound_process_pending()
    assert Conversation.objects.filter(status="waiting").count() == 5
    people = [
        user_create(
            organization=org, email=f"n{i}@example.org", role="counselor", password="pass-1234"
        ).user
        for i in range(4)
    ]
    barrier = threading.Barrier(len(people))
    outcomes: dict[int, int | str] = {}

    def take(user: Any) -> None:
        try:
            membership = _m(user)
            barrier.wait(timeout=10)
            taken = assignment.conversation_assume_next(membership=membership)
            outcomes[user.pk] = taken.pk if taken is not None else "none"
        except Exception as exc:  # noqa: BLE001 — recorded and asserted below
            outcomes[user.pk] = repr(exc)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=take, args=(u,)) for u in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    taken = list(outcomes.values())
    assert len(taken) == 4 and all(isinstance(pk, int) for pk in taken), outcomes
    assert len(set(taken)) == 4
    urgent = Conversation.objects.get(priority=Priority.URGENT)
    assert urgent.pk in taken  # the urgent one was served
    for user_id, pk in outcomes.items():
        assert Conversation.objects.get(pk=pk).assigned_to_id == user_id
    assert Conversation.objects.filter(status="waiting").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_claim_in_progress_does_not_hold_up_the_next_person(
    org: Any, sandbox_number: Any, bob: Any, dora: Any, monkeypatch: Any
) -> None:
    """While bob's Take next holds the urgent conversation's row (his transaction not yet
    committed), dora's Take next skips that row and gets the next one at once, instead of
    waiting for bob. PostgreSQL only: SQLite lets one writer at a time, by design."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("SQLite has one writer at a time: the second claim waits by design")
    from django.utils import timezone as tz

    from openline.messaging.models import InboundEvent
    from openline.messaging.services.inbound import inbound_process_pending

    for n, body in enumerate(["hello", "I want to kill myself"]):
        InboundEvent.objects.create(
            organization=org,
            number=sandbox_number,
            provider="sandbox",
            provider_message_id=f"HOLD{n}",
            from_number=f"+1202555{410 + n:04d}",
            body=body,
            received_at=tz.now(),
        )
    inbound_process_pending()
    urgent = Conversation.objects.get(priority=Priority.URGENT)
    calm = Conversation.objects.exclude(pk=urgent.pk).get()
    holding, release = threading.Event(), threading.Event()
    real_note = assignment._note

    def held_note(conversation: Conversation, *args: Any) -> None:
        real_note(conversation, *args)
        if conversation.pk == urgent.pk:
            holding.set()
            release.wait(timeout=20)

    monkeypatch.setattr(assignment, "_note", held_note)
    outcomes: dict[str, Any] = {}

    def take(name: str, user: Any) -> None:
        try:
            outcomes[name] = assignment.conversation_assume_next(membership=_m(user))
        except Exception as exc:  # noqa: BLE001 — recorded and asserted below
            outcomes[name] = exc
        finally:
            close_old_connections()

    bobs = threading.Thread(target=take, args=("bob", bob))
    bobs.start()
    assert holding.wait(timeout=20), "bob's claim never reached its note"
    doras = threading.Thread(target=take, args=("dora", dora))
    doras.start()
    doras.join(timeout=15)
    finished_while_bob_held = not doras.is_alive()
    release.set()
    bobs.join(timeout=20)
    doras.join(timeout=20)
    assert finished_while_bob_held, "dora waited behind bob's row"
    assert outcomes["bob"].pk == urgent.pk and outcomes["dora"].pk == calm.pk, outcomes
