"""Counselors may close only conversations they hold; supervisors and admins any. The rule
lives in the close service (messaging.services.assignment.conversation_close); the API has
no close endpoint (an integration holds no conversation)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from openline.core.models import Membership
from openline.messaging.models import Conversation, ConversationNote
from openline.messaging.services import assignment
from openline.messaging.services.assignment import AssignmentError

HTMX = {"HX-Request": "true"}


def _close(client: Client, conversation: Conversation) -> Any:
    url = reverse("console:conversation_close", args=[conversation.pk])
    return client.post(url, {"wrap_up": "all done"}, headers=HTMX)


def _state(conversation: Conversation) -> tuple[str, int | None]:
    fresh = Conversation.objects.get(pk=conversation.pk)
    return fresh.status, fresh.assigned_to_id


def _assume(user: Any, conversation: Conversation) -> None:
    membership = Membership.objects.get(user=user)
    assignment.conversation_assume(membership=membership, conversation=conversation)


def test_counselor_cannot_close_a_waiting_conversation_from_the_queue(
    bob_client: Client, conversation: Conversation, published: list[dict[str, Any]]
) -> None:
    response = _close(bob_client, conversation)
    assert response.status_code == 409
    assert (
        '<p class="form-error pane-flash" role="alert">Only a supervisor can close a'
        " conversation nobody has; assume it first.</p>"
    ) in response.content.decode()
    assert _state(conversation) == ("waiting", None)
    assert not ConversationNote.objects.filter(kind="wrap_up").exists()
    assert not [e for e in published if e["type"] == "conversation.closed"]


def test_counselor_cannot_close_someone_elses_conversation(
    bob_client: Client, dora: Any, conversation: Conversation
) -> None:
    _assume(dora, conversation)
    response = _close(bob_client, conversation)
    assert response.status_code == 403  # not even theirs to read
    assert b"Already taken: dora@example.org has it." in response.content
    assert _state(conversation) == ("active", dora.pk)
    assert not ConversationNote.objects.filter(kind="wrap_up").exists()


def test_the_close_service_refuses_a_counselor_who_does_not_hold_it(
    bob: Any, dora: Any, conversation: Conversation
) -> None:
    bobs = Membership.objects.get(user=bob)
    with pytest.raises(AssignmentError) as waiting:
        assignment.conversation_close(membership=bobs, conversation=conversation)
    assert waiting.value.code == "not_yours"
    _assume(dora, conversation)
    with pytest.raises(AssignmentError) as held:
        assignment.conversation_close(membership=bobs, conversation=conversation)
    assert held.value.code == "not_yours"
    assert str(held.value) == "dora@example.org has it; only they or a supervisor can close it"
    assert _state(conversation) == ("active", dora.pk)


def test_counselor_closes_their_own(
    bob_client: Client, bob: Any, conversation: Conversation
) -> None:
    _assume(bob, conversation)
    assert _close(bob_client, conversation).status_code == 200
    assert _state(conversation) == ("closed", bob.pk)
    assert ConversationNote.objects.get(kind="wrap_up").body == "all done"


@pytest.mark.parametrize("held_by_dora", [False, True])
def test_supervisor_closes_any_conversation(
    sue_client: Client, dora: Any, conversation: Conversation, held_by_dora: bool
) -> None:
    if held_by_dora:
        _assume(dora, conversation)
    assert _close(sue_client, conversation).status_code == 200
    assert _state(conversation)[0] == "closed"


def test_close_is_offered_only_to_the_holder_and_supervisors(
    bob_client: Client, sue_client: Client, bob: Any, conversation: Conversation
) -> None:
    pane = reverse("console:conversation_pane", args=[conversation.pk])
    close_button = b'data-action="close"'
    assert close_button not in bob_client.get(pane).content  # waiting: assume first
    assert close_button in sue_client.get(pane).content
    _assume(bob, conversation)
    assert close_button in bob_client.get(pane).content


def test_a_conversation_handed_to_someone_else_meanwhile_is_not_closed(
    bob: Any, dora: Any, conversation: Conversation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The close is conditional on the holder it checked, like every assignment change: a
    transfer landing between the check and the update wins."""
    _assume(bob, conversation)
    checked = Conversation.objects.get(pk=conversation.pk)  # bob's, when the check ran
    Conversation.objects.filter(pk=conversation.pk).update(assigned_to=dora)
    monkeypatch.setattr(assignment, "_refresh", lambda c: None)  # the check sees ``checked``
    with pytest.raises(AssignmentError) as err:
        assignment.conversation_close(
            membership=Membership.objects.get(user=bob), conversation=checked
        )
    assert err.value.code == "changed"
    assert _state(conversation) == ("active", dora.pk)
