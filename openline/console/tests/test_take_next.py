"""The Waiting view's rows say why a conversation is ahead (its priority and reason), and
Take next assumes the first of them and answers with its pane."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from openline.core.models import Membership
from openline.messaging.models import Conversation

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}
NEXT = reverse("console:conversation_take_next")


def _rows(html: str) -> list[int]:
    return [
        int(pk)
        for pk in re.findall(r'<li class="queue-row[^"]*" data-conversation-id="(\d+)"', html)
    ]


def test_waiting_rows_show_priority_and_reason_highest_first(
    bob_client: Client, text_in: Any
) -> None:
    calm = text_in("hi, can I talk to someone", from_number="+12025550301")
    risky = text_in("i have pills", from_number="+12025550302")
    page = bob_client.get(reverse("console:queue"), {"view": "waiting"}, headers=HTMX)
    body = page.content.decode()
    assert _rows(body) == [risky.pk, calm.pk]
    row = body[body.index(f'data-conversation-id="{risky.pk}"') :]
    row = row[: row.index("</li>")]
    assert '<span class="badge badge-priority-2">High</span>' in row
    assert "· Risk phrase: “pills”" in row
    calm_row = body[body.index(f'data-conversation-id="{calm.pk}"') :]
    assert "badge-priority" not in calm_row[: calm_row.index("</li>")]
    assert "data-take-next" in body and f'action="{NEXT}"' in body


def test_take_next_button_only_on_the_waiting_view(bob_client: Client, text_in: Any) -> None:
    text_in("hello")
    mine = bob_client.get(reverse("console:queue"), {"view": "mine"}, headers=HTMX)
    assert "data-take-next" not in mine.content.decode()


def test_take_next_answers_with_the_first_conversations_pane(
    bob_client: Client, bob: Any, text_in: Any
) -> None:
    text_in("hi there", from_number="+12025550311")
    urgent = text_in("I want to kill myself", from_number="+12025550312")
    response = bob_client.post(NEXT, headers=HTMX)
    assert response.status_code == 200
    assert response["X-Conversation-Id"] == str(urgent.pk)
    assert "I want to kill myself" in response.content.decode()
    fresh = Conversation.objects.get(pk=urgent.pk)
    assert (fresh.status, fresh.assigned_to_id) == ("active", bob.pk)


def test_take_next_with_nobody_waiting_says_so(bob_client: Client) -> None:
    response = bob_client.post(NEXT, headers=HTMX)
    assert response.status_code == 200 and "X-Conversation-Id" not in response
    assert "Nobody is waiting right now." in response.content.decode()
    plain = bob_client.post(NEXT, follow=True)
    assert "Nobody is waiting right now." in plain.content.decode()


def test_take_next_at_the_limit_is_refused(bob_client: Client, bob: Any, text_in: Any) -> None:
    Membership.objects.filter(user=bob).update(max_conversations=0)
    conversation = text_in("hello")
    response = bob_client.post(NEXT, headers=HTMX)
    assert response.status_code == 409
    assert "the limit is 0" in response.content.decode()
    assert Conversation.objects.get(pk=conversation.pk).status == "waiting"


def test_take_next_without_javascript_opens_the_conversation(
    bob_client: Client, text_in: Any
) -> None:
    conversation = text_in("hello")
    response = bob_client.post(NEXT)
    assert response.status_code == 302
    assert response["Location"] == reverse("console:conversation", args=[conversation.pk])


def test_take_next_in_a_filtered_inbox_and_never_another_organizations(
    bob_client: Client, text_in: Any, sandbox_number: Any, other_number: Any, org: Any
) -> None:
    from openline.providers.services import number_add

    youth = number_add(organization=org, provider="sandbox", e164="+12025550143", name="Youth")
    text_in("I want to kill myself", from_number="+12025550321", number=youth)
    theirs = text_in("I want to kill myself", from_number="+12025550322", number=other_number)
    main = text_in("hello", from_number="+12025550323")
    response = bob_client.post(NEXT, {"number": str(sandbox_number.pk)}, headers=HTMX)
    assert response["X-Conversation-Id"] == str(main.pk)
    # Another organization's inbox is no filter at all: ours is taken, never theirs.
    response = bob_client.post(NEXT, {"number": str(other_number.pk)}, headers=HTMX)
    assert response["X-Conversation-Id"] != str(theirs.pk)
    assert Conversation.objects.get(pk=theirs.pk).status == "waiting"


def test_take_next_needs_a_post_and_a_member(client: Client, charlie_client: Client) -> None:
    assert client.post(NEXT).status_code == 302  # to sign in
    assert charlie_client.get(NEXT).status_code == 405
