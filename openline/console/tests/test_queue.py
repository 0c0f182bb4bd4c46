"""The workspace's views (Waiting, Mine, All, Closed), filters, search and unread state."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from openline.contacts.models import Contact
from openline.messaging.models import Conversation, Direction, Message
from openline.providers.services import number_add

_phones = itertools.count(1000)


def _conversations(
    number: Any,
    count: int,
    *,
    start: dt.datetime | None = None,
    status: str = "waiting",
    assigned_to: Any = None,
    prefix: str = "",
) -> list[Conversation]:
    """``count`` conversations with two messages each, made directly (fast setup)."""
    start = start or timezone.now() - dt.timedelta(hours=1)
    made = []
    for i in range(count):
        when = start + dt.timedelta(minutes=i)
        contact = Contact.objects.create(
            organization_id=number.organization_id,
            phone=f"+1202555{next(_phones) % 10000:04d}",
            name=f"{prefix}Person {i}" if i % 2 else "",
            number_type="mobile",
        )
        conversation = Conversation.objects.create(
            organization_id=number.organization_id,
            number=number,
            contact=contact,
            status=status,
            assigned_to=assigned_to,
            last_message_at=when,
        )
        Conversation.objects.filter(pk=conversation.pk).update(created_at=when)
        for direction, body in (
            (Direction.INBOUND, f"question {prefix}{i}"),
            (Direction.OUTBOUND, f"answer {prefix}{i}"),
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


def _ids(html: str) -> list[int]:
    return [
        int(x) for x in re.findall(r'class="queue-row[^"]*" data-conversation-id="(\d+)"', html)
    ]


def _queue(client: Client, **params: str) -> str:
    response = client.get(reverse("console:queue"), params, headers={"HX-Request": "true"})
    assert response.status_code == 200
    return response.content.decode()


def test_home_is_the_workspace_with_the_waiting_queue_oldest_first(
    alice_client: Client, sandbox_number: Any
) -> None:
    made = _conversations(sandbox_number, 3)
    html = alice_client.get(reverse("console:home")).content.decode()
    assert 'id="pane-area"' in html and 'id="queue"' in html
    assert _ids(html) == [c.pk for c in made]  # the one waiting longest first
    assert '<span class="badge badge-waiting" id="count-waiting">3</span>' in html


def test_mine_shows_only_my_active_conversations(
    bob_client: Client, bob: Any, dora: Any, sandbox_number: Any
) -> None:
    mine = _conversations(sandbox_number, 2, status="active", assigned_to=bob)
    _conversations(sandbox_number, 2, status="active", assigned_to=dora, prefix="d")
    assert _ids(_queue(bob_client, view="mine")) == [mine[1].pk, mine[0].pk]  # newest first


def test_all_view_is_for_supervisors_only(
    bob_client: Client, sue_client: Client, bob: Any, dora: Any, sandbox_number: Any
) -> None:
    waiting = _conversations(sandbox_number, 1)
    doras = _conversations(sandbox_number, 1, status="active", assigned_to=dora, prefix="d")
    assert set(_ids(_queue(sue_client, view="all"))) == {waiting[0].pk, doras[0].pk}
    counselor = _queue(bob_client, view="all")  # falls back to the queue
    assert _ids(counselor) == [waiting[0].pk]
    assert 'data-view="all"' not in counselor


def test_closed_view_shows_counselors_only_their_own(
    bob_client: Client, alice_client: Client, bob: Any, dora: Any, sandbox_number: Any
) -> None:
    bobs = _conversations(sandbox_number, 1, status="closed", assigned_to=bob)
    doras = _conversations(sandbox_number, 1, status="closed", assigned_to=dora, prefix="d")
    assert _ids(_queue(bob_client, view="closed")) == [bobs[0].pk]
    assert set(_ids(_queue(alice_client, view="closed"))) == {bobs[0].pk, doras[0].pk}


def test_inbox_filter(alice_client: Client, sandbox_number: Any, org: Any) -> None:
    youth = number_add(organization=org, provider="sandbox", e164="+12025550143", name="Youth")
    main = _conversations(sandbox_number, 1)
    other = _conversations(youth, 1, prefix="y")
    assert _ids(_queue(alice_client, number=str(youth.pk))) == [other[0].pk]
    assert _ids(_queue(alice_client, number=str(sandbox_number.pk))) == [main[0].pk]
    assert _queue(alice_client, number="bogus")  # ignored, not an error


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Person 1", [1]),  # contact name
        ("person", [1, 3]),
        ("PHONE", [2]),  # phone digits as typed: "555 1234"
        ("question 3", [3]),  # message words
        ("answ", [0, 1, 2, 3]),  # the last word is a prefix while typing
        ("nothing-like-this", []),
    ],
)
def test_search_by_name_number_and_message_text(
    alice_client: Client, sandbox_number: Any, query: str, expected: list[int]
) -> None:
    made = _conversations(sandbox_number, 4)
    if query == "PHONE":
        query = "555 " + made[2].contact.phone[-4:]
    ids = _ids(_queue(alice_client, view="all", q=query))
    assert sorted(ids) == sorted(made[i].pk for i in expected)


def test_search_never_finds_another_organizations_conversations(
    alice_client: Client, sandbox_number: Any, other_number: Any
) -> None:
    _conversations(other_number, 2, prefix="x")
    assert _ids(_queue(alice_client, view="all", q="question")) == []
    assert _ids(_queue(alice_client, view="all", q="xPerson")) == []


def test_unread_dot_then_read_on_open_then_mark_unread_survives(
    bob_client: Client, bob: Any, sandbox_number: Any, text_in: Any
) -> None:
    conversation = text_in("hello?")
    row = _row(_queue(bob_client), conversation.pk)
    assert "dot-unread" in row
    bob_client.get(reverse("console:conversation_pane", args=[conversation.pk]))
    assert "dot-read" in _row(_queue(bob_client), conversation.pk)
    assert _ids(_queue(bob_client, unread="1")) == []
    response = bob_client.post(
        reverse("console:conversation_unread", args=[conversation.pk]),
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 204
    assert "dot-unread" in _row(_queue(bob_client), conversation.pk)
    # a live refresh of a pane in the background does not mark it read
    bob_client.get(reverse("console:conversation_pane", args=[conversation.pk]), {"refresh": "1"})
    assert _ids(_queue(bob_client, unread="1")) == [conversation.pk]


def test_new_message_after_reading_is_unread_again(
    bob_client: Client, text_in: Any, sandbox_number: Any
) -> None:
    conversation = text_in("hello?")
    bob_client.get(reverse("console:conversation_pane", args=[conversation.pk]))
    Conversation.objects.filter(pk=conversation.pk).update(
        last_message_at=timezone.now() - dt.timedelta(hours=1)
    )
    assert "dot-read" in _row(_queue(bob_client), conversation.pk)
    text_in("still there?")
    assert "dot-unread" in _row(_queue(bob_client), conversation.pk)


def test_unread_state_is_per_person(bob_client: Client, dora_client: Client, text_in: Any) -> None:
    conversation = text_in("hello?")
    bob_client.get(reverse("console:conversation_pane", args=[conversation.pk]))
    assert "dot-read" in _row(_queue(bob_client), conversation.pk)
    assert "dot-unread" in _row(_queue(dora_client), conversation.pk)


def _row(html: str, conversation_id: int) -> str:
    match = re.search(
        rf'<li class="queue-row[^"]*" data-conversation-id="{conversation_id}">.*?</li>', html, re.S
    )
    assert match, f"conversation {conversation_id} is not in the list"
    return match.group(0)


@pytest.mark.parametrize("view", ["waiting", "mine", "all", "closed"])
def test_list_query_count_is_bounded(
    alice_client: Client,
    alice: Any,
    sandbox_number: Any,
    view: str,
    django_assert_max_num_queries: Any,
) -> None:
    status = {"waiting": "waiting", "mine": "active", "all": "active", "closed": "closed"}[view]
    _conversations(
        sandbox_number, 30, status=status, assigned_to=alice if view != "waiting" else None
    )
    with django_assert_max_num_queries(10):
        html = _queue(alice_client, view=view)
    assert len(_ids(html)) == 30
    assert "answer 29" in html  # the last message's body, from the subquery
    assert "question 29" not in html


def test_search_query_count_is_bounded(
    alice_client: Client, sandbox_number: Any, django_assert_max_num_queries: Any
) -> None:
    _conversations(sandbox_number, 30)
    with django_assert_max_num_queries(10):
        html = _queue(alice_client, view="all", q="answer")
    assert len(_ids(html)) == 30


def test_list_paginates_by_50(alice_client: Client, sandbox_number: Any) -> None:
    made = _conversations(sandbox_number, 51)
    first = _queue(alice_client)
    assert len(_ids(first)) == 50
    assert "Page 1 of 2" in first
    second = _queue(alice_client, page="2")
    assert _ids(second) == [made[-1].pk]


@pytest.mark.parametrize("page", ["999", "x"])
def test_bad_page_numbers_do_not_fail(alice_client: Client, sandbox_number: Any, page: str) -> None:
    _conversations(sandbox_number, 1)
    assert _ids(_queue(alice_client, page=page))


def test_old_inbox_address_lands_on_the_filtered_workspace(
    alice_client: Client, sandbox_number: Any
) -> None:
    response = alice_client.get(reverse("console:inbox", args=[sandbox_number.pk]))
    assert response.status_code == 302
    assert response["Location"] == f"/?view=all&number={sandbox_number.pk}"


def test_queue_fragment_without_htmx_redirects_to_the_workspace(alice_client: Client) -> None:
    response = alice_client.get(reverse("console:queue"), {"view": "mine"})
    assert response.status_code == 302
    assert response["Location"] == "/?view=mine"


def test_list_flags_consent_review(alice_client: Client, text_in: Any) -> None:
    conversation = text_in("please stop texting me")
    assert "Consent review" in _row(_queue(alice_client), conversation.pk)


def test_message_search_is_limited_within_the_view_not_across_views(
    alice_client: Client, alice: Any, sandbox_number: Any, monkeypatch: Any
) -> None:
    """Search keeps the most recent matching messages only; they are counted inside the
    view, so newer matches elsewhere never hide the view's own."""
    from openline.messaging import selectors

    monkeypatch.setattr(selectors, "SEARCH_MESSAGES", 1)
    start = timezone.now() - dt.timedelta(days=2)
    closed = _conversations(sandbox_number, 1, start=start, status="closed", assigned_to=alice)
    _conversations(sandbox_number, 1, status="active", assigned_to=alice, prefix="n")
    assert _ids(_queue(alice_client, view="closed", q="answer")) == [closed[0].pk]


