"""The console WebSocket: checked like a page, and each event filtered to who may see it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore

from openline.console.consumers import event_visible
from openline.core import realtime
from openline.core.models import Membership

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # Each test runs its own event loop (see the root conftest).
    pytest.mark.usefixtures("fresh_channel_layer"),
]


def _session_cookie(user: Any) -> str:
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return f"sessionid={session.session_key}"


async def _connect(user: Any | None) -> WebsocketCommunicator:
    from openline.asgi import application

    headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
    if user is not None:
        cookie = await sync_to_async(_session_cookie)(user)
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application, "/ws/console/", headers=headers)


async def _publish(organization_id: int, event: dict[str, Any]) -> None:
    from channels.layers import get_channel_layer

    message = {"organization_id": organization_id, **event}
    await get_channel_layer().group_send(
        realtime.org_group(organization_id), {"type": "openline.event", "event": message}
    )


async def _events(ws: WebsocketCommunicator, wait: float = 0.3) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    while True:
        try:
            frame = await ws.receive_from(timeout=wait)
        except TimeoutError:
            return got
        got.extend(json.loads(frame)["events"])


def test_anonymous_socket_is_refused(org: Any) -> None:
    async def run() -> None:
        ws = await _connect(None)
        connected, code = await ws.connect()
        assert not connected and code == 4401

    asyncio.run(run())


def test_user_without_organization_is_refused(org: Any) -> None:
    from openline.core.models import User

    loner = User.objects.create_user(email="loner@example.org", password="loner-pass-1")

    async def run() -> None:
        ws = await _connect(loner)
        connected, code = await ws.connect()
        assert not connected and code == 4403

    asyncio.run(run())


def test_foreign_origin_is_refused(alice: Any) -> None:
    """Another website cannot open a socket with the member's cookie (cross-site WebSocket
    hijacking): the Origin must be the console's own."""

    async def run() -> None:
        from openline.asgi import application

        cookie = await sync_to_async(_session_cookie)(alice)
        ws = WebsocketCommunicator(
            application,
            "/ws/console/",
            headers=[
                (b"origin", b"http://evil.example"),
                (b"host", b"testserver"),
                (b"cookie", cookie.encode()),
            ],
        )
        connected, code = await ws.connect()
        assert not connected and code == 4403

    asyncio.run(run())


def test_members_get_their_organizations_events_and_outsiders_none(
    alice: Any, bob: Any, charlie: Any, org: Any
) -> None:
    async def run() -> None:
        sockets = {}
        for name, user in (("alice", alice), ("bob", bob), ("charlie", charlie)):
            sockets[name] = await _connect(user)
            connected, _ = await sockets[name].connect()
            assert connected
        await _publish(
            org.pk,
            {
                "type": "conversation.created",
                "conversation_id": 7,
                "status": "waiting",
                "assigned_to_id": None,
            },
        )
        await _publish(org.pk, {"type": "consent.changed", "phone": "+12025550187"})
        for name in ("alice", "bob"):
            types = [e["type"] for e in await _events(sockets[name], 2)]
            assert types == ["conversation.created", "consent.changed"], name
        assert await _events(sockets["charlie"], 0) == []

    asyncio.run(run())


def test_counselor_gets_only_queue_and_own_conversation_events(
    alice: Any, bob: Any, dora: Any, org: Any
) -> None:
    async def run() -> None:
        bob_ws, alice_ws = await _connect(bob), await _connect(alice)
        await bob_ws.connect()
        await alice_ws.connect()
        doras = {"conversation_id": 9, "status": "active", "assigned_to_id": dora.pk}
        await _publish(org.pk, {"type": "message.created", "message_id": 1, **doras})
        await _publish(
            org.pk,
            {
                "type": "message.created",
                "message_id": 2,
                "conversation_id": 8,
                "status": "active",
                "assigned_to_id": bob.pk,
            },
        )
        await _publish(
            org.pk,
            {
                "type": "conversation.assigned",
                "conversation_id": 8,
                "status": "active",
                "assigned_to_id": dora.pk,
                "previous_assigned_to_id": bob.pk,
            },
        )
        bob_got = await _events(bob_ws, 2)
        assert [(e["type"], e.get("message_id")) for e in bob_got] == [
            ("message.created", 2),
            ("conversation.assigned", None),  # it left him: his list must drop it
        ]
        assert len(await _events(alice_ws, 3)) == 3  # admins see everything

    asyncio.run(run())


