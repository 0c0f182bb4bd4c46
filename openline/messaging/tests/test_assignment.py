"""Assume, transfer, close, join, take over, notes, read state: who may do what, and two
people acting at once."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import close_old_connections

from openline.contacts.models import Contact
from openline.core.models import Membership
from openline.messaging import selectors
from openline.messaging.models import (
    Conversation,
    ConversationNote,
    Direction,
    Message,
)
from openline.messaging.services import assignment
from openline.messaging.services.assignment import AssignmentError
from openline.providers.sandbox.models import SandboxMessage

PERSON = "+12025550187"


def _m(user: Any) -> Membership:
    return Membership.objects.select_related("organization").get(user=user)


@pytest.fixture
def waiting(text_in: Any, sandbox_number: Any) -> Conversation:
    return text_in(sandbox_number, PERSON, "is anyone there?").conversation


def _reload(conversation: Conversation) -> Conversation:
    return Conversation.objects.get(pk=conversation.pk)


def test_assume_takes_a_waiting_conversation(
    bob: Any, waiting: Conversation, published: Any, pipeline: Any
) -> None:
    pipeline.run(lambda: assignment.conversation_assume(membership=_m(bob), conversation=waiting))
    fresh = _reload(waiting)
    assert (fresh.status, fresh.assigned_to_id) == ("active", bob.pk)
    assert fresh.assigned_at is not None
    event = [e for e in published if e["type"] == "conversation.assigned"][-1]
    assert event["assigned_to_id"] == bob.pk and event["previous_assigned_to_id"] is None


def test_second_assume_is_told_who_has_it(bob: Any, dora: Any, waiting: Conversation) -> None:
    assignment.conversation_assume(membership=_m(bob), conversation=waiting)
    with pytest.raises(AssignmentError, match="already taken: bob@example.org has it") as err:
        assignment.conversation_assume(membership=_m(dora), conversation=_reload(waiting))
    assert err.value.code == "taken"
    # even with a stale copy that still says "waiting"
    stale = Conversation.objects.get(pk=waiting.pk)
    stale.status, stale.assigned_to_id = "waiting", None
    with pytest.raises(AssignmentError):
        assignment.conversation_assume(membership=_m(dora), conversation=stale)
    assert _reload(waiting).assigned_to_id == bob.pk


@pytest.mark.django_db(transaction=True)
def test_simultaneous_assumes_have_exactly_one_winner(org: Any, sandbox_number: Any) -> None:
    from django.utils import timezone

    from openline.core.services import user_create
    from openline.messaging.models import InboundEvent
    from openline.messaging.services.inbound import inbound_process_pending

    InboundEvent.objects.create(
        organization=org,
        number=sandbox_number,
        provider="sandbox",
        provider_message_id="RACE1",
        from_number=PERSON,
        body="hello",
        received_at=timezone.now(),
    )
    inbound_process_pending()
    conversation = Conversation.objects.get()
    people = [
        user_create(
            organization=org, email=f"c{i}@example.org", role="counselor", password="pass-1234"
        ).user
        for i in range(4)
    ]
    barrier = threading.Barrier(len(people))
    outcomes: list[str] = []

    def claim(user: Any) -> None:
        try:
            membership = _m(user)
            copy = Conversation.objects.get(pk=conversation.pk)
            barrier.wait(timeout=10)
            assignment.conversation_assume(membership=membership, conversation=copy)
            outcomes.append("won")
        except AssignmentError as exc:
            outcomes.append(exc.code)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=claim, args=(u,)) for u in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["taken", "taken", "taken", "won"]
    winner = Conversation.objects.get(pk=conversation.pk).assigned_to_id
    assert winner in {u.pk for u in people}
    assert ConversationNote.objects.filter(body="assumed the conversation").count() == 1


def test_limit_per_organization_and_per_person(
    bob: Any, org: Any, sandbox_number: Any, text_in: Any
) -> None:
    org.max_conversations_per_counselor = 2
    org.save()
    conversations = [
        text_in(sandbox_number, f"+1202555{i:04d}", "hi").conversation for i in range(200, 204)
    ]
    for conversation in conversations[:2]:
        assignment.conversation_assume(membership=_m(bob), conversation=conversation)
    with pytest.raises(AssignmentError, match="limit is 2") as err:
        assignment.conversation_assume(membership=_m(bob), conversation=conversations[2])
    assert err.value.code == "limit"
    Membership.objects.filter(user=bob).update(max_conversations=3)
    assignment.conversation_assume(membership=_m(bob), conversation=conversations[2])
    with pytest.raises(AssignmentError, match="limit is 3"):
        assignment.conversation_assume(membership=_m(bob), conversation=conversations[3])


def test_transfer_with_private_note_sends_nothing(
    bob: Any, dora: Any, waiting: Conversation, pipeline: Any, published: Any
) -> None:
    assignment.conversation_assume(membership=_m(bob), conversation=waiting)
    before = Message.objects.count()
    pipeline.run(
        lambda: assignment.conversation_transfer(
            membership=_m(bob), conversation=waiting, to=_m(dora), note="knows the family"
        )
    )
    fresh = _reload(waiting)
    assert (fresh.status, fresh.assigned_to_id) == ("active", dora.pk)
    assert Message.objects.count() == before  # no greeting, no notice to the person
    assert not SandboxMessage.objects.exists()
    note = ConversationNote.objects.get(kind="transfer")
    assert "knows the family" in note.body and note.author_id == bob.pk
    event = [e for e in published if e["type"] == "conversation.assigned"][-1]
    assert (event["assigned_to_id"], event["previous_assigned_to_id"]) == (dora.pk, bob.pk)


def test_transfer_back_to_the_queue_sends_nothing(
    bob: Any, waiting: Conversation, pipeline: Any, published: Any
) -> None:
    assignment.conversation_assume(membership=_m(bob), conversation=waiting)
    before = Message.objects.count()
    pipeline.run(
        lambda: assignment.conversation_transfer(
            membership=_m(bob), conversation=waiting, to=None, note="needs a Spanish speaker"
        )
    )
    fresh = _reload(waiting)
    assert (fresh.status, fresh.assigned_to_id) == ("waiting", None)
    assert Message.objects.count() == before  # the person is not told, nor greeted again
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exists()
    assert not SandboxMessage.objects.exists()
    note = ConversationNote.objects.get(kind="transfer")
    assert note.body == "→ the queue\nneeds a Spanish speaker" and note.author_id == bob.pk
    event = [e for e in published if e["type"] == "conversation.assigned"][-1]
    assert (event["status"], event["assigned_to_id"], event["previous_assigned_to_id"]) == (
        "waiting",
        None,
        bob.pk,
    )


def test_transfer_to_a_member_at_their_limit_is_refused_naming_them(
    bob: Any, dora: Any, waiting: Conversation, text_in: Any, sandbox_number: Any
) -> None:
    Membership.objects.filter(user=dora).update(max_conversations=1)
    hers = text_in(sandbox_number, "+12025550301", "hello").conversation
    assignment.conversation_assume(membership=_m(dora), conversation=hers)
    assignment.conversation_assume(membership=_m(bob), conversation=waiting)
    with pytest.raises(AssignmentError) as err:
        assignment.conversation_transfer(
            membership=_m(bob), conversation=waiting, to=_m(dora), note="for you"
        )
    assert err.value.code == "limit"
    assert str(err.value) == (
        "cannot transfer: dora@example.org already has 1 active conversation"
        " (their limit is 1); choose someone else or the queue"
    )
    fresh = _reload(waiting)
    assert (fresh.status, fresh.assigned_to_id) == ("active", bob.pk)
    assert not ConversationNote.objects.filter(kind="transfer").exists()
    # once she has room, the same transfer goes through
    assignment.conversation_close(membership=_m(dora), conversation=hers)
    assignment.conversation_transfer(membership=_m(bob), conversation=waiting, to=_m(dora))
    assert _reload(waiting).assigned_to_id == dora.pk


def test_counselor_cannot_transfer_someone_elses(
    bob: Any, dora: Any, waiting: Conversation
) -> None:
    assignment.conversation_assume(membership=_m(bob), conversation=waiting)
    with pytest.raises(AssignmentError) as err:
        assignment.conversation_transfer(membership=_m(dora), conversation=waiting, to=None)
    assert err.value.code == "not_yours"
    assert _reload(waiting).assigned_to_id == bob.pk


def test_transfer_to_another_organizations_member_is_refused(
    bob: Any, charlie: Any, waiting: Conversation
) -> None:
    assignment.conversation_assume(membership=_m(bob), conversation=waiting)
    with pytest.raises(AssignmentError):
        assignment.conversation_transfer(membership=_m(bob), conversation=waiting, to=_m(charlie))
    assert _reload(waiting).assigned_to_id == bob.pk


def test_close_then_a_new_text_opens_a_new_waiting_conversation_with_history(
    bob: Any, waiting: Conversation, text_in: Any, sandbox_number: Any
) -> None:
    assignment.conversation_assume(membership=_m(bob), conversation=waiting)
    assignment.conversation_close(membership=_m(bob), conversation=waiting, wrap_up="safe now")
    assert _reload(waiting).status == "closed"
    assert ConversationNote.objects.get(kind="wrap_up").body == "safe now"
    later = text_in(sandbox_number, PERSON, "me again").conversation
    assert later.pk != waiting.pk and later.status == "waiting" and later.assigned_to_id is None
    earlier = selectors.earlier_messages(conversation=later)
    assert [m.body for m in earlier] == ["is anyone there?"]


def test_supervisor_monitors_read_only_then_joins_and_replies(
    bob: Any, sue: Any, waiting: Conversation, pipeline: Any
) -> None:
    assignment.conversation_assume(membership=_m(bob), conversation=waiting)
    access = assignment.conversation_access(membership=_m(sue), conversation=_reload(waiting))
    assert (access.read, access.reply, access.monitoring) == (True, False, True)
    with pytest.raises(AssignmentError, match="join or take over"):
        assignment.conversation_reply(membership=_m(sue), conversation=waiting, body="hi")
    assignment.conversation_join(membership=_m(sue), conversation=waiting)
    access = assignment.conversation_access(membership=_m(sue), conversation=_reload(waiting))
    assert access.reply and not access.monitoring
    pipeline.run(
        lambda: assignment.conversation_reply(membership=_m(sue), conversation=waiting, body="hi")
    )
    assert Message.objects.filter(direction=Direction.OUTBOUND, sender=sue).exists()
    assert _reload(waiting).assigned_to_id == bob.pk  # joining does not take it


def test_supervisor_takes_over_and_the_counselor_loses_it(
    bob: Any, sue: Any, waiting: Conversation
) -> None:
    assignment.conversation_assume(membership=_m(bob), conversation=waiting)
    assignment.conversation_take_over(membership=_m(sue), conversation=waiting)
    assert _reload(waiting).assigned_to_id == sue.pk
    access = assignment.conversation_access(membership=_m(bob), conversation=_reload(waiting))
    assert not access.read


def test_supervisor_takes_over_even_at_their_limit(
    bob: Any, sue: Any, waiting: Conversation, text_in: Any, sandbox_number: Any
) -> None:
    """Stepping in is never refused: take-over is exempt from the limit, unlike assume."""
    Membership.objects.filter(user=sue).update(max_conversations=1)
    hers = text_in(sandbox_number, "+12025550302", "hello").conversation
    assignment.conversation_assume(membership=_m(sue), conversation=hers)
    assignment.conversation_assume(membership=_m(bob), conversation=waiting)
    assignment.conversation_take_over(membership=_m(sue), conversation=waiting)
    assert _reload(waiting).assigned_to_id == sue.pk
    held = Conversation.objects.filter(assigned_to=sue, status="active").count()
    assert held == 2


def _dana(org: Any) -> Contact:
    return Contact.objects.create(
        organization=org, name="Dana Reyes", phone="+12025550163", number_type="mobile"
    )


def test_starting_a_conversation_from_the_directory_counts_against_the_limit(
    bob: Any, org: Any, waiting: Conversation, sandbox_number: Any, pipeline: Any
) -> None:
    Membership.objects.filter(user=bob).update(max_conversations=1)
    assignment.conversation_assume(membership=_m(bob), conversation=waiting)
    dana = _dana(org)
    with pytest.raises(
        AssignmentError, match=r"already have 1 active conversation \(the limit is 1\)"
    ) as err:
        pipeline.run(
            lambda: assignment.conversation_start(
                membership=_m(bob), contact=dana, number_id=sandbox_number.pk, body="Checking in"
            )
        )
    assert err.value.code == "limit"
    assert not Conversation.objects.filter(contact=dana).exists()
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exists()
    assert not SandboxMessage.objects.exists()
    # with room again (their conversation closed), the same start goes out
    assignment.conversation_close(membership=_m(bob), conversation=waiting)
    message = pipeline.run(
        lambda: assignment.conversation_start(
            membership=_m(bob), contact=dana, number_id=sandbox_number.pk, body="Checking in"
        )
    )
    conversation = message.conversation
    assert (conversation.contact_id, conversation.status, conversation.assigned_to_id) == (
        dana.pk,
        "active",
        bob.pk,
    )
    assert SandboxMessage.objects.count() == 1


def test_starting_into_my_own_open_conversation_at_the_limit_is_a_reply(
    bob: Any, waiting: Conversation, sandbox_number: Any
) -> None:
    Membership.objects.filter(user=bob).update(max_conversations=1)
    assignment.conversation_assume(membership=_m(bob), conversation=waiting)
    message = assignment.conversation_start(
        membership=_m(bob), contact=waiting.contact, number_id=sandbox_number.pk, body="still here"
    )
    assert message.conversation_id == waiting.pk
    assert Conversation.objects.filter(assigned_to=bob, status="active").count() == 1


def test_starting_into_a_waiting_conversation_at_the_limit_is_refused_like_assume(
    bob: Any, waiting: Conversation, text_in: Any, sandbox_number: Any
) -> None:
    Membership.objects.filter(user=bob).update(max_conversations=1)
    other = text_in(sandbox_number, "+12025550303", "hi").conversation
    assignment.conversation_assume(membership=_m(bob), conversation=other)
    with pytest.raises(AssignmentError, match="the limit is 1") as err:
        assignment.conversation_start(
            membership=_m(bob), contact=waiting.contact, number_id=sandbox_number.pk, body="hi"
        )
    assert err.value.code == "limit"
    fresh = _reload(waiting)
    assert (fresh.status, fresh.assigned_to_id) == ("waiting", None)
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exists()


def test_counselors_cannot_join_or_take_over(bob: Any, dora: Any, waiting: Conversation) -> None:
    assignment.conversation_assume(membership=_m(bob), conversation=waiting)
    for action in (assignment.conversation_join, assignment.conversation_take_over):
        with pytest.raises(AssignmentError) as err:
            action(membership=_m(dora), conversation=waiting)
        assert err.value.code == "forbidden"
    assert _reload(waiting).assigned_to_id == bob.pk


def test_counselor_sees_queue_and_own_not_others(
    bob: Any, dora: Any, waiting: Conversation
) -> None:
    access = assignment.conversation_access(membership=_m(dora), conversation=waiting)
    assert access.read and access.reply
    assignment.conversation_assume(membership=_m(bob), conversation=waiting)
    assert not assignment.conversation_access(membership=_m(dora), conversation=waiting).read
    assignment.conversation_close(membership=_m(bob), conversation=waiting)
    closed = _reload(waiting)
    assert assignment.conversation_access(membership=_m(bob), conversation=closed).read
    assert not assignment.conversation_access(membership=_m(bob), conversation=closed).reply
    assert not assignment.conversation_access(membership=_m(dora), conversation=closed).read


def test_reply_to_a_waiting_conversation_assumes_it(
    bob: Any, waiting: Conversation, pipeline: Any
) -> None:
    pipeline.run(
        lambda: assignment.conversation_reply(membership=_m(bob), conversation=waiting, body="hi")
    )
    assert _reload(waiting).assigned_to_id == bob.pk


def test_reply_refused_for_opted_out_does_not_assume(
    bob: Any, waiting: Conversation, text_in: Any, sandbox_number: Any
) -> None:
    from openline.messaging.services.outbound import SendRefused

    text_in(sandbox_number, PERSON, "STOP")
    with pytest.raises(SendRefused):
        assignment.conversation_reply(membership=_m(bob), conversation=waiting, body="hi")
    assert _reload(waiting).assigned_to_id is None  # the whole reply rolled back


def test_notes_are_never_sent(bob: Any, waiting: Conversation, pipeline: Any) -> None:
    before = Message.objects.count()
    pipeline.run(
        lambda: assignment.conversation_note_add(
            membership=_m(bob), conversation=waiting, body="sounded calmer"
        )
    )
    assert Message.objects.count() == before
    assert not SandboxMessage.objects.exists()
    with pytest.raises(AssignmentError):
        assignment.conversation_note_add(membership=_m(bob), conversation=waiting, body="  ")
