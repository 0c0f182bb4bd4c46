"""The visitor's side end to end through the real ASGI app and channel layer: start, write,
resend after a drop, the counselor's reply arriving live, receipts, ending, and refusals."""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from openline.chat import services
from openline.chat.models import ChatSession
from openline.chat.tests.conftest import ORIGIN
from openline.core.models import Membership
from openline.messaging.models import Conversation, ConversationStatus, Message, MessageStatus
from openline.messaging.services.outbound import SendRefused

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # Each test runs its own event loop (see the root conftest).
    pytest.mark.usefixtures("fresh_channel_layer"),
]


def _sync(test: Any) -> Any:
    """Run an async test in its own event loop (as the console's socket tests do)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def chat(widget: Any) -> services.StartedChat:
    return services.chat_start(widget=widget, origin=ORIGIN, name="Sam")


def _socket(widget: Any, token: str, origin: str = ORIGIN, after: int = 0) -> WebsocketCommunicator:
    from openline.asgi import application

    return WebsocketCommunicator(
        application,
        f"/ws/chat/{widget.public_id}/?token={token}&after={after}",
        headers=[(b"origin", origin.encode()), (b"host", b"openline.example")],
    )


async def _until(ws: WebsocketCommunicator, kind: str, timeout: float = 3) -> dict[str, Any]:
    while True:
        data = json.loads(await ws.receive_from(timeout=timeout))
        if data["type"] == kind:
            return data


@_sync
async def test_wrong_origin_or_token_is_refused(widget: Any, chat: Any) -> None:
    for origin, token, code in (
        ("https://evil.example", chat.token, 4403),
        (ORIGIN, "not-a-token", 4401),
    ):
        ws = _socket(widget, token, origin)
        connected, close_code = await ws.connect()
        assert not connected and close_code == code


@_sync
async def test_chat_both_ways_live_with_resend_receipts_and_end(
    widget: Any, chat: Any, bob: Any, published: list[dict[str, Any]]
) -> None:
    ws = _socket(widget, chat.token)
    assert (await ws.connect())[0]
    assert (await _until(ws, "history"))["messages"] == []
    place = await _until(ws, "queue")
    assert place["waiting"] and place["position"] == 1 and place["estimate_seconds"] is None

    await ws.send_json_to({"type": "message", "body": HOSTILE, "client_id": "c-00000001"})
    mine = await _until(ws, "message")
    assert mine["from"] == "visitor" and mine["body"] == HOSTILE
    assert mine["client_id"] == "c-00000001"
    # Resent after a dropped connection: the stored message comes back, nothing twice.
    await ws.send_json_to({"type": "message", "body": HOSTILE, "client_id": "c-00000001"})
    again = await _until(ws, "message")
    assert again["id"] == mine["id"]
    assert await sync_to_async(Message.objects.filter(direction="in").count)() == 1
    assert any(e["type"] == "message.created" for e in published)  # the console hears of it

    # The counselor answers through the one send service; it reaches this socket live.
    def reply() -> Message:
        from openline.messaging.services.assignment import conversation_reply

        membership = Membership.objects.get(user=bob)
        conversation = Conversation.objects.get(pk=chat.session.conversation_id)
        return conversation_reply(membership=membership, conversation=conversation, body="Hi Sam")

    sent = await sync_to_async(reply)()
    assert sent.status == MessageStatus.SENT
    frames: dict[str, dict[str, Any]] = {}
    while len(frames) < 2:  # the reply, and the news that someone has the chat (any order)
        data = json.loads(await ws.receive_from(timeout=10))
        frames.setdefault(data["type"], data)
    assert not frames["queue"]["waiting"]
    theirs = frames["message"]
    assert theirs == {
        "type": "message", "id": sent.pk, "from": "counselor", "body": "Hi Sam",
        "client_id": "", "at": theirs["at"],
    }  # fmt: skip
    await ws.send_json_to({"type": "received", "ids": [sent.pk]})
    for _ in range(30):
        await sync_to_async(sent.refresh_from_db)()
        if sent.status == MessageStatus.DELIVERED:
            break
        await ws.receive_nothing(0.05)
    assert sent.status == MessageStatus.DELIVERED  # the delivery tick
    from django_tasks_db.models import DBTaskResult

    assert not await sync_to_async(DBTaskResult.objects.exists)()  # no carrier involved

    # A reconnect after the last message seen gets only what came after it.
    ws2 = _socket(widget, chat.token, after=mine["id"])
    assert (await ws2.connect())[0]
    assert [m["id"] for m in (await _until(ws2, "history"))["messages"]] == [sent.pk]
    await ws2.disconnect()

    await ws.send_json_to({"type": "end"})
    assert (await _until(ws, "ended"))["by"] == "visitor"
    await ws.disconnect()
    conversation = await sync_to_async(Conversation.objects.get)(pk=chat.session.conversation_id)
    assert conversation.status == ConversationStatus.CLOSED

    # The one send service refuses it too, whoever calls it (API, automation...).
    def send_directly() -> None:
        from openline.messaging.services.outbound import message_send

        message_send(
            organization_id=conversation.organization_id, conversation=conversation, body="?"
        )

    with pytest.raises(SendRefused, match="ended"):
        await sync_to_async(send_directly)()


@_sync
async def test_bad_messages_get_a_clear_error_and_store_nothing(widget: Any, chat: Any) -> None:
    ws = _socket(widget, chat.token)
    assert (await ws.connect())[0]
    await _until(ws, "history")
    for payload, code in (
        ({"type": "message", "body": "", "client_id": "c-00000002"}, "empty"),
        ({"type": "message", "body": "x" * 2001, "client_id": "c-00000003"}, "too_long"),
        ({"type": "message", "body": "hi", "client_id": "short"}, "invalid"),
        ({"type": "message", "body": 5, "client_id": "c-00000004"}, "empty"),
        ({"type": "dance"}, "invalid"),
        ({"type": "received", "ids": "all"}, "invalid"),
    ):
        await ws.send_json_to(payload)
        assert (await _until(ws, "error"))["code"] == code
    await ws.send_to(text_data="not json at all")  # the consumer survives it
    assert not await sync_to_async(Message.objects.exists)()
    await ws.disconnect()


@_sync
async def test_messages_per_minute_are_limited(widget: Any, chat: Any) -> None:
    from openline.chat.consumers import MESSAGES_PER_MINUTE

    ws = _socket(widget, chat.token)
    assert (await ws.connect())[0]
    await _until(ws, "history")
    for i in range(MESSAGES_PER_MINUTE):
        await ws.send_json_to({"type": "message", "body": f"m{i}", "client_id": f"c-{i:08d}"})
        await _until(ws, "message")
    await ws.send_json_to({"type": "message", "body": "one more", "client_id": "c-99999999"})
    assert (await _until(ws, "error"))["code"] == "rate_limited"
    await ws.disconnect()


def test_counselor_close_tells_the_visitor_and_hostile_text_stays_text(
    widget: Any, chat: Any, alice: Any, charlie: Any, client: Any
) -> None:
    session = ChatSession.objects.get()
    services.visitor_message(session=session, body=HOSTILE, client_id="c-00000009")
    client.login(username="alice@example.org", password="alice-pass-1")
    pane = client.get(f"/conversations/{session.conversation_id}/pane").content.decode()
    assert "Web chat" in pane and "&lt;script&gt;alert(" in pane
    assert "<script>alert(" not in pane and "<img src=x" not in pane
    queue = client.get("/queue?view=waiting", headers={"HX-Request": "true"}).content.decode()
    assert "badge-chat" in queue and "Sam" in queue
    client.logout()
    client.login(username="charlie@example.org", password="charlie-pass")
    assert client.get(f"/conversations/{session.conversation_id}/pane").status_code in (403, 404)
    assert (
        "Sam"
        not in client.get("/queue?view=waiting", headers={"HX-Request": "true"}).content.decode()
    )


def test_typing_reaches_only_a_live_chat_and_only_from_someone_who_may_reply(
    widget: Any, chat: Any, bob: Any, dora: Any, charlie: Any, client: Any,
    published: list[dict[str, Any]],
) -> None:  # fmt: skip
    from openline.messaging.services.assignment import conversation_assume

    conversation = Conversation.objects.get(pk=chat.session.conversation_id)
    conversation_assume(membership=Membership.objects.get(user=bob), conversation=conversation)
    url = f"/conversations/{conversation.pk}/typing"
    client.login(username="dora@example.org", password="counselor-pass-123")
    assert client.post(url).status_code == 403  # bob has it
    client.login(username="charlie@example.org", password="charlie-pass")
    assert client.post(url).status_code in (403, 404)  # another organization
    assert published.count({"type": "typing"}) == 0
    client.login(username="bob@example.org", password="bob-pass-12")
    assert client.post(url).status_code == 204
    assert published.count({"type": "typing"}) == 1
    services.chat_end(session=chat.session)
    assert client.post(url).status_code in (204, 403)
    assert published.count({"type": "typing"}) == 1  # nobody left to tell
