"""The widget's public HTTP side and the web-chat settings page."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from openline.chat.models import ChatSession, ChatWidget
from openline.chat.tests.conftest import ORIGIN
from openline.messaging.models import Channel, Conversation, ConversationStatus

pytestmark = pytest.mark.django_db


def _start(client: Client, widget: Any, origin: str = ORIGIN, body: Any = None) -> Any:
    return client.post(
        f"/chat/{widget.public_id}/start",
        data=json.dumps(body if body is not None else {"name": "Sam"}),
        content_type="application/json",
        headers={"Origin": origin},
    )


def test_widget_script_is_served_small_and_embeddable(client: Client) -> None:
    import gzip

    response = client.get("/widget.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert response["Cross-Origin-Resource-Policy"] == "cross-origin"
    source = b"".join(response.streaming_content) if response.streaming else response.content
    assert b"attachShadow" in source  # styles isolated from the host page
    assert len(gzip.compress(source)) < 8_000


def test_config_answers_allowed_origins_only(client: Client, widget: Any) -> None:
    ok = client.get(f"/chat/{widget.public_id}/config", headers={"Origin": ORIGIN})
    assert ok.status_code == 200
    assert ok["Access-Control-Allow-Origin"] == ORIGIN
    assert ok.json() == {
        "name": "Talk to us",
        "color": "#1f5fbf",
        "greeting": "Hi, we are here.",
        "offline_text": "We are closed; call 988 any time.",
        "online": True,
        "quick_exit_url": "https://www.google.com/",
        "prechat": [],
        "survey": [],
    }
    refused = client.get(
        f"/chat/{widget.public_id}/config", headers={"Origin": "https://evil.example"}
    )
    assert refused.status_code == 403
    assert "Access-Control-Allow-Origin" not in refused
    assert refused.json()["error"] == "origin_refused"
    assert client.get("/chat/nope/config", headers={"Origin": ORIGIN}).status_code == 404


def test_start_opens_a_waiting_chat_conversation(client: Client, widget: Any) -> None:
    response = _start(client, widget)
    assert response.status_code == 201, response.content
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    token = response.json()["token"]
    session = ChatSession.objects.get()
    assert session.token_hash != token and len(token) >= 40  # only a hash is stored
    conversation = session.conversation
    assert conversation.channel == Channel.CHAT
    assert conversation.status == ConversationStatus.WAITING
    assert conversation.number_id == widget.number_id
    assert conversation.contact.name == "Sam" and conversation.contact.phone == ""


def test_preflight_and_refusals_store_nothing(client: Client, widget: Any) -> None:
    preflight = client.options(f"/chat/{widget.public_id}/start", headers={"Origin": ORIGIN})
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == ORIGIN
    assert (
        client.options(
            f"/chat/{widget.public_id}/start", headers={"Origin": "https://evil.example"}
        ).status_code
        == 403
    )
    assert _start(client, widget, origin="https://evil.example").status_code == 403
    assert _start(client, widget, body=["not", "an", "object"]).status_code == 400
    bad = client.post(
        f"/chat/{widget.public_id}/start",
        data=b"\xff{",
        content_type="application/json",
        headers={"Origin": ORIGIN},
    )
    assert bad.status_code == 400
    huge = _start(client, widget, body={"name": "x" * 25_000})
    assert huge.status_code == 413
    assert client.get(f"/chat/{widget.public_id}/start").status_code == 405
    assert not Conversation.objects.exists()


def test_offline_inbox_refuses_new_chats_with_the_offline_text(client: Client, widget: Any) -> None:
    widget.number.chat_online = False
    widget.number.save()
    config = client.get(f"/chat/{widget.public_id}/config", headers={"Origin": ORIGIN}).json()
    assert config["online"] is False
    response = _start(client, widget)
    assert response.status_code == 409
    assert response.json()["message"] == "We are closed; call 988 any time."
    assert not Conversation.objects.exists()


def test_new_chats_per_address_are_limited(client: Client, widget: Any) -> None:
    from django.core.cache import cache

    cache.clear()
    codes = [_start(client, widget).status_code for _ in range(11)]
    assert codes[:10] == [201] * 10
    assert codes[10] == 429
    cache.clear()


# --- settings page -------------------------------------------------------------------------


def _login(client: Client, email: str, password: str) -> Client:
    assert client.login(username=email, password=password)
    return client


def test_counselors_cannot_open_chat_settings(client: Client, bob: Any) -> None:
    assert (
        _login(client, "bob@example.org", "bob-pass-12").get("/chat-settings/").status_code == 403
    )


def test_supervisor_opens_and_closes_chat(client: Client, sue: Any, sandbox_number: Any) -> None:
    _login(client, "sue@example.org", "supervisor-pass-123")
    page = client.get("/chat-settings/")
    assert page.status_code == 200 and b"Open chat" in page.content
    assert b"New widget" not in page.content  # creating widgets is for admins
    client.post(
        "/chat-settings/", {"action": "availability", "number": sandbox_number.pk, "online": "1"}
    )
    sandbox_number.refresh_from_db()
    assert sandbox_number.chat_online


def test_admin_creates_a_widget_and_gets_its_snippet(
    client: Client, alice: Any, sandbox_number: Any
) -> None:
    _login(client, "alice@example.org", "alice-pass-1")
    bad = client.post(
        "/chat-settings/",
        {"action": "create", "display_name": "Chat", "number": sandbox_number.pk,
         "allowed_origins": "javascript:alert(1)", "color": "#112233"},
    )  # fmt: skip
    assert bad.status_code == 422
    assert not ChatWidget.objects.exists()
    done = client.post(
        "/chat-settings/",
        {"action": "create", "display_name": "Chat", "number": sandbox_number.pk,
         "allowed_origins": "https://www.example.org/help\nhttp://localhost:8080/",
         "color": "#112233"},
    )  # fmt: skip
    assert done.status_code == 302
    widget = ChatWidget.objects.get()
    assert widget.allowed_origins == ["http://localhost:8080", "https://www.example.org"]
    page = client.get("/chat-settings/").content.decode()
    assert f'data-widget="{widget.public_id}"' in page and "/widget.js" in page


def test_another_organization_neither_sees_nor_switches_our_chat(
    client: Client, widget: Any, other_org: Any
) -> None:
    from openline.core.services import user_create

    user_create(
        organization=other_org, email="olga@example.net", role="admin", password="olga-pass-12"
    )
    _login(client, "olga@example.net", "olga-pass-12")
    page = client.get("/chat-settings/").content.decode()
    assert widget.public_id not in page and "Main line" not in page
    client.post(
        "/chat-settings/", {"action": "availability", "number": widget.number_id, "online": "0"}
    )
    widget.number.refresh_from_db()
    assert widget.number.chat_online
