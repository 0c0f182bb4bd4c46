from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from openline.api.tests.conftest import PERSON, SECOND_PERSON
from openline.core.models import AuditEvent
from openline.messaging.models import Conversation, ConversationStatus


@pytest.fixture
def two_conversations(sandbox_number, text_in):
    """PERSON wrote first; SECOND_PERSON wrote last, so theirs is the newest activity."""
    first = text_in(sandbox_number, PERSON, "hello").conversation
    second = text_in(sandbox_number, SECOND_PERSON, "hi there").conversation
    now = timezone.now()
    Conversation.objects.filter(pk=first.pk).update(last_message_at=now - timedelta(minutes=5))
    Conversation.objects.filter(pk=second.pk).update(last_message_at=now)
    return first, second


def test_conversations_are_listed_newest_activity_first(api, two_conversations):
    first, second = two_conversations

    response = api.get("/conversations")

    assert response.status_code == 200
    data = response.json()
    assert data["count"] == 2
    assert [item["id"] for item in data["items"]] == [second.pk, first.pk]
    item = data["items"][0]
    assert item["contact"] == {"id": second.contact_id, "name": "", "phone": SECOND_PERSON}
    assert item["number"] == "+12025550142"
    assert item["status"] == "waiting"


def test_conversations_are_paginated_with_limit_and_offset(api, two_conversations):
    first, _ = two_conversations

    response = api.get("/conversations", limit=1, offset=1)

    assert response.json()["count"] == 2
    assert [item["id"] for item in response.json()["items"]] == [first.pk]


def test_conversations_filter_by_status_and_number(api, org, two_conversations, other_number):
    first, second = two_conversations
    Conversation.objects.filter(pk=first.pk).update(status=ConversationStatus.CLOSED)

    closed = api.get("/conversations", status="closed").json()
    on_main = api.get("/conversations", number="+12025550142").json()
    on_other = api.get("/conversations", number=other_number.e164).json()

    assert [item["id"] for item in closed["items"]] == [first.pk]
    assert on_main["count"] == 2
    assert on_other["count"] == 0


@pytest.mark.parametrize(
    "params",
    [
        {"status": "pending"},
        {"number": "main line"},
        {"limit": 0},
        {"limit": 10_000},
        {"offset": -1},
        {"offset": 10**30},
    ],
)
def test_bad_list_parameters_are_422(api, params):
    response = api.get("/conversations", **params)

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"


def test_listing_does_not_grow_queries_with_conversations(
    api, sandbox_number, text_in, django_assert_max_num_queries
):
    for i in range(5):
        text_in(sandbox_number, f"+120255501{i:02d}", "hello")

    # token lookup + last_used update + count + one page (contact and number joined)
    with django_assert_max_num_queries(4):
        response = api.get("/conversations")

    assert response.json()["count"] == 5


def test_transcript_is_chronological_and_the_read_is_audited(api, org, sandbox_number, text_in):
    first = text_in(sandbox_number, PERSON, "hello")
    conversation = first.conversation
    reply = api.post("/messages", {"to": PERSON, "body": "Hi, this is Riverside"}).json()
    text_in(sandbox_number, PERSON, "thanks")

    response = api.get(f"/conversations/{conversation.pk}/messages")

    assert response.status_code == 200
    items = response.json()["items"]
    assert [m["body"] for m in items] == ["hello", "Hi, this is Riverside", "thanks"]
    assert [m["direction"] for m in items] == ["in", "out", "in"]
    assert items[1]["id"] == reply["id"]
    assert set(items[0]) == {
        "id",
        "direction",
        "body",
        "segments",
        "encoding",
        "status",
        "error_code",
        "created_at",
        "sent_at",
    }
    audit = AuditEvent.objects.get(action="transcript.read.api")
    assert audit.organization_id == org.pk
    assert audit.object_type == "conversation"
    assert audit.object_id == str(conversation.pk)


def test_other_organizations_token_cannot_see_conversations(
    api, other_api, sandbox_number, text_in
):
    conversation = text_in(sandbox_number, PERSON, "hello").conversation

    listing = other_api.get("/conversations")
    transcript = other_api.get(f"/conversations/{conversation.pk}/messages")

    assert listing.json() == {"items": [], "count": 0}
    assert transcript.status_code == 404
    assert transcript.json()["code"] == "not_found"
    assert "hello" not in transcript.content.decode()
    assert not AuditEvent.objects.filter(action__startswith="transcript.").exists()


@pytest.mark.parametrize("conversation_id", ["0", "abc", str(2**64), "-1"])
def test_impossible_conversation_ids_are_4xx(api, conversation_id):
    response = api.get(f"/conversations/{conversation_id}/messages")

    assert 400 <= response.status_code < 500


def test_unknown_conversation_is_404(api):
    response = api.get("/conversations/987654/messages")

    assert response.status_code == 404
