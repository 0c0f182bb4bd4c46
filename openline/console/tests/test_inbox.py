"""Home and the per-number inbox list."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from openline.contacts.models import Contact
from openline.messaging.models import Conversation, Direction, Message
from openline.providers.services import number_add


def _conversations(
    number: Any, count: int, *, start: dt.datetime | None = None
) -> list[Conversation]:
    """``count`` conversations with two messages each, made directly (fast setup)."""
    start = start or timezone.now() - dt.timedelta(hours=1)
    made = []
    for i in range(count):
        when = start + dt.timedelta(minutes=i)
        contact = Contact.objects.create(
            organization_id=number.organization_id,
            phone=f"+1202555{1000 + i:04d}",
            name=f"Person {i}" if i % 2 else "",
            number_type="mobile",
        )
        conversation = Conversation.objects.create(
            organization_id=number.organization_id,
            number=number,
            contact=contact,
            last_message_at=when,
        )
        for direction, body in (
            (Direction.INBOUND, f"question {i}"),
            (Direction.OUTBOUND, f"answer {i}"),
        ):
            Message.objects.create(
                organization_id=number.organization_id,
                conversation=conversation,
                direction=direction,
                body=body,
                status="received",
                created_at=when,
            )
        made.append(conversation)
    return made


def test_home_redirects_to_first_numbers_inbox(
    alice_client: Client, sandbox_number: Any, org: Any
) -> None:
    number_add(organization=org, provider="sandbox", e164="+12025550143", name="Second line")
    response = alice_client.get(reverse("console:home"))
    assert response.status_code == 302
    assert response["Location"] == reverse("console:inbox", args=[sandbox_number.pk])


def test_home_without_numbers_explains(alice_client: Client) -> None:
    response = alice_client.get(reverse("console:home"))
    assert response.status_code == 200
    assert b"No inboxes yet" in response.content


def test_inbox_lists_conversation_with_preview_status_and_time(
    alice_client: Client, text_in: Any, sandbox_number: Any
) -> None:
    long_text = (
        "I have been feeling really low for weeks and I do not know who else to talk to "
        "about any of it at all"
    )
    conversation = text_in(long_text)
    Message.objects.filter(conversation=conversation).update(
        created_at=dt.datetime(2025, 1, 15, 18, 30, tzinfo=dt.UTC)
    )
    Conversation.objects.filter(pk=conversation.pk).update(
        last_message_at=dt.datetime(2025, 1, 15, 18, 30, tzinfo=dt.UTC)
    )
    response = alice_client.get(reverse("console:inbox", args=[sandbox_number.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "+1 202-555-0187" in html  # no name: the formatted number
    assert long_text[:79] + "…" in html  # truncated to 80 characters
    assert long_text not in html
    assert '<span class="badge badge-waiting">Waiting</span>' in html
    # 18:30 UTC is 12:30 in Chicago, the organization's zone.
    assert 'title="Jan 15, 2025 12:30 PM CST"' in html
    assert "Consent review" not in html


def test_inbox_flags_conversations_needing_consent_review(
    alice_client: Client, text_in: Any, sandbox_number: Any
) -> None:
    text_in("please stop texting me")
    html = alice_client.get(reverse("console:inbox", args=[sandbox_number.pk])).content.decode()
    assert "badge-review" in html


def test_inbox_shows_contact_name_and_sidebar_numbers(
    alice_client: Client, sandbox_number: Any, org: Any
) -> None:
    second = number_add(
        organization=org, provider="sandbox", e164="+12025550143", name="Youth line"
    )
    _conversations(sandbox_number, 2)
    html = alice_client.get(reverse("console:inbox", args=[sandbox_number.pk])).content.decode()
    assert "Person 1" in html
    assert "Main line" in html and "Youth line" in html
    assert reverse("console:inbox", args=[second.pk]) in html
    assert '<span class="badge badge-waiting" title="2 waiting">' in html


def test_inbox_only_shows_that_numbers_conversations(
    alice_client: Client, sandbox_number: Any, org: Any
) -> None:
    second = number_add(
        organization=org, provider="sandbox", e164="+12025550143", name="Youth line"
    )
    _conversations(second, 1)
    html = alice_client.get(reverse("console:inbox", args=[sandbox_number.pk])).content.decode()
    assert "question 0" not in html and "answer 0" not in html


def test_inbox_status_filter(alice_client: Client, sandbox_number: Any) -> None:
    first, second = _conversations(sandbox_number, 2)
    Conversation.objects.filter(pk=first.pk).update(status="closed")
    url = reverse("console:inbox", args=[sandbox_number.pk])
    html = alice_client.get(url, {"status": "closed"}).content.decode()
    assert reverse("console:conversation", args=[first.pk]) in html
    assert reverse("console:conversation", args=[second.pk]) not in html
    assert alice_client.get(url, {"status": "bogus"}).status_code == 200


def test_inbox_list_query_count_is_bounded(
    alice_client: Client, sandbox_number: Any, django_assert_max_num_queries: Any
) -> None:
    _conversations(sandbox_number, 30)
    url = reverse("console:inbox", args=[sandbox_number.pk])
    with django_assert_max_num_queries(8):
        response = alice_client.get(url)
    html = response.content.decode()
    assert html.count('class="conv-row"') == 30
    assert "answer 29" in html  # the last message's body, from the subquery
    assert "question 29" not in html


def test_inbox_paginates_by_50(alice_client: Client, sandbox_number: Any) -> None:
    made = _conversations(sandbox_number, 51)
    url = reverse("console:inbox", args=[sandbox_number.pk])
    first = alice_client.get(url).content.decode()
    assert first.count('class="conv-row"') == 50
    assert "Page 1 of 2" in first
    second = alice_client.get(url, {"page": 2}).content.decode()
    assert second.count('class="conv-row"') == 1
    oldest = made[0]
    assert reverse("console:conversation", args=[oldest.pk]) in second


@pytest.mark.parametrize("page", ["999", "x"])
def test_inbox_bad_page_numbers_do_not_fail(
    alice_client: Client, sandbox_number: Any, page: str
) -> None:
    _conversations(sandbox_number, 1)
    response = alice_client.get(reverse("console:inbox", args=[sandbox_number.pk]), {"page": page})
    assert response.status_code == 200
