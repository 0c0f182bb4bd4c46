"""What the issue asks the audit log to hold, written where it happens: a take-over, a
supervisor joining, consent changed by staff or an integration (never the person's own
STOP, which is in the consent ledger)."""

from __future__ import annotations

from typing import Any

from django.test import Client
from django.urls import reverse

from openline.contacts.models import Contact
from openline.core.models import AuditEvent, Membership
from openline.core.services import api_token_create
from openline.messaging.models import Conversation
from openline.messaging.services import assignment

HTMX = {"HX-Request": "true"}


def _held_by(conversation: Conversation, user: Any) -> Conversation:
    membership = Membership.objects.get(user=user)
    assignment.conversation_assume(membership=membership, conversation=conversation)
    return conversation


def _events(action: str) -> list[tuple[int | None, str, str, str]]:
    found = AuditEvent.objects.filter(action=action).order_by("id")
    return list(found.values_list("actor_id", "object_type", "object_id", "detail"))


def test_a_take_over_is_audited_with_whom_it_was_taken_from(
    conversation: Conversation, bob: Any, sue: Any, sue_client: Client, alice_client: Client
) -> None:
    _held_by(conversation, bob)
    url = reverse("console:conversation_take_over", args=[conversation.pk])
    assert sue_client.post(url, headers=HTMX).status_code == 200
    assert _events("conversation.take_over") == [
        (sue.pk, "conversation", str(conversation.pk), "from bob@example.org")
    ]
    sue_client.post(url, headers=HTMX)  # already hers: nothing happens, nothing recorded
    assert len(_events("conversation.take_over")) == 1
    log = alice_client.get(reverse("audit:log"), {"conversation": conversation.pk})
    assert "Took over a conversation" in log.content.decode()


def test_taking_over_from_the_queue_says_so(
    conversation: Conversation, sue: Any, sue_client: Client
) -> None:
    sue_client.post(reverse("console:conversation_take_over", args=[conversation.pk]))
    assert _events("conversation.take_over")[0][3] == "from the queue"


def test_a_refused_take_over_or_join_records_nothing(
    conversation: Conversation, bob: Any, dora_client: Client
) -> None:
    _held_by(conversation, bob)
    for name in ("console:conversation_take_over", "console:conversation_join"):
        dora_client.post(reverse(name, args=[conversation.pk]), headers=HTMX)
    assert not _events("conversation.take_over") and not _events("conversation.join")


def test_joining_is_audited_once(
    conversation: Conversation, bob: Any, sue: Any, sue_client: Client
) -> None:
    _held_by(conversation, bob)
    url = reverse("console:conversation_join", args=[conversation.pk])
    sue_client.post(url, headers=HTMX)
    sue_client.post(url, headers=HTMX)
    assert _events("conversation.join") == [(sue.pk, "conversation", str(conversation.pk), "")]


def test_an_opt_out_by_staff_or_the_api_is_audited_the_persons_own_stop_is_not(
    org: Any, alice: Any, alice_client: Client, text_in: Any
) -> None:
    contact = Contact.objects.create(organization=org, phone="+12025550133", name="Ann")
    response = alice_client.post(
        reverse("console:contact_opt_out", args=[contact.pk]), {"text": "said so on a call"}
    )
    assert response.status_code == 302
    (staff,) = _events("consent.opt_out")
    assert staff[:2] == (alice.pk, "consent_event")

    token, secret = api_token_create(organization=org, name="CRM")
    other = Contact.objects.create(organization=org, phone="+12025550134", name="Ben")
    answer = Client().post(
        f"/api/v1/contacts/{other.pk}/consent",
        {"action": "opt_out"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert answer.status_code == 200
    by_api = AuditEvent.objects.filter(action="consent.opt_out").latest("id")
    assert (by_api.actor_id, by_api.api_token_id) == (None, token.pk)

    text_in("STOP", from_number="+12025550135")
    assert len(_events("consent.opt_out")) == 2
