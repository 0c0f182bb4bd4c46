"""A member who left the team (deactivated) holds no conversation: what they held goes
back to the queue with a note, and nobody can hand them one."""

from __future__ import annotations

from typing import Any

import pytest

from openline.core.models import Membership
from openline.messaging import selectors
from openline.messaging.models import Conversation, ConversationNote
from openline.messaging.services import assignment
from openline.messaging.services.assignment import AssignmentError
from openline.messaging.services.queue_guard import conversations_requeue_unseen

NOTE = "Bob was deactivated; this conversation is back in the queue"


def _m(user: Any) -> Membership:
    return Membership.objects.select_related("organization", "user").get(user=user)


def _deactivate(user: Any) -> None:
    Membership.objects.filter(user=user).update(is_active=False)


@pytest.fixture
def held(text_in: Any, sandbox_number: Any, bob: Any, dora: Any) -> list[Conversation]:
    """Two conversations bob holds, one dora holds, one closed that bob held."""
    conversations = [
        text_in(sandbox_number, f"+1202555{n:04d}", "hello").conversation for n in range(300, 304)
    ]
    for conversation, who in zip(conversations, [bob, bob, dora, bob], strict=True):
        assignment.conversation_assume(membership=_m(who), conversation=conversation)
    assignment.conversation_close(membership=_m(bob), conversation=conversations[3])
    return conversations


def test_return_to_queue_takes_only_their_active_conversations(
    org: Any, bob: Any, dora: Any, held: list[Conversation], pipeline: Any, published: Any
) -> None:
    _deactivate(bob)
    returned = pipeline.run(
        lambda: assignment.conversations_return_to_queue(
            organization_id=org.pk, user_id=bob.pk, note=NOTE
        )
    )
    assert returned == [held[0].pk, held[1].pk]
    states = {c.pk: (c.status, c.assigned_to_id) for c in Conversation.objects.all()}
    assert states == {
        held[0].pk: ("waiting", None),
        held[1].pk: ("waiting", None),
        held[2].pk: ("active", dora.pk),
        held[3].pk: ("closed", bob.pk),
    }
    notes = ConversationNote.objects.filter(body=NOTE)
    assert sorted(notes.values_list("conversation_id", "kind", "author_id")) == [
        (held[0].pk, "event", None),
        (held[1].pk, "event", None),
    ]
    moves = [e for e in published if e["type"] == "conversation.assigned"][-2:]
    assert [(e["conversation_id"], e["status"], e["assigned_to_id"]) for e in moves] == [
        (held[0].pk, "waiting", None),
        (held[1].pk, "waiting", None),
    ]
    assert {e["previous_assigned_to_id"] for e in moves} == {bob.pk}


def test_a_deactivated_member_cannot_be_given_or_take_a_conversation(
    org: Any, alice: Any, bob: Any, dora: Any, held: list[Conversation], text_in: Any,
    sandbox_number: Any,
) -> None:  # fmt: skip
    _deactivate(bob)
    targets = selectors.transfer_targets(organization_id=org.pk, exclude_user_id=None)
    assert bob.pk not in {m.user_id for m in targets}
    with pytest.raises(AssignmentError, match="no longer on the team") as refused:
        assignment.conversation_transfer(membership=_m(alice), conversation=held[2], to=_m(bob))
    assert refused.value.code == "inactive"
    waiting = text_in(sandbox_number, "+12025550999", "hi").conversation
    with pytest.raises(AssignmentError, match="no longer a member"):
        assignment.conversation_assume(membership=_m(bob), conversation=waiting)
    assert Conversation.objects.get(pk=waiting.pk).status == "waiting"
    assert Conversation.objects.get(pk=held[2].pk).assigned_to_id == dora.pk


def test_the_safety_check_requeues_a_text_held_by_a_deactivated_member(
    bob: Any, held: list[Conversation], text_in: Any, sandbox_number: Any
) -> None:
    text_in(sandbox_number, "+12025550300", "are you there?")  # to bob's first conversation
    _deactivate(bob)
    assert conversations_requeue_unseen() == 1
    fresh = Conversation.objects.get(pk=held[0].pk)
    assert (fresh.status, fresh.assigned_to_id) == ("waiting", None)