def test_row_shows_the_contacts_name_or_number_and_the_time_of_the_last_message(
    alice_client: Client, sandbox_number: Any
) -> None:
    from zoneinfo import ZoneInfo

    chicago = ZoneInfo("America/Chicago")  # the organization's time zone
    today = timezone.now().astimezone(chicago).date()
    named, unnamed = _conversations(sandbox_number, 2)[::-1]  # odd rows have a name
    assert named.contact.name and not unnamed.contact.name
    Conversation.objects.filter(pk=named.pk).update(
        last_message_at=dt.datetime.combine(today, dt.time(3, 7), tzinfo=chicago)
    )
    Conversation.objects.filter(pk=unnamed.pk).update(
        last_message_at=dt.datetime(2023, 11, 2, 14, 30, tzinfo=chicago)
    )
    html = _queue(alice_client)

    named_row, unnamed_row = _row(html, named.pk), _row(html, unnamed.pk)
    assert f'<span class="conv-who">{named.contact.name}</span>' in named_row
    digits = unnamed.contact.phone[-4:]
    assert f'<span class="conv-who">+1 202-555-{digits}</span>' in unnamed_row
    # today: the time of day; another year: the date with its year
    iso_today = f"{today.isoformat()}T03:07:00"
    assert re.search(rf'<time class="conv-time" datetime="{iso_today}-0[56]:00">3:07 AM</time>',
                     named_row)  # fmt: skip
    assert (
        '<time class="conv-time" datetime="2023-11-02T14:30:00-05:00">Nov 2, 2023</time>'
        in unnamed_row
    )
