"""A text with a risk phrase raises its conversation's priority, with the reason, and ends a
survey hold; held conversations stay out of the Waiting view until then."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from openline.messaging import hooks, selectors
from openline.messaging.models import Conversation, Priority, RiskPhrase


def test_a_risk_phrase_raises_priority_with_its_reason(
    text_in: Any, sandbox_number: Any, published: Any
) -> None:
    calm = text_in(sandbox_number, "+15555550101", "hi, can I talk to someone").conversation
    risky = text_in(sandbox_number, "+15555550102", "I took 800 mg of my pills").conversation
    calm.refresh_from_db()
    risky.refresh_from_db()
    assert calm.priority == Priority.NORMAL and calm.priority_reason == ""
    assert risky.priority == Priority.HIGH
    assert risky.priority_reason == "Risk phrase: “800mg”"
    later = text_in(sandbox_number, "+15555550101", "honestly I want to end it all").conversation
    later.refresh_from_db()
    assert later.pk == calm.pk and later.priority == Priority.URGENT
    assert "end it all" in later.priority_reason


def test_an_organizations_own_phrases_replace_the_suggested_ones(
    text_in: Any, sandbox_number: Any
) -> None:
    RiskPhrase.objects.create(
        organization_id=sandbox_number.organization_id, phrase="bridge", priority=Priority.ELEVATED
    )
    pills = text_in(sandbox_number, "+15555550103", "pills").conversation
    bridge = text_in(sandbox_number, "+15555550104", "I'm at the Bridge.").conversation
    pills.refresh_from_db()
    bridge.refresh_from_db()
    assert pills.priority == Priority.NORMAL
    assert (bridge.priority, bridge.priority_reason) == (Priority.ELEVATED, "Risk phrase: “bridge”")


def test_a_held_conversation_waits_outside_the_queue_until_released(
    text_in: Any, online_inbox: Any, alice: Any, org: Any, monkeypatch: Any
) -> None:
    started: list[list[int]] = []
    monkeypatch.setattr(hooks, "_hold_minutes", {"t": lambda ids: {n: 10 for n in ids}})
    monkeypatch.setattr(hooks, "_on_held", {"t": started.append})
    membership = alice.memberships.get(organization=org)
    held = text_in(online_inbox, "+15555550105", "hello").conversation
    held.refresh_from_db()
    assert held.held_until is not None and started == [[held.pk]]
    waiting = selectors.queue_conversations(membership=membership, filters=selectors.QueueFilter())
    assert held.pk not in {c.pk for c in waiting}
    assert selectors.queue_counts(membership=membership)["waiting"] == 0
    # A risk phrase in the next text ends the hold at once.
    text_in(online_inbox, "+15555550105", "I have a gun")
    held.refresh_from_db()
    assert held.held_until is None and held.priority == Priority.URGENT
    waiting = selectors.queue_conversations(membership=membership, filters=selectors.QueueFilter())
    assert [c.pk for c in waiting] == [held.pk]


def test_a_hold_that_runs_out_puts_the_conversation_in_the_queue(
    text_in: Any, online_inbox: Any, alice: Any, org: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(hooks, "_hold_minutes", {"t": lambda ids: {n: 10 for n in ids}})
    membership = alice.memberships.get(organization=org)
    held = text_in(online_inbox, "+15555550106", "hello").conversation
    Conversation.objects.filter(pk=held.pk).update(held_until=timezone.now() - timedelta(seconds=1))
    waiting = selectors.queue_conversations(membership=membership, filters=selectors.QueueFilter())
    assert [c.pk for c in waiting] == [held.pk]


def test_a_first_text_with_a_risk_phrase_is_never_held(
    text_in: Any, online_inbox: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(hooks, "_hold_minutes", {"t": lambda ids: {n: 10 for n in ids}})
    conversation = text_in(online_inbox, "+15555550107", "I want to kill myself").conversation
    conversation.refresh_from_db()
    assert conversation.held_until is None and conversation.priority == Priority.URGENT