def test_removed_member_is_disconnected_on_recheck(bob: Any, org: Any, monkeypatch: Any) -> None:
    from openline.console import consumers

    monkeypatch.setattr(consumers, "RECHECK_SECONDS", 0.05)

    async def run() -> None:
        ws = await _connect(bob)
        await ws.connect()
        await sync_to_async(Membership.objects.filter(user=bob).delete)()
        output = await ws.receive_output(timeout=2)
        assert output == {"type": "websocket.close", "code": consumers.CLOSE_FORBIDDEN}

    asyncio.run(run())


def test_a_burst_of_events_arrives_in_few_frames(alice: Any, org: Any) -> None:
    async def run() -> None:
        ws = await _connect(alice)
        await ws.connect()
        for i in range(50):
            await _publish(org.pk, {"type": "contact.updated", "contact_id": i})
        frames = []
        got: list[dict[str, Any]] = []
        while len(got) < 50:
            frame = json.loads(await ws.receive_from(timeout=2))
            frames.append(frame)
            got.extend(frame["events"])
        assert [e["contact_id"] for e in got] == list(range(50))  # all, in order
        assert len(frames) <= 25  # batched (in memory: 1 or 2 frames; over Redis: ~10)

    asyncio.run(run())


@pytest.mark.parametrize(
    ("event", "user_id", "manager", "visible"),
    [
        ({"type": "conversation.created", "assigned_to_id": None}, 1, False, True),
        ({"type": "message.created", "assigned_to_id": 2}, 1, False, False),
        ({"type": "message.created", "assigned_to_id": 2}, 1, True, True),
        ({"type": "message.status", "assigned_to_id": 1}, 1, False, True),
        (
            {"type": "conversation.closed", "assigned_to_id": 2, "previous_assigned_to_id": 1},
            1,
            False,
            True,
        ),
        ({"type": "contact.updated", "contact_id": 3}, 1, False, True),
    ],
)
def test_event_visible(event: dict[str, Any], user_id: int, manager: bool, visible: bool) -> None:
    assert event_visible(event, user_id=user_id, can_manage=manager) is visible


def test_deactivation_closes_the_members_socket_at_once(
    alice: Any, bob: Any, org: Any, text_in: Any, monkeypatch: Any
) -> None:
    """Deactivating bob (the team page's offboarding) closes his console socket as soon as
    it commits, long before the minute's recheck; others stay connected and never see the
    sign-out event itself, only what followed (his conversation back in the queue)."""
    from openline.console import consumers
    from openline.console.offboarding import member_offboard
    from openline.messaging.services.assignment import conversation_assume

    monkeypatch.setattr(consumers, "RECHECK_SECONDS", 3600)
    conversation = text_in("hello?")
    conversation_assume(membership=Membership.objects.get(user=bob), conversation=conversation)

    def offboard() -> None:
        member_offboard(
            organization=org,
            membership_id=Membership.objects.get(user=bob).pk,
            actor_id=alice.pk,
        )

    async def run() -> None:
        bob_ws, alice_ws = await _connect(bob), await _connect(alice)
        assert (await bob_ws.connect())[0] and (await alice_ws.connect())[0]
        await sync_to_async(offboard)()
        output = await bob_ws.receive_output(timeout=2)
        assert output == {"type": "websocket.close", "code": consumers.CLOSE_UNAUTHENTICATED}
        got = json.loads(await alice_ws.receive_from(timeout=2))["events"]
        assert [(e["type"], e["conversation_id"], e["status"]) for e in got] == [
            ("conversation.assigned", conversation.pk, "waiting")
        ]
        await _publish(org.pk, {"type": "contact.updated", "contact_id": 1})  # still open
        got = json.loads(await alice_ws.receive_from(timeout=2))["events"]
        assert [e["type"] for e in got] == ["contact.updated"]
        # Both consumers finish inside the loop (bob's was closed by the server, its
        # disconnect still to come), so no hub task is left for the loop's shutdown.
        await bob_ws.disconnect()
        await alice_ws.disconnect()

    asyncio.run(run())


