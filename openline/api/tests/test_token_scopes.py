"""Token scopes and revocation: a read-only token reads and nothing else; a revoked token
is refused like an unknown one."""

from __future__ import annotations

from typing import Any

import pytest

from openline.api.tests.conftest import PERSON, ApiClient
from openline.campaigns.models import Broadcast
from openline.core.models import ApiToken, AuditEvent
from openline.core.services import api_token_create, api_token_revoke
from openline.messaging.models import Message


@pytest.fixture
def reader(org: Any) -> ApiClient:
    _, secret = api_token_create(organization=org, name="dashboard", scope="read")
    return ApiClient(secret)


def _writes(api: ApiClient, number: Any) -> list[Any]:
    broadcast = {
        "name": "Closed",
        "body": "Pool closed today. Reply STOP to opt out.",
        "number_ids": [number.pk],
        "audience": {"everyone": True},
    }
    return [
        api.post("/messages", {"to": PERSON, "body": "Your visit is at 3"}),
        api.post("/broadcasts", broadcast),
    ]


def test_a_read_only_token_reads_conversations(
    reader: ApiClient, sandbox_number: Any, text_in: Any
) -> None:
    conversation = text_in(sandbox_number, PERSON, "hello").conversation
    listing = reader.get("/conversations")
    assert listing.status_code == 200 and listing.json()["count"] == 1
    assert reader.get(f"/conversations/{conversation.pk}/messages").status_code == 200


def test_a_read_only_token_cannot_send_or_broadcast_and_nothing_is_stored(
    reader: ApiClient, api: ApiClient, sandbox_number: Any
) -> None:
    for refused in _writes(reader, sandbox_number):
        assert refused.status_code == 403
        assert refused.json() == {"code": "read_only", "detail": "this token is read-only"}
    assert not Message.objects.exists() and not Broadcast.objects.exists()
    # the same requests with a read-write token are accepted
    assert [r.status_code for r in _writes(api, sandbox_number)] == [201, 201]


def test_a_read_only_token_is_refused_before_the_body_is_read(reader: ApiClient) -> None:
    response = reader.post("/messages", raw=b"\xff\xfe{{{")
    assert response.status_code == 403 and response.json()["code"] == "read_only"
    patched = reader.patch("/contacts/1", {"name": "x"})
    assert patched.status_code == 403


def test_a_revoked_token_is_401_from_then_on(
    org: Any, api: ApiClient, alice: Any, sandbox_number: Any
) -> None:
    assert api.get("/conversations").status_code == 200
    token = ApiToken.objects.get(organization=org)
    api_token_revoke(organization_id=org.pk, token_id=token.pk, actor_id=alice.pk)
    for response in (api.get("/conversations"), *_writes(api, sandbox_number)):
        assert response.status_code == 401
        assert response.json()["code"] == "unauthorized"
    assert not Message.objects.exists()
    event = AuditEvent.objects.get(action="api_token.revoked")
    assert (event.actor_id, event.object_id) == (alice.pk, str(token.pk))


def test_each_use_records_when_the_token_was_last_used(org: Any, reader: ApiClient) -> None:
    token = ApiToken.objects.get(organization=org, name="dashboard")
    assert token.last_used_at is None
    reader.get("/conversations")
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None
    reader.get("/conversations")
    token.refresh_from_db()
    assert token.last_used_at is not None and token.last_used_at >= first