def test_a_sign_out_event_closes_only_that_persons_sockets(
    alice: Any, bob: Any, dora: Any, org: Any
) -> None:
    async def run() -> None:
        sockets = [await _connect(user) for user in (bob, bob, dora)]
        for ws in sockets:
            assert (await ws.connect())[0]
        await _publish(org.pk, {"type": "member.signed_out", "user_id": bob.pk})
        await _publish(org.pk, {"type": "contact.updated", "contact_id": 1})
        for ws in sockets[:2]:  # both of bob's tabs
            assert await ws.receive_output(timeout=2) == {"type": "websocket.close", "code": 4401}
        assert [e["type"] for e in await _events(sockets[2], 1)] == ["contact.updated"]

    asyncio.run(run())


def _with_second_factor(user: Any) -> Any:
    from openline.core.second_factor import totp_begin, totp_confirm
    from openline.core.tests.second_factor_support import app_code

    pending, _ = totp_begin(user=user)
    device, _ = totp_confirm(user=user, device_id=pending.pk, code=app_code(pending))
    return device


def test_a_password_alone_does_not_open_the_socket_of_someone_with_a_second_factor(
    bob: Any, org: Any
) -> None:
    from django_otp import DEVICE_ID_SESSION_KEY

    device = _with_second_factor(bob)

    async def run(verified: bool) -> tuple[bool, int | None]:
        from openline.asgi import application

        def cookie() -> str:
            session = SessionStore()
            session[SESSION_KEY] = str(bob.pk)
            session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
            session[HASH_SESSION_KEY] = bob.get_session_auth_hash()
            if verified:
                session[DEVICE_ID_SESSION_KEY] = device.persistent_id
            session.save()
            return f"sessionid={session.session_key}"

        headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
        headers.append((b"cookie", (await sync_to_async(cookie)()).encode()))
        ws = WebsocketCommunicator(application, "/ws/console/", headers=headers)
        connected, code = await ws.connect()
        await ws.disconnect()
        return connected, code

    assert asyncio.run(run(verified=False)) == (False, 4401)
    connected, _ = asyncio.run(run(verified=True))
    assert connected


def test_a_member_whose_organization_requires_a_second_factor_needs_one_for_the_socket(
    bob: Any, org: Any
) -> None:
    org.require_second_factor = "everyone"
    org.save(update_fields=["require_second_factor"])

    async def run() -> tuple[bool, int | None]:
        ws = await _connect(bob)
        connected, code = await ws.connect()
        await ws.disconnect()
        return connected, code

    assert asyncio.run(run()) == (False, 4401)


def test_signing_out_everywhere_closes_the_other_browsers_sockets_not_the_kept_one(
    bob: Any, org: Any, monkeypatch: Any
) -> None:
    """ "Sign out everywhere else": every console socket of bob's closes at once except the
    ones of the session he kept (the browser he asked from, under its new key)."""
    from openline.console import consumers
    from openline.core.accounts import user_sign_out_everywhere

    monkeypatch.setattr(consumers, "RECHECK_SECONDS", 3600)

    def sign_out_keeping(cookie: str) -> str:
        kept = SessionStore(cookie.removeprefix("sessionid="))
        kept.load()
        user_sign_out_everywhere(user_id=bob.pk, keep_session=kept)
        kept.save()
        return f"sessionid={kept.session_key}"

    async def run() -> None:
        from openline.asgi import application

        other = await _connect(bob)
        assert (await other.connect())[0]
        mine = await sync_to_async(_session_cookie)(bob)
        # The kept browser's next page opens its socket before the hub hears the event.
        kept_cookie = await sync_to_async(sign_out_keeping)(mine)
        headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
        kept = WebsocketCommunicator(
            application, "/ws/console/", headers=[*headers, (b"cookie", kept_cookie.encode())]
        )
        assert (await kept.connect())[0]
        assert await other.receive_output(timeout=2) == {"type": "websocket.close", "code": 4401}
        await _publish(org.pk, {"type": "contact.updated", "contact_id": 1})
        assert [e["type"] for e in await _events(kept, 1)] == ["contact.updated"]

    asyncio.run(run())
